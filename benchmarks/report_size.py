"""The study report for 200 trials: build time and file size against the targets (30 s, 20 MB).

Builds a synthetic run folder with a real Optuna storage (TPE over three parameters, 200 trials,
two objectives, 3 seeds cycled, paper-like curves: 500 logged steps per loss), then times
``build_report`` on it.

    .venv/bin/python benchmarks/report_size.py [--trials 200] [--keep DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.report import build_report
from orchestrator.report_synthetic import make_run_folder

TIME_TARGET_S = 30.0
SIZE_TARGET_MB = 20.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--keep", help="write the run folder here instead of a temporary folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.keep or tmp) / "search_200"
        t0 = time.perf_counter()
        make_run_folder(run_dir, kind="search", n_trials=args.trials, seeds=3, objectives=2,
                        fail_trials=(3, 50, 120), steps=100_000, log_points=500)
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        path = build_report(run_dir)
        took = time.perf_counter() - t0
        mb = path.stat().st_size / 2**20
    ok = took < TIME_TARGET_S and mb < SIZE_TARGET_MB
    print(f"report of {args.trials} trials (run folder made in {made:.1f} s)")
    print(f"  build time {took:6.2f} s   target {TIME_TARGET_S:.0f} s   ratio {took / TIME_TARGET_S:.2f}")
    print(f"  file size  {mb:6.2f} MB  target {SIZE_TARGET_MB:.0f} MB  ratio {mb / SIZE_TARGET_MB:.2f}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
