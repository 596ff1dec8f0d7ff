"""Score codes from anywhere: ``python -m did_core.metrics FILE.npz [options]``.

FILE.npz holds ``codes`` [N, d] floats and ``factors`` [N, K] integer indices, and optionally
``codes_test`` / ``factors_test``. Without test arrays the rows are split by a seeded shuffle
(``numpy.random.default_rng(SEED).permutation(N)``; the first ``2 * N // 3`` rows train, the rest
test). The protocol's sample counts then apply (``dlib``: the first 10,000 train / 5,000 test rows).

    python -m did_core.metrics codes.npz --metrics mig,dci --json
    {"mig": 0.41, "dci_disentanglement": 0.52, "dci_completeness": 0.49, "dci_informativeness": 0.88}

The protocol is always reported on stderr; ``fast`` scores are not comparable with published ones.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from ..npz import read_npz
from ..plugins import PluginError
from .evaluate import parse_metrics, scores_from_codes
from .protocols import PROTOCOLS
from .registry import code_metrics
from .utils import MetricInputError


def load_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of FILE.npz; errors name the file and the problem."""
    arrays = read_npz(Path(path), MetricInputError)
    for name in ("codes", "factors"):
        if name not in arrays:
            raise MetricInputError(f"{path}: missing array {name!r} (found: {', '.join(sorted(arrays)) or 'none'})")
    if ("codes_test" in arrays) != ("factors_test" in arrays):
        raise MetricInputError(f"{path}: codes_test and factors_test must be given together")
    return arrays


def main(argv: list[str] | None = None) -> int:
    try:
        code_metrics()  # the metric plugins, read once: one that cannot be used is one error
    except PluginError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser(prog="python -m did_core.metrics", description=__doc__.split("\n\n")[0])
    ap.add_argument("file", metavar="FILE.npz")
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), default="dlib")
    ap.add_argument("--metrics", default=",".join(code_metrics()), help=f"comma-separated: {','.join(code_metrics())}")
    ap.add_argument("--json", action="store_true", help="print one JSON object of scores")
    ap.add_argument("--seed", type=int, default=0, help="split shuffle and classifier random_state")
    ap.add_argument("--n-jobs", type=int, default=None, help="worker processes (default: all usable cores)")
    args = ap.parse_args(argv)
    try:
        parse_metrics(args.metrics, code_metrics())
        arrays = load_npz(args.file)
        scores = scores_from_codes(
            arrays["codes"],
            arrays["factors"],
            arrays.get("codes_test"),
            arrays.get("factors_test"),
            protocol=args.protocol,
            metrics=args.metrics,
            seed=args.seed,
            n_jobs=args.n_jobs,
        )
    except (MetricInputError, PluginError) as err:  # PluginError: a metric plugin broke its contract
        print(f"error: {err}", file=sys.stderr)
        return 2
    note = "published protocol" if args.protocol == "dlib" else "monitoring profile, NOT comparable with dlib scores"
    print(f"protocol: {scores.protocol} ({note})", file=sys.stderr)
    if args.json:
        # JSON has no Infinity or NaN: a score that is not finite is null (and said on stderr)
        bad = sorted(k for k, v in scores.items() if not math.isfinite(v))
        if bad:
            print(f"not finite (too few rows?), written as null: {', '.join(bad)}", file=sys.stderr)
        print(json.dumps({k: (v if math.isfinite(v) else None) for k, v in scores.items()}, allow_nan=False))
    else:
        for name, value in scores.items():
            print(f"{name:22s} {value:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
