"""Orchestration overhead: 16 trials of a model that only sleeps, 2 at a time on 2 CPUs.

Ideal wall time = 16 x (sleep per trial) / 2. Measured = the whole ``run_study`` call (Optuna
storage, Ray Tune, result tables, report), with Ray already started, as on a cluster. Prints
ideal / measured; target >= 0.8.

    python benchmarks/orchestration_overhead.py [--trial-seconds 10] [--trials 16]
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
    args = ap.parse_args()
    cpus = 2
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "overhead.yaml"
        path.write_text(STUDY.format(trials=args.trials, steps=args.steps, eval_every=max(1, args.steps // 4),
                                     sleep=args.trial_seconds / args.steps))
        t0 = time.time()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        ray_start = time.time() - t0
        try:
            t1 = time.time()
            run = run_study(path, preset="smoke", out=Path(tmp) / "run", model=TOY, log=lambda *a: None)
            measured = time.time() - t1
        finally:
            ray.shutdown()
    done = int((run.results["status"] == "COMPLETE").sum())
    ideal = args.trials * args.trial_seconds / cpus
    print(f"trials: {done}/{args.trials} complete, {args.trial_seconds:g} s each, {cpus} at a time "
          f"({args.steps} reports and {args.steps // max(1, args.steps // 4)} checkpoints per trial)")
    print(f"ideal wall time:    {ideal:7.1f} s")
    print(f"measured wall time: {measured:7.1f} s   (Ray start, not counted: {ray_start:.1f} s)")
    print(f"ratio ideal/measured: {ideal / measured:.3f}   (target >= 0.8)")


if __name__ == "__main__":
    main()
