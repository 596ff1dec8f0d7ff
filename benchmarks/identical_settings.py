"""A study whose settings are identical by construction never ends in "effect": N repeats, each a whole
study with a seed plan (real Ray, real Optuna), of a parameter that does nothing.

    python benchmarks/identical_settings.py [--repeats 20] [--keep DIR]

The toy model's `sleep_s` changes how long a step waits and nothing else, so its settings 0 and
0.001 give the same scores seed for seed. Each repeat starts at another first seed (repeat r runs
seeds 10 r, 10 r + 1, ...), with the plan {initial: 3, step: 2, maximum: 7} and margin 0.03 on mig.
It prints each repeat's decision, the seeds it spent, and the count of each word; it exits non-zero
if any repeat says "effect".
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml

TESTS = str(Path(__file__).resolve().parents[1] / "tests")  # the toy model is test code
sys.path.insert(0, TESTS)
os.environ["PYTHONPATH"] = os.pathsep.join([TESTS, *filter(None, [os.environ.get("PYTHONPATH")])])

from toy import TOY  # noqa: E402

from orchestrator.report.findings import decide_run  # noqa: E402
from orchestrator.study import run_study  # noqa: E402


def study(first: int) -> dict:
    return {"name": f"identical_{first}", "model": "toy", "kind": "ablation",
            "search": {"sampler": "grid", "space": {"sleep_s": {"type": "float", "low": 0.0, "high": 0.001,
                                                                "values": [0.0, 0.001]}}},
            "seeds": {"initial": 3, "step": 2, "maximum": 7, "first": first},
            "objectives": [{"metric": "mig", "margin": 0.03}],
            "fixed": {"steps": 4, "log_every": 1, "eval_every": 2},
            "resources": {"cpus": 1, "gpus": 0}, "max_concurrent": 2}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--keep", help="keep the run folders here (default: a temporary folder, removed)")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="identical-"))
    words: Counter[str] = Counter()
    try:
        for r in range(args.repeats):
            path = root / f"identical_{r}.yaml"
            root.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(study(10 * r)))
            run = run_study(path, preset="smoke", out=root / f"run_{r}", model=TOY, report=False, select=False,
                            log=lambda *a: None)
            replay = decide_run(run.run_dir)
            v = next(v for v in replay.verdicts if v.objective)
            words[v.decision] += 1
            print(f"repeat {r:>2} (seeds from {10 * r}): {v.comparison.label}: {v.decision} after {v.seeds[0]} "
                  f"seeds a side, Δ {v.look.diff:+.4f}; {len(run.results)} trials", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\n{args.repeats} repeats: " + ", ".join(f"{w} {n}" for w, n in sorted(words.items())))
    return 1 if words["effect"] else 0


if __name__ == "__main__":
    sys.exit(main())
