"""Which scores the report leads with: the objectives, then the published metrics (MIG, DCI, SAP, ...
in the metric registry's order), then the models' own scores; a model's diagnostics (DiD's shortcut
checks) go to that model's own section; a score that is the same in every finished trial is named
once instead of plotted.

Example:
    >>> order = order_scores(["sap", "h_acc_chance", "mig", "class_accuracy"], [("mig", "maximize")], finished)
    >>> order.shown, order.constant
    (['mig', 'sap', 'class_accuracy'], {'h_acc_chance': 0.5})
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from did_core.metrics.registry import score_kinds

KIND_ORDER = ("published", "model", "unregistered")


@dataclass(frozen=True)
class ScoreOrder:
    shown: list[str]  # the score panels and columns, in this order
    diagnostics: list[str] = field(default_factory=list)  # a model's checks: its own section shows them
    constant: dict[str, float] = field(default_factory=dict)  # equal in every finished trial


def is_constant(values: pd.Series) -> bool:
    """Every finished value equal (within rounding of the mean), and at least two of them."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if len(values) < 2:
        return False
    mean = float(values.mean())
    return float(values.max() - values.min()) <= 1e-9 * max(1.0, abs(mean))


def order_scores(scores: list[str], objectives: list[tuple[str, str]], finished: pd.DataFrame) -> ScoreOrder:
    kinds = score_kinds()
    registered = list(kinds)
    wanted = [o for o, _ in objectives if o in scores]
    diagnostics = [s for s in scores if kinds.get(s) == "diagnostic" and s not in wanted]
    constant = {s: float(pd.to_numeric(finished[s], errors="coerce").dropna().iloc[0]) for s in scores
                if s not in wanted and s not in diagnostics and s in finished and is_constant(finished[s])}
    rest = [s for s in scores if s not in wanted and s not in diagnostics and s not in constant]

    def rank(s: str) -> tuple[int, int]:
        kind = kinds.get(s, "unregistered")
        return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), \
            registered.index(s) if s in registered else len(registered)

    return ScoreOrder(shown=wanted + sorted(rest, key=rank), diagnostics=diagnostics,
                      constant={s: v for s, v in constant.items() if math.isfinite(v)})
