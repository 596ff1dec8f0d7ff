"""The study report for 200 trials: build time and file size against the targets (30 s, 20 MB).

Two run folders written by ``run_study`` with the toy model (tests/toy.py), 200 trials each,
curves of ``--steps`` logged steps per loss:
- search:   TPE over three parameters, two objectives (fANOVA importances for each);
- ablation: 5 settings x 40 seeds, one seed diverging; the traversal PNGs are then replaced by
            662 x 662 incompressible noise (the size of a real DiD traversal, at its worst).

    .venv/bin/python benchmarks/report_size.py [--trials 200] [--steps 100] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from orchestrator.report import build_report
from orchestrator.study import run_study

TESTS = str(Path(__file__).resolve().parents[1] / "tests")  # the toy model is test code
sys.path.insert(0, TESTS)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")]))  # Ray's workers
from toy import TOY  # noqa: E402

TIME_TARGET_S = 30.0
SIZE_TARGET_MB = 20.0
SETTINGS = [0.1, 0.3, 0.5, 0.7, 0.9]


def studies(trials: int, steps: int) -> dict[str, dict]:
    common = {"model": "toy", "resources": {"cpus": 1, "gpus": 0},
              "fixed": {"steps": steps, "log_every": 1, "eval_every": max(1, steps // 5)}}
    return {
        "search": {**common, "name": "search", "seeds": 1,
                   "search": {"sampler": "tpe", "n_trials": trials, "space": {
                       "x": {"type": "float", "low": 0.0, "high": 1.0}, "n": {"type": "int", "low": 1, "high": 4},
                       "mode": {"type": "categorical", "choices": ["a", "b"]}}},
                   "objectives": [{"metric": "mig"}, {"metric": "dci_disentanglement", "direction": "minimize"}]},
        "ablation": {**common, "name": "ablation", "seeds": max(1, trials // len(SETTINGS)),
                     "fixed": {**common["fixed"], "fail_seed": 3},
                     "search": {"sampler": "grid", "space": {"x": {"type": "float", "low": 0.0, "high": 1.0,
                                                                   "values": SETTINGS}}},
                     "objectives": [{"metric": "mig"}]},
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--steps", type=int, default=100, help="logged steps per trial and loss")
    ap.add_argument("--keep", help="write the run folders here instead of a temporary folder")
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        for name, study in studies(args.trials, args.steps).items():
            folder = base / f"{name}_{args.trials}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.yaml").write_text(yaml.safe_dump(study))
            t0 = time.perf_counter()
            run = run_study(folder / f"{name}.yaml", preset="smoke", out=folder / "run", model=TOY, report=False,
                            log=lambda *a: None)
            made = time.perf_counter() - t0
            if name == "ablation":  # worst case for the file size: PNGs that do not compress
                for i, png in enumerate(sorted(run.run_dir.glob("trials/*/traversal.png"))):
                    noise = np.random.default_rng(i).integers(0, 256, (662, 662)).astype(np.uint8)
                    Image.fromarray(noise).save(png)
            t0 = time.perf_counter()
            path = build_report(run.run_dir)
            took = time.perf_counter() - t0
            mb = path.stat().st_size / 2**20
            ok &= took < TIME_TARGET_S and mb < SIZE_TARGET_MB
            print(f"{name}: report of {len(run.results)} trials (run folder made in {made:.1f} s)")
            print(f"  build time {took:6.2f} s   target {TIME_TARGET_S:.0f} s   ratio {took / TIME_TARGET_S:.2f}")
            print(f"  file size  {mb:6.2f} MB  target {SIZE_TARGET_MB:.0f} MB  ratio {mb / SIZE_TARGET_MB:.2f}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
