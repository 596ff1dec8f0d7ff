"""The answer in words: one sentence per verdict, the protocol line, and whether an effect held
across training. Plain text; the report draws the same sentences (:mod:`orchestrator.report.findings`).

Example:
    >>> sentence(verdict)                                               # doctest: +SKIP
    'lambda_h=0 against lambda_h=1.34: mig +0.076 [0.035, 0.117], effect (higher), decided after 5 seeds a side'
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .rounds import Replay, Verdict
from .sequential import SPENDING_POWER


def digits(scale: float) -> int:
    """Decimals that show a score of this magnitude to about three significant digits (one format
    per score, so every number of a column has the same digits)."""
    if not math.isfinite(scale) or scale <= 0:
        return 3
    return int(min(4, max(0, 2 - math.floor(math.log10(scale)))))


def score_digits(replay: Replay) -> dict[str, int]:
    scale: dict[str, float] = {}
    for v in replay.verdicts:
        if v.look is not None:
            for x in (v.look.mean, v.look.mean_ref):
                if math.isfinite(x):
                    scale[v.score] = max(scale.get(v.score, 0.0), abs(x))
    return {s: digits(x) for s, x in scale.items()}


def interval(v: Verdict, d: int) -> str:
    """``+0.076 [0.035, 0.117]``: Δ and its 95% interval (Δ alone where no interval exists)."""
    lk = v.look
    if lk is None or not math.isfinite(lk.diff):
        return "no difference measured"
    text = f"{lk.diff:+.{d}f}"
    return text + (f" [{lk.ci_low:.{d}f}, {lk.ci_high:.{d}f}]" if math.isfinite(lk.ci_low) else "")


def decision_text(v: Verdict, maximum: int | None = None) -> str:
    """``effect (higher), decided after 5 seeds a side`` / ``equivalent within ±0.03, ...`` /
    ``undecided after 10 seeds a side``."""
    n, n_ref = v.seeds
    seeds = f"{n} seed{'s' if n > 1 else ''} a side" if n == n_ref else f"{n} and {n_ref} seeds"
    if v.look is None or n == 0 or n_ref == 0:
        return "undecided: no finished trial on one side"
    if v.decision == "effect":
        return f"effect ({'higher' if v.sign > 0 else 'lower'}), decided after {seeds}"
    if v.decision == "equivalent":
        return f"equivalent within ±{v.rule.margin:g}, decided after {seeds}"
    return f"undecided after {seeds}" + (" (the plan's maximum)" if maximum and min(n, n_ref) >= maximum else "")


def sentence(v: Verdict, d: int = 3, maximum: int | None = None) -> str:
    return f"{v.comparison.label}: {v.score} {interval(v, d)}, {decision_text(v, maximum)}"


def protocol_text(replay: Replay, final_protocol: str, budget: str, steps: str) -> str:
    plan = replay.plan
    objectives = [v for v in replay.verdicts if v.objective]
    rules = {v.score: v.rule for v in objectives}
    looks = ("one look" if not plan.is_sequential else
             f"looks at {', '.join(map(str, plan.sizes))} seeds a side, alpha spent over them as t^{SPENDING_POWER} "
             "(Kim & DeMets 1987)")
    rule_text = "; ".join(f"{s}: alpha {r.alpha:g}" + (f", margin ±{r.margin:g}" if r.margin else ", no margin "
                                                      "(\"equivalent\" needs one)") for s, r in rules.items())
    return (f"Final scores on the {final_protocol} protocol, {budget} budget ({steps}). Decisions: {rule_text}; "
            f"family-wise over each score's comparisons (Holm), {looks}; Welch's standard error with Hsu's "
            "degrees of freedom; intervals are 95% (unadjusted).")


@dataclass
class TrainingCheck:
    """Δ of an in-training score at each evaluation step, with its 95% interval, and whether the
    sign of an interval that excludes 0 changes between the last two evaluations."""

    comparison: str
    score: str  # <protocol>/<score>
    steps: list[int]
    diffs: list[float]
    lows: list[float]
    highs: list[float]

    @property
    def directions(self) -> list[int]:
        return [int(np.sign(d)) if (lo > 0 or hi < 0) else 0 for d, lo, hi in zip(self.diffs, self.lows, self.highs)]

    @property
    def flips(self) -> bool:
        return len(self.steps) >= 2 and self.directions[-1] != self.directions[-2]

    def change_text(self) -> str:
        """``changed: step 500 spans 0, step 1,000 lower`` (where :attr:`flips`)."""
        side = {1: "higher", -1: "lower", 0: "spans 0"}
        return (f"changed: step {self.steps[-2]:,} {side[self.directions[-2]]}, "
                f"step {self.steps[-1]:,} {side[self.directions[-1]]}")

    def text(self, d: int = 3) -> str:
        if not self.steps:
            return f"{self.comparison}: no in-training {self.score}"
        held = ("FLAGGED, " + self.change_text()) if self.flips else "the same side of 0 at the last two evaluations"
        last = f"{self.diffs[-1]:+.{d}f} [{self.lows[-1]:.{d}f}, {self.highs[-1]:.{d}f}]"
        return f"{self.comparison}: {self.score} {last} at step {self.steps[-1]}; {held}"


def training_check(comparison: str, score: str, by_step: dict[int, tuple[np.ndarray, np.ndarray]]) -> TrainingCheck:
    """``by_step``: step -> (setting's values, reference's values) of the in-training score."""
    steps, diffs, lows, highs = [], [], [], []
    for step in sorted(by_step):
        x, y = by_step[step]
        if len(x) < 2 or len(y) < 2:
            continue
        va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
        se, df = math.sqrt(va + vb), min(len(x), len(y)) - 1
        diff = float(x.mean() - y.mean())
        half = float(stats.t.ppf(0.975, df) * se) if se > 0 else 0.0
        steps.append(int(step))
        diffs.append(diff)
        lows.append(diff - half)
        highs.append(diff + half)
    return TrainingCheck(comparison, score, steps, diffs, lows, highs)
