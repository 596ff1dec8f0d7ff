"""The sequential decision rule's error rates, shown by simulating whole studies with the function a
study calls (orchestrator.verdicts.sequential.take_look, through verdicts.simulation.simulate).

10,000 studies a case; a rate passes when it is at most the level plus 2.58 Monte-Carlo standard
errors (one-sided 99.5%). The power checks make sure a rule that never decides cannot pass.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from orchestrator.report.stats import holm
from orchestrator.verdicts.sequential import (EFFECT, EQUIVALENT, UNDECIDED, DecisionRule, LookState, SeedPlan,
                                              holm_thresholds, p_values, spending, take_look, welch_stats)
from orchestrator.verdicts.simulation import SCENARIOS, simulate

ALPHA, STUDIES = 0.05, 10_000
SEQUENTIAL = SeedPlan.sequential(initial=3, step=2, maximum=10)  # the campaign's plan: looks at 3, 5, 7, 9, 10
DESIGNS = {"sequential 3+2..10": SEQUENTIAL, "fixed 3": SeedPlan.fixed([0, 1, 2]),
           "fixed 10": SeedPlan.fixed(list(range(10)))}
M = 5  # comparisons: ablation_dims' four other k and its control


def within_level(rate: float, studies: int, level: float = ALPHA) -> bool:
    return rate <= level + 2.58 * math.sqrt(level * (1 - level) / studies)


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_false_effect_beyond_the_level_under_the_null(design, scenario):
    out = simulate(DESIGNS[design], DecisionRule(ALPHA, margin=0.5), scenario, effect=0.0, m=M,
                   studies=STUDIES, seed=11)
    assert within_level(out.any_effect, STUDIES), (design, scenario, out.any_effect)


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("scenario", ["normal", "skewed"])
def test_no_false_equivalence_when_the_difference_equals_the_margin(design, scenario):
    margin = 1.0  # the true difference sits on the margin: "equivalent" would be wrong
    out = simulate(DESIGNS[design], DecisionRule(ALPHA, margin=margin), scenario, effect=margin, m=M,
                   studies=STUDIES, seed=12)
    assert within_level(out.any_equivalent, STUDIES), (design, scenario, out.any_equivalent)


def test_the_rule_decides_real_effects_and_real_equivalence():
    """Not a rule that never decides: at 2 sds most comparisons are found, with the right sign and
    fewer seeds than the fixed design of the maximum n; at Δ = 0 with a wide margin, most are equivalent."""
    found = simulate(SEQUENTIAL, DecisionRule(ALPHA), "normal", effect=2.0, m=M, studies=4000, seed=13)
    assert found.power > 0.7 and found.wrong_sign == 0
    assert found.mean_seeds_per_arm < SEQUENTIAL.maximum - 1
    negative = simulate(SEQUENTIAL, DecisionRule(ALPHA), "normal", effect=-2.0, m=M, studies=4000, seed=13)
    assert negative.power > 0.7 and negative.wrong_sign == 0
    same = simulate(SEQUENTIAL, DecisionRule(ALPHA, margin=2.0), "normal", effect=0.0, m=M, studies=4000, seed=14)
    assert same.equivalent > 0.5 and same.any_effect < ALPHA


def test_plans_and_spending():
    plan = SeedPlan.sequential(3, 2, 10, first=100)
    assert plan.sizes == (3, 5, 7, 9, 10) and plan.seeds == tuple(range(100, 110)) and plan.is_sequential
    assert math.isclose(sum(plan.spending()), 1.0) and all(s > 0 for s in plan.spending())
    assert plan.spending()[0] == pytest.approx(spending(0.3)) == pytest.approx(0.027)
    assert [plan.round_of(n) for n in (2, 3, 4, 9, 10)] == [-1, 0, 0, 3, 4]
    fixed = SeedPlan.fixed([4, 7, 9])
    assert fixed.sizes == (3,) and fixed.spending() == [1.0] and not fixed.is_sequential
    with pytest.raises(ValueError, match="rise strictly"):
        SeedPlan((0, 1, 2), (3, 2))
    with pytest.raises(ValueError, match="every seed"):
        SeedPlan((0, 1, 2), (2,))
    with pytest.raises(ValueError, match="alpha"):
        DecisionRule(alpha=1.5)
    with pytest.raises(ValueError, match="margin"):
        DecisionRule(margin=-0.1)


def test_holm_thresholds_agree_with_the_reports_holm():
    rng = np.random.default_rng(0)
    q = rng.random((200, 6)) ** 3
    reject, _ = holm_thresholds(q, ALPHA)
    for row, rej in zip(q, reject):
        assert list(rej) == [p <= ALPHA for p in holm(list(row))]


def test_one_look_by_hand():
    """Welch's standard error with Hsu's degrees of freedom, the two p-values and a decision, by hand."""
    a, b = np.array([0.30, 0.32, 0.31, 0.33]), np.array([0.20, 0.21, 0.19, 0.22])
    diff, se, df = welch_stats(a.mean(), a.var(ddof=1), 4, b.mean(), b.var(ddof=1), 4)
    assert diff == pytest.approx(0.11) and df == 3
    assert se == pytest.approx(math.sqrt(a.var(ddof=1) / 4 + b.var(ddof=1) / 4))
    p_eff, p_eq = p_values(diff, se, df, margin=0.03)
    from scipy import stats
    assert p_eff == pytest.approx(2 * stats.t.sf(diff / se, 3)) and p_eq > 0.5
    state = LookState.start(1, 1)
    take_look(state, 0, np.array([[diff]]), np.array([[se]]), np.array([[df]]), np.ones((1, 1), bool),
              SeedPlan.fixed([0, 1, 2, 3]), DecisionRule(ALPHA, 0.03))
    assert state.decision[0, 0] == EFFECT and state.sign[0, 0] == 1
    # no variance on either side, or one seed: no test, undecided
    _, se1, _ = welch_stats(1.0, 0.0, 3, 1.0, 0.0, 3)
    _, se2, _ = welch_stats(1.0, 0.1, 1, 1.0, 0.1, 3)
    assert np.isnan(se1) and np.isnan(se2)
    assert p_values(0.0, se1, np.nan, 0.03) == (1.0, 1.0)


def test_a_decision_is_final_and_equivalence_wins_over_a_tiny_effect():
    plan, rule = SeedPlan.sequential(3, 3, 9), DecisionRule(ALPHA, margin=1.0)
    state = LookState.start(1, 2)
    # comparison 0: a tiny, precisely measured difference (inside the margin): equivalent, not effect
    diff, se, df = np.array([[0.05, 0.0]]), np.array([[0.001, 5.0]]), np.array([[8.0, 8.0]])
    take_look(state, 2, diff, se, df, np.ones((1, 2), bool), plan, rule)
    assert list(state.decision[0]) == [EQUIVALENT, UNDECIDED]
    # a later look with data that would say otherwise changes nothing: the comparison has stopped
    take_look(state, 2, np.array([[5.0, 0.0]]), np.array([[0.001, 5.0]]), df, np.ones((1, 2), bool), plan, rule)
    assert list(state.decision[0]) == [EQUIVALENT, UNDECIDED] and state.decided_at[0, 0] == 2
