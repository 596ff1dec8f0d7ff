"""``python -m orchestrator.compare RUN_A RUN_B``: do two run folders differ beyond seed noise?

    python -m orchestrator.compare runs/before runs/after [--margin mig=0.03] [--alpha 0.05] [--json]

It pairs the configurations both folders ran (by their parameters' values) and decides, for each
final score both hold, whether B differs from A with the studies' own rule
(:mod:`orchestrator.verdicts.pairs`: one look, Holm over a score's configurations; "equivalent"
where a margin is given, by ``--margin`` or RUN_A's objectives). Exit status: 0 when nothing
differs (every comparison equivalent or undecided), 1 when some score differs, 2 on bad input; so
it can guard a refactor in CI.

Example:
    >>> python -m orchestrator.compare results/ablation_dims-demo runs/ablation_dims-demo   # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .report.data import ReportError, RunData, load_run
from .report.findings import trials_of
from .run_folder.tables import config_text
from .verdicts.pairs import PairVerdict, compare_samples
from .verdicts.sequential import DecisionRule


def samples(run: RunData, params: list[str], scores: list[str]) -> dict[str, dict[str, list[float]]]:
    """configuration (its parameters as text) -> score -> the finished trials' values."""
    out: dict[str, dict[str, list[float]]] = {}
    for _, row in run.finished.iterrows():
        key = config_text(row, params) if params else "(single configuration)"
        for s in scores:
            out.setdefault(key, {}).setdefault(s, []).append(float(row[s]))
    return out


def compare_runs(run_a: RunData, run_b: RunData, margins: dict[str, float] | None = None,
                 alpha: float = 0.05) -> list[PairVerdict]:
    """Every configuration and score the two runs share, B against A."""
    params = sorted(set(run_a.params) | set(run_b.params))
    if [p for p in params if p not in run_a.results or p not in run_b.results]:
        missing = [p for p in params if p not in run_a.results or p not in run_b.results]
        raise ReportError(f"the runs do not vary the same parameters ({', '.join(missing)} is in one only)")
    scores = [s for s in trials_of(run_a).scores if s in trials_of(run_b).scores]
    rules = {s: DecisionRule(alpha, m.get("margin")) for s, m in (run_a.meta.rules if run_a.meta else {}).items()}
    rules.update({s: DecisionRule(alpha, m) for s, m in (margins or {}).items()})
    return compare_samples(samples(run_a, params, scores), samples(run_b, params, scores), rules,
                           DecisionRule(alpha))


def _margins(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        score, _, value = item.partition("=")
        try:
            out[score] = float(value)
            DecisionRule(margin=out[score])
        except ValueError:
            raise SystemExit(f"error: --margin {item!r}: expected SCORE=NUMBER with a positive number, e.g. mig=0.03")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m orchestrator.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_a", help="the reference run folder")
    ap.add_argument("run_b", help="the run folder compared with it")
    ap.add_argument("--margin", action="append", default=[], metavar="SCORE=NUMBER",
                    help="the smallest difference of SCORE that matters (\"equivalent\" needs one); repeatable")
    ap.add_argument("--alpha", type=float, default=0.05, help="family-wise level per score (default 0.05)")
    ap.add_argument("--json", action="store_true", help="print the decisions as JSON")
    args = ap.parse_args(argv)
    if not 0 < args.alpha < 1:
        ap.error("--alpha must lie in (0, 1)")
    margins = _margins(args.margin)
    try:
        run_a, run_b = load_run(args.run_a), load_run(args.run_b)
        if run_a.finished.empty or run_b.finished.empty:
            raise ReportError(f"{args.run_a if run_a.finished.empty else args.run_b}: no finished trial to compare")
        verdicts = compare_runs(run_a, run_b, margins, args.alpha)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not verdicts:
        print("error: the two runs share no configuration and score", file=sys.stderr)
        return 2
    differs = [v for v in verdicts if v.decision == "effect"]
    if args.json:
        print(json.dumps({"run_a": args.run_a, "run_b": args.run_b, "differs": bool(differs),
                          "comparisons": [v.as_dict() for v in verdicts]}, indent=1))
    else:
        print(_table(verdicts))
        print(f"\n{len(differs)} of {len(verdicts)} (configuration, score) pairs differ: "
              + ("B differs from A" if differs else "no difference beyond seed noise"))
    return 1 if differs else 0


def _table(verdicts: list[PairVerdict]) -> str:
    head = ["configuration", "score", "n A", "n B", "A", "B", "Δ (B − A) [95%]", "decision"]
    rows = [[v.configuration, v.score, str(v.n_a), str(v.n_b), f"{v.mean_a:.4f}", f"{v.mean_b:.4f}",
             f"{v.diff:+.4f} [{v.ci_low:+.4f}, {v.ci_high:+.4f}]",
             v.decision + (f" (±{v.margin:g})" if v.decision == "equivalent" else "")] for v in verdicts]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [head, *rows])


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
