"""Orchestration overhead: 16 trials of a model that only sleeps, 2 at a time on 2 CPUs.

Ideal wall time = 16 x (sleep per trial) / 2. Measured = the whole ``run_study`` call (Optuna
storage, Ray Tune, result tables, report), with Ray already started, as on a cluster. Prints
ideal / measured; target >= 0.8. ``--s3`` also runs the same study with its run folder on an
S3-compatible store (moto's server, started here on 127.0.0.1, as in the tests): every trial then
uploads its checkpoint at each eval and its files at the end, and Ray Tune writes its state there;
both ratios are printed, measured side by side on the same Ray instance.

    python benchmarks/orchestration_overhead.py [--trial-seconds 10] [--trials 16] [--s3]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import ray

from orchestrator.study import run_study

TESTS = str(Path(__file__).resolve().parents[1] / "tests")  # the toy model is test code
sys.path.insert(0, TESTS)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")]))  # Ray's workers
from toy import TOY  # noqa: E402

STUDY = """
name: overhead
model: toy
search:
  sampler: random
  n_trials: {trials}
  space:
    x: {{type: float, low: 0.0, high: 1.0}}
seeds: 1
fixed: {{steps: {steps}, log_every: 1, eval_every: {eval_every}, sleep_s: {sleep}}}
objectives: [{{metric: mig}}]
resources: {{cpus: 1}}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trial-seconds", type=float, default=10.0)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20, help="reports per trial (progress every step)")
    ap.add_argument("--s3", action="store_true", help="also with the run folder on a local S3-compatible server")
    args = ap.parse_args()
    cpus = 2
    ideal = args.trials * args.trial_seconds / cpus
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "overhead.yaml"
        path.write_text(STUDY.format(trials=args.trials, steps=args.steps, eval_every=max(1, args.steps // 4),
                                     sleep=args.trial_seconds / args.steps))
        s3 = None
        if args.s3:
            from servers import start_s3  # tests/servers.py: moto's server; sets the AWS variables
            s3 = start_s3(Path(tmp))
            s3.make_bucket("overhead")
        t0 = time.time()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        ray_start = time.time() - t0
        print(f"{args.trials} trials, {args.trial_seconds:g} s each, {cpus} at a time ({args.steps} reports and "
              f"{args.steps // max(1, args.steps // 4)} checkpoints per trial); ideal wall time {ideal:.1f} s "
              f"(Ray start, not counted: {ray_start:.1f} s)")
        outs = [("local", Path(tmp) / "run", None)]
        if s3 is not None:
            outs.append(("s3", s3.uri("overhead/run"), Path(tmp) / "cache"))
        try:
            for label, out, cache in outs:
                t1 = time.time()
                run = run_study(path, preset="smoke", out=out, cache=cache, model=TOY, log=lambda *a: None)
                measured = time.time() - t1
                done = int((run.results["status"] == "COMPLETE").sum())
                print(f"{label:<6} run folder: {done}/{args.trials} complete, measured wall time {measured:7.1f} s, "
                      f"ratio ideal/measured: {ideal / measured:.3f}   (target >= 0.8)")
        finally:
            ray.shutdown()
            if s3 is not None:
                s3.stop()


if __name__ == "__main__":
    main()
