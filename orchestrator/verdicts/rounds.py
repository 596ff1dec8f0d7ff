"""A run's rounds replayed from its trials: every look, every decision, and the trials the next
round needs. The replay is a pure function of the trials that ended, so a driver killed at any
point and started again finds the same rounds, the same decisions and the same missing trials.

Round k of the plan looks at the seeds ``plan.seeds[:plan.sizes[k]]``. Round 0 runs every
configuration; round k + 1 runs the configurations of the comparisons of an objective that round k
left undecided (both sides: the reference gets seeds while any comparison against it is open).
Each score is decided over the same looks: an objective's comparison looks while it is open; any
other score's comparison looks at the rounds that gave both its sides seeds, until it is decided.
A round whose trials have not all ended stops the replay there: its trials are what is missing.
Round 0's configurations are those the trials name: the driver asks for a replay only once every
trial it enqueued has ended (:mod:`orchestrator.running.rounds`).

Example:
    >>> replay = replay_rounds(trials, plan, {"mig": DecisionRule(0.05, 0.03)})     # doctest: +SKIP
    >>> replay.missing                       # {config_id: [seeds the next round still needs]}
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from .comparisons import Comparison, Trials, comparisons_of
from .looks import LookRow
from .sequential import DECISION_WORDS, DecisionRule, LookState, SeedPlan, take_look, welch_stats

DEFAULT_RULE = DecisionRule()


@dataclass
class Verdict:
    """The decision of one comparison of one score, with the look that made it (the last look when
    undecided)."""

    score: str
    comparison: Comparison
    decision: str  # effect | equivalent | undecided
    sign: int
    look: LookRow | None  # None: never looked at (no data)
    rule: DecisionRule
    objective: bool

    @property
    def seeds(self) -> tuple[int, int]:
        return (self.look.n, self.look.n_ref) if self.look else (0, 0)


@dataclass
class Replay:
    plan: SeedPlan
    looks: list[LookRow] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    rounds: int = 0  # rounds looked at
    missing: dict[Any, list[int]] = field(default_factory=dict)  # config_id -> seeds still to run
    finished: bool = False  # nothing left to run: every comparison decided, or the plan spent


def _stats(x: np.ndarray, y: np.ndarray):
    diff, se, df = welch_stats(x.mean() if len(x) else np.nan, x.var(ddof=1) if len(x) > 1 else np.nan, len(x),
                               y.mean() if len(y) else np.nan, y.var(ddof=1) if len(y) > 1 else np.nan, len(y))
    return float(diff), float(se), float(df)


def replay_rounds(trials: Trials, plan: SeedPlan, rules: dict[str, DecisionRule]) -> Replay:
    """Replay ``trials`` round by round under ``plan``; ``rules``: each objective's rule (the other
    scores are decided with the first objective's alpha and no margin)."""
    out = Replay(plan)
    objectives = [s for s in rules if s in trials.scores] or trials.scores[:1]
    others = [s for s in trials.scores if s not in objectives]
    base = DecisionRule(next(iter(rules.values())).alpha) if rules else DEFAULT_RULE
    first = plan.seeds[:plan.sizes[0]]
    comps = {s: comparisons_of(trials, s, first) for s in objectives + others}
    all_ids = tuple(_config_ids(trials.table["config_id"])) if not trials.table.empty else ()
    states = {s: LookState.start(1, len(c)) for s, c in comps.items()}
    active = set(all_ids)  # configurations that get this round's seeds
    last: dict[tuple[str, int], LookRow] = {}
    ended = _ended(trials)
    for k, n in enumerate(plan.sizes):
        seeds = plan.seeds[:n]
        need = {cid: [s for s in seeds if (cid, s) not in ended] for cid in active}
        need = {cid: s for cid, s in need.items() if s}
        if need:
            out.missing = need
            break
        out.rounds = k + 1
        for score, comparisons in comps.items():
            if not comparisons:
                continue
            rule, state = rules.get(score, base), states[score]
            looking = np.array([[set(c.setting.config_ids) | set(c.reference.config_ids) <= active
                                 for c in comparisons]], bool) & state.open
            data = [(trials.values(c.setting, score, seeds), trials.values(c.reference, score, seeds))
                    for c in comparisons]
            st = np.array([[_stats(x, y) for x, y in data]])  # (1, m, 3)
            look = take_look(state, k, st[..., 0], st[..., 1], st[..., 2], looking, plan, rule)
            for i, (c, (x, y)) in enumerate(zip(comparisons, data)):
                row = _row(k, n, score, c, bool(looking[0, i]), x, y, st[0, i], look, state, i, rule)
                out.looks.append(row)
                if row.looked or (score, i) not in last:
                    last[(score, i)] = row
        open_ids = set()
        for score in objectives:
            for i, c in enumerate(comps[score]):
                if states[score].open[0, i]:
                    open_ids |= set(c.setting.config_ids) | set(c.reference.config_ids)
        if not open_ids or k == len(plan.sizes) - 1:
            out.finished = True
            break
        active = open_ids
    for score, comparisons in comps.items():
        state = states[score]
        for i, c in enumerate(comparisons):
            out.verdicts.append(Verdict(score, c, DECISION_WORDS[int(state.decision[0, i])], int(state.sign[0, i]),
                                        last.get((score, i)), rules.get(score, base), score in objectives))
    return out


def _config_ids(values) -> list:
    """The configurations the trials name, each once, in a fixed order."""
    return sorted({v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))}, key=str)


def _ended(trials: Trials) -> set[tuple[Any, int]]:
    t = trials.table
    return {(cid, int(seed)) for cid, seed in zip(t["config_id"], t["seed"]) if seed is not None and seed == seed}


def _row(k, n, score, c, looked, x, y, st, look, state, i, rule) -> LookRow:
    diff, se, df = st
    half = float(stats.t.ppf(0.975, df) * se) if math.isfinite(se) and math.isfinite(df) else math.nan
    return LookRow(round=k, seeds=n, score=score, comparison=c.label, looked=looked, n=len(x), n_ref=len(y),
                   mean=float(x.mean()) if len(x) else math.nan, mean_ref=float(y.mean()) if len(y) else math.nan,
                   diff=diff, ci_low=diff - half, ci_high=diff + half,
                   p_effect=float(look.p_effect[0, i]), p_equiv=float(look.p_equiv[0, i]), spend=look.spend,
                   q_effect=float(state.q_effect[0, i]), q_equiv=float(state.q_equiv[0, i]),
                   holm_effect=float(look.holm_effect[0, i]), holm_equiv=float(look.holm_equiv[0, i]),
                   alpha=rule.alpha, margin=rule.margin if rule.margin is not None else math.nan,
                   decision=DECISION_WORDS[int(state.decision[0, i])], sign=int(state.sign[0, i]))
