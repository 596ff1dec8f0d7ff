"""The study report for 200 trials: build time and file size against the targets (30 s, 20 MB).

Two synthetic run folders with a real Optuna storage, 200 trials each, paper-like curves (500
logged steps per loss), 3 failed trials:
- search:   TPE over three parameters, two objectives (fANOVA importances for each), 3 seeds cycled;
- ablation: 5 settings x 40 seeds, traversal PNGs of 662 x 662 incompressible noise (the size of a
            real DiD traversal, at its worst), one per setting shown.

    .venv/bin/python benchmarks/report_size.py [--trials 200] [--keep DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.report import build_report
from orchestrator.report_synthetic import DIMS, make_run_folder

TIME_TARGET_S = 30.0
SIZE_TARGET_MB = 20.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--keep", help="write the run folders here instead of a temporary folder")
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        cases = {
            "search": dict(kind="search", n_trials=args.trials, seeds=3, objectives=2),
            "ablation": dict(kind="ablation", seeds=max(1, args.trials // len(DIMS)), noisy_images_px=662),
        }
        for name, kw in cases.items():
            t0 = time.perf_counter()
            run_dir = make_run_folder(base / f"{name}_{args.trials}", fail_trials=(3, 50, 120), steps=100_000,
                                      log_points=500, **kw)
            made = time.perf_counter() - t0
            t0 = time.perf_counter()
            path = build_report(run_dir)
            took = time.perf_counter() - t0
            mb = path.stat().st_size / 2**20
            ok &= took < TIME_TARGET_S and mb < SIZE_TARGET_MB
            print(f"{name}: report of {args.trials} trials (run folder made in {made:.1f} s)")
            print(f"  build time {took:6.2f} s   target {TIME_TARGET_S:.0f} s   ratio {took / TIME_TARGET_S:.2f}")
            print(f"  file size  {mb:6.2f} MB  target {SIZE_TARGET_MB:.0f} MB  ratio {mb / SIZE_TARGET_MB:.2f}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
