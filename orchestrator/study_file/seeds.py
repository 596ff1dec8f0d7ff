"""The ``seeds:`` field of a study file: a count (``3``: seeds 0, 1, 2), a list of distinct seeds
(``[0, 7, 9]``), or a plan ``{initial, step, maximum[, first]}`` that adds seeds where an ablation's or
a comparison's decisions are undecided (:mod:`orchestrator.verdicts.sequential`).

Example:
    >>> check_seeds({"initial": 3, "step": 2, "maximum": 10})
    {'initial': 3, 'step': 2, 'maximum': 10}
"""
from __future__ import annotations

from typing import Any

from did_core.models.base import MAX_SEED

MAX_SEEDS = 10_000  # seeds per configuration


PLAN_KEYS = ("initial", "step", "maximum", "first")


def _seed_plan(v: dict) -> dict:
    """``{initial, step, maximum[, first]}``: whole numbers, 2 <= initial < maximum, step >= 1."""
    unknown = [k for k in v if k not in PLAN_KEYS]
    if unknown:
        raise ValueError(f"a seed plan has the keys {', '.join(PLAN_KEYS)}; unknown: {unknown[0]!r}")
    missing = [k for k in PLAN_KEYS[:3] if k not in v]
    if missing:
        raise ValueError(f"a seed plan needs {', '.join(PLAN_KEYS[:3])}; missing: {missing[0]}")
    for k, x in v.items():
        if not isinstance(x, int) or isinstance(x, bool) or x < 0:
            raise ValueError(f"{k}: a whole number >= 0, got {str(x)[:50]!r}")
    if not 2 <= v["initial"] < v["maximum"]:
        raise ValueError(f"initial must be at least 2 (a test needs two seeds a side) and below maximum, got "
                         f"initial {v['initial']}, maximum {v['maximum']}")
    if v["step"] < 1:
        raise ValueError("step must be at least 1")
    if v["maximum"] > MAX_SEEDS or v.get("first", 0) + v["maximum"] - 1 > MAX_SEED:
        raise ValueError(f"at most {MAX_SEEDS} seeds, each in [0, {MAX_SEED}]")
    return v


def check_seeds(v: Any) -> Any:
    """A study's (or a preset's) ``seeds``: a count, a list of distinct seeds, or a plan; ValueError otherwise."""
    if isinstance(v, dict):
        return _seed_plan(v)
    ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 1) or (
        isinstance(v, list) and v and all(isinstance(s, int) and not isinstance(s, bool) for s in v)
        and len(set(v)) == len(v))
    if not ok:
        raise ValueError(f"expected a count >= 1, a non-empty list of distinct integers or a plan "
                         f"{{initial, step, maximum}}, got {str(v)[:100]}")
    if (v if isinstance(v, int) else len(v)) > MAX_SEEDS:
        raise ValueError(f"at most {MAX_SEEDS} seeds per configuration, got {v if isinstance(v, int) else len(v)}")
    bad = [s for s in ([] if isinstance(v, int) else v) if not 0 <= s <= MAX_SEED]
    if bad:
        raise ValueError(f"a seed is an integer in [0, {MAX_SEED}], got {bad[0]}")
    return v
