"""Two sets of trials of the same configurations, compared score by score with the studies' own
decision rule (one look; Holm over a score's configurations): does a change alter the results?

Example:
    >>> out = compare_samples({"k=3": {"mig": [0.21, 0.25, 0.19]}}, {"k=3": {"mig": [0.22, 0.24, 0.20]}},
    ...                       {"mig": DecisionRule(0.05, margin=0.1)})
    >>> out[0].decision
    'equivalent'
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from .sequential import DECISION_WORDS, DecisionRule, LookState, SeedPlan, take_look, welch_stats


@dataclass
class PairVerdict:
    """One configuration's score in run B against run A (Δ = mean B − mean A)."""

    configuration: str
    score: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float  # 95%, Hsu's degrees of freedom
    ci_high: float
    p_effect: float
    decision: str  # effect | equivalent | undecided
    margin: float | None

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def compare_samples(a: dict[str, dict[str, list[float]]], b: dict[str, dict[str, list[float]]],
                    rules: dict[str, DecisionRule], default: DecisionRule = DecisionRule()) -> list[PairVerdict]:
    """``a``, ``b``: configuration -> score -> values. Every (configuration, score) both hold is
    decided; the family of a score is its configurations."""
    out = []
    scores = list(dict.fromkeys(s for c in a if c in b for s in a[c] if s in b[c]))
    for score in scores:
        configs = [c for c in a if c in b and score in a[c] and score in b[c]]
        rule = rules.get(score, default)
        xs = [np.asarray([v for v in b[c][score] if v == v], float) for c in configs]
        ys = [np.asarray([v for v in a[c][score] if v == v], float) for c in configs]
        st = np.array([[_stats(x, y) for x, y in zip(xs, ys)]])
        state = LookState.start(1, len(configs))
        plan = SeedPlan.fixed([0])  # one look: it spends all of alpha
        look = take_look(state, 0, st[..., 0], st[..., 1], st[..., 2], np.ones((1, len(configs)), bool), plan, rule)
        for i, c in enumerate(configs):
            diff, se, df = st[0, i]
            half = float(stats.t.ppf(0.975, df) * se) if math.isfinite(se) else math.nan
            out.append(PairVerdict(c, score, len(ys[i]), len(xs[i]), _mean(ys[i]), _mean(xs[i]), float(diff),
                                   diff - half, diff + half, float(look.p_effect[0, i]),
                                   DECISION_WORDS[int(state.decision[0, i])], rule.margin))
    return out


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else math.nan


def _stats(x: np.ndarray, y: np.ndarray):
    var = lambda v: v.var(ddof=1) if len(v) > 1 else math.nan
    d, se, df = welch_stats(_mean(x), var(x), len(x), _mean(y), var(y), len(y))
    return float(d), float(se), float(df)
