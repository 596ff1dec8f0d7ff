"""The sequential decision rule: after each round of seeds, every comparison is an **effect** (with
its sign), **equivalent** (within ± a margin) or **undecided**; only undecided ones get more seeds.

The method, each part standard and citable:

- **One look** of one comparison is the t statistic of Δ = mean(setting) − mean(reference) with
  Welch's (1947) unpooled standard error and Hsu's (1938) conservative degrees of freedom,
  min(n_a, n_b) − 1: two-sided for "effect"; two one-sided tests against −margin and +margin for
  "equivalent" (TOST, Schuirmann 1987; its p is the larger of the two). Hsu's degrees of freedom,
  not Welch–Satterthwaite's: with skewed scores of unequal spread, Welch's test exceeds its level
  at these n (simulated: 0.064 for a fixed 10 seeds and 4 comparisons at 0.05), Hsu's does not.
- **Several looks**: an alpha-spending function (Lan & DeMets 1983) of the power family of Kim &
  DeMets (1987), g(t) = t³, t = n_k / n_max the planned information fraction of look k: it spends
  little where 3 seeds cannot decide and most at the larger looks (a Pocock-type g spent 42% at
  3 seeds and lost a quarter of the power at 2 sds in simulation). Look k
  may spend the share Δg_k = g(t_k) − g(t_{k−1}), fixed by the seed plan before any data. The
  comparison's spent p-value is q = min_k p_k / Δg_k. Because Σ_k Δg_k ≤ 1, Bonferroni's
  inequality over the looks gives P(q ≤ a) ≤ a under the null for every a, whatever the
  correlation between looks and whichever looks are taken: q is a valid p-value. (Boundaries from
  the joint normal law of the looks spend less conservatively, but with n ≤ 10 seeds and
  t statistics they hold only approximately; this bound holds for any valid per-look test.)
- **Several comparisons**: Holm's (1979) step-down procedure over the q of every comparison of
  the study, one family for "effect" and one for "equivalent", each at ``alpha``. Holm holds
  under any dependence. Every q only falls as looks accrue and Holm's rejections only grow as
  p-values fall, so each decision taken at some round stands in Holm's decisions on the last
  round's q: the family-wise rate of a wrong "effect" over all comparisons and all looks is at
  most ``alpha``, and so is that of a wrong "equivalent" (true |Δ| ≥ margin).
- A comparison in both families is **equivalent** (its difference, if any, is smaller than the
  margin, the smallest that matters). A decision is final: the comparison gets no more looks.

The rates are shown by simulation (:mod:`orchestrator.verdicts.simulation`, which calls
:func:`take_look`, the function the study calls; ``tests/test_verdicts_simulation.py``).

Every array below is ``(B, m)``: B studies (1 for a real study, thousands in a simulation) of m
comparisons each.

Example:
    >>> plan = SeedPlan.sequential(initial=3, step=2, maximum=9)
    >>> plan.sizes, [round(s, 3) for s in plan.spending()]
    ((3, 5, 7, 9), [0.037, 0.134, 0.299, 0.529])
    >>> state = LookState.start(1, 2)
    >>> diff, se, df = np.array([[0.5, 0.0]]), np.array([[0.05, 0.05]]), np.array([[4.0, 4.0]])
    >>> look = take_look(state, 0, diff, se, df, np.ones((1, 2), bool), plan, DecisionRule(0.05, 0.3))
    >>> [DECISION_WORDS[d] for d in state.decision[0]]
    ['effect', 'undecided']
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

UNDECIDED, EFFECT, EQUIVALENT = 0, 1, 2
DECISION_WORDS = {UNDECIDED: "undecided", EFFECT: "effect", EQUIVALENT: "equivalent"}


@dataclass(frozen=True)
class DecisionRule:
    """How an objective is decided: the family-wise level, and the smallest difference that matters
    (``margin``, in the score's units; None: "equivalent" is never concluded)."""

    alpha: float = 0.05
    margin: float | None = None

    def __post_init__(self):
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.margin is not None and not (self.margin > 0 and math.isfinite(self.margin)):
            raise ValueError(f"margin must be a positive number, got {self.margin}")


@dataclass(frozen=True)
class SeedPlan:
    """The seeds every configuration may run with, in order, and the looks: ``sizes[k]`` seeds a side
    at look k. A fixed ``seeds: N`` is a plan of one look."""

    seeds: tuple[int, ...]
    sizes: tuple[int, ...]

    def __post_init__(self):
        if not self.sizes or list(self.sizes) != sorted(set(self.sizes)) or self.sizes[0] < 1:
            raise ValueError(f"look sizes must rise strictly from at least 1, got {self.sizes}")
        if self.sizes[-1] != len(self.seeds):
            raise ValueError(f"the last look ({self.sizes[-1]} seeds) must use every seed ({len(self.seeds)})")

    @classmethod
    def fixed(cls, seeds: list[int] | tuple[int, ...]) -> "SeedPlan":
        return cls(tuple(seeds), (len(seeds),))

    @classmethod
    def sequential(cls, initial: int, step: int, maximum: int, first: int = 0) -> "SeedPlan":
        """Seeds ``first, first + 1, ...``; looks at ``initial``, ``initial + step``, ... and ``maximum``."""
        sizes = list(range(initial, maximum, step)) if step > 0 else [initial]
        return cls(tuple(range(first, first + maximum)), tuple(sorted({*sizes, maximum})))

    @property
    def is_sequential(self) -> bool:
        return len(self.sizes) > 1

    @property
    def maximum(self) -> int:
        return self.sizes[-1]

    def spending(self) -> list[float]:
        """Δg_k of every look: the share of a comparison's alpha that look k may spend (sums to 1)."""
        g = [spending(n / self.maximum) for n in self.sizes]
        return [b - a for a, b in zip([0.0, *g[:-1]], g)]

    def round_of(self, n: int) -> int:
        """The last look whose size ``n`` seeds reach (-1 below the first)."""
        return sum(size <= n for size in self.sizes) - 1


SPENDING_POWER = 3  # Kim & DeMets' rho


def spending(t: float) -> float:
    """The share of alpha spent by information fraction ``t``: Kim & DeMets' (1987) t**rho, rho = 3."""
    return min(max(t, 0.0), 1.0) ** SPENDING_POWER


@dataclass
class LookState:
    """Where B studies of m comparisons stand after their looks so far."""

    q_effect: np.ndarray  # spent p-value of "Δ = 0" (inf before any look)
    q_equiv: np.ndarray  # spent p-value of "|Δ| ≥ margin"
    decision: np.ndarray  # UNDECIDED / EFFECT / EQUIVALENT
    sign: np.ndarray  # the sign of Δ at the look that gave q_effect its value
    decided_at: np.ndarray  # the look index of the decision (-1: none)
    looks: np.ndarray = field(default=None)  # looks taken

    @classmethod
    def start(cls, b: int, m: int) -> "LookState":
        return cls(np.full((b, m), np.inf), np.full((b, m), np.inf), np.zeros((b, m), np.int8),
                   np.zeros((b, m), np.int8), np.full((b, m), -1, np.int16), np.zeros((b, m), np.int16))

    @property
    def open(self) -> np.ndarray:
        return self.decision == UNDECIDED


@dataclass
class Look:
    """What one look computed, for the record: p-values, the share spent, and the Holm thresholds
    each family's q met or missed (``(B, m)`` arrays)."""

    p_effect: np.ndarray
    p_equiv: np.ndarray
    spend: float
    holm_effect: np.ndarray  # the Holm threshold q_effect was compared with
    holm_equiv: np.ndarray


def welch_stats(mean_a, var_a, n_a, mean_b, var_b, n_b):
    """Δ = mean_a − mean_b, its (Welch) standard error and Hsu's degrees of freedom min(n_a, n_b) − 1;
    nan where either side has fewer than two values or neither side varies."""
    mean_a, var_a, n_a, mean_b, var_b, n_b = map(lambda x: np.asarray(x, float), (mean_a, var_a, n_a, mean_b,
                                                                                   var_b, n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        va, vb = var_a / n_a, var_b / n_b
        se = np.sqrt(va + vb)
        df = np.minimum(n_a, n_b) - 1 + 0 * se
    bad = (n_a < 2) | (n_b < 2) | ~(se > 0)
    return mean_a - mean_b, np.where(bad, np.nan, se), np.where(bad, np.nan, df)


def p_values(diff, se, df, margin: float | None):
    """The two-sided p of Δ = 0 and the TOST p of |Δ| ≥ margin (1 where undefined, or with no margin)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p_effect = 2 * stats.t.sf(np.abs(diff) / se, df)
        if margin is None:
            p_equiv = np.ones_like(p_effect)
        else:
            p_equiv = np.maximum(stats.t.sf((diff + margin) / se, df), stats.t.cdf((diff - margin) / se, df))
    return np.nan_to_num(p_effect, nan=1.0), np.nan_to_num(p_equiv, nan=1.0)


def holm_thresholds(q: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down over each row of ``q``: which hypotheses it rejects, and the threshold each
    q was compared with (alpha / (m − rank); a hypothesis after the first acceptance is not rejected)."""
    b, m = q.shape
    order = np.argsort(q, axis=1, kind="stable")
    ranked = np.take_along_axis(q, order, axis=1)
    level = alpha / (m - np.arange(m))
    ok = np.cumprod(ranked <= level, axis=1).astype(bool)
    reject, threshold = np.empty_like(ok), np.empty_like(q)
    np.put_along_axis(reject, order, ok, axis=1)
    np.put_along_axis(threshold, order, np.broadcast_to(level, (b, m)), axis=1)
    return reject, threshold


def take_look(state: LookState, k: int, diff, se, df, looking: np.ndarray, plan: SeedPlan,
              rule: DecisionRule) -> Look:
    """Look k of the plan at the comparisons where ``looking`` (and still undecided): update their
    spent p-values, apply Holm to every comparison, and decide those that pass. ``state`` changes in
    place; the returned :class:`Look` is what a record of this look needs."""
    spend = plan.spending()[k]
    looking = np.asarray(looking, bool) & state.open
    p_effect, p_equiv = p_values(np.asarray(diff, float), np.asarray(se, float), np.asarray(df, float), rule.margin)
    with np.errstate(divide="ignore"):
        q_eff, q_eq = p_effect / spend, p_equiv / spend
    better = looking & (q_eff < state.q_effect)
    state.q_effect = np.where(better, q_eff, state.q_effect)
    state.sign = np.where(better, np.sign(np.nan_to_num(diff)).astype(np.int8), state.sign)  # NaN: not looked at
    state.q_equiv = np.where(looking, np.minimum(state.q_equiv, q_eq), state.q_equiv)
    state.looks = state.looks + looking
    effect, t_effect = holm_thresholds(state.q_effect, rule.alpha)
    equiv, t_equiv = holm_thresholds(state.q_equiv, rule.alpha)
    new = state.open & (effect | equiv)
    state.decision = np.where(new, np.where(equiv, EQUIVALENT, EFFECT), state.decision).astype(np.int8)
    state.decided_at = np.where(new, k, state.decided_at).astype(np.int16)
    return Look(p_effect, p_equiv, spend, t_effect, t_equiv)
