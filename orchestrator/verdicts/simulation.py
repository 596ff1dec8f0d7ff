"""Whole studies simulated with the study's own decision function, to show its error rates and power.

A simulated study has one reference and m settings, each a distribution of scores over seeds. Its
rounds are the seed plan's looks: at each, :func:`~orchestrator.verdicts.sequential.take_look`
(the function a real study calls) sees Welch's statistics of every still-undecided comparison
from the first ``sizes[k]`` seeds of its setting and of the reference. Seeds spent count every
arm's seeds: a setting stops at its decision, the reference when no comparison is open.

Scenarios (scores in units of the reference's standard deviation):
- ``normal``: every arm N(effect, 1) (reference N(0, 1));
- ``skewed``: right-skewed gamma scores (shape 2), standard deviations 0.5 and 2 for alternate
  settings against 1 for the reference: the null of equal means with unequal spreads;
- ``failing``: N(effect, 1) except that a seed fails with probability 0.15 and then scores
  N(−4, 0.25) (the broadcast DiD's failing seeds: MIG ~0.07 where siblings reach ~0.22).

Example:
    >>> plan = SeedPlan.sequential(3, 2, 9)
    >>> out = simulate(plan, DecisionRule(0.05, 0.5), "normal", effect=0.0, m=4, studies=2000, seed=1)
    >>> out.false_effect <= 0.05
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sequential import EFFECT, EQUIVALENT, DecisionRule, LookState, SeedPlan, take_look, welch_stats

SCENARIOS = ("normal", "skewed", "failing")
FAIL_RATE, FAIL_MEAN, FAIL_SD = 0.15, -4.0, 0.25


@dataclass(frozen=True)
class Outcome:
    """Rates over the simulated studies."""

    scenario: str
    effect: float  # every setting's true difference from the reference, in reference sds
    studies: int
    any_effect: float  # share of studies with at least one "effect" (a false finding when effect = 0)
    any_equivalent: float  # share with at least one "equivalent" (false when |effect| >= margin)
    wrong_sign: float  # share with an "effect" of the wrong sign
    power: float  # share of comparisons decided "effect" with the true sign
    equivalent: float  # share of comparisons decided "equivalent"
    mean_seeds: float  # seeds spent per study, every arm counted
    mean_seeds_per_arm: float

    @property
    def false_effect(self) -> float:
        return self.any_effect if self.effect == 0 else self.wrong_sign

    def mc_error(self, rate: float) -> float:
        """The Monte-Carlo standard error of a rate estimated from these studies."""
        return float(np.sqrt(max(rate * (1 - rate), 1e-12) / self.studies))


def draw(scenario: str, effect: float, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Scores ``(studies, 1 + m, seeds)``: arm 0 the reference, arms 1..m shifted by ``effect``."""
    b, arms, n = shape
    shift = np.r_[0.0, np.full(arms - 1, effect)][None, :, None]
    if scenario == "normal":
        return rng.standard_normal(shape) + shift
    if scenario == "skewed":
        sd = np.r_[1.0, np.where(np.arange(arms - 1) % 2 == 0, 0.5, 2.0)][None, :, None]
        return (rng.gamma(2.0, 1.0, shape) - 2.0) / np.sqrt(2.0) * sd + shift
    if scenario == "failing":
        ok = rng.standard_normal(shape)
        failed = FAIL_MEAN + FAIL_SD * rng.standard_normal(shape)
        return np.where(rng.random(shape) < FAIL_RATE, failed, ok) + shift
    raise ValueError(f"unknown scenario {scenario!r}; one of {SCENARIOS}")


def simulate(plan: SeedPlan, rule: DecisionRule, scenario: str, effect: float, m: int, studies: int,
             seed: int = 0, sd_units: float = 1.0) -> Outcome:
    """``studies`` whole studies of ``m`` comparisons, each setting ``effect`` reference sds away.
    ``sd_units``: the reference's sd in the score's units (the rule's margin is in score units)."""
    rng = np.random.default_rng(seed)
    scores = draw(scenario, effect, (studies, 1 + m, plan.maximum), rng) * sd_units
    state = LookState.start(studies, m)
    n_arm = np.zeros((studies, 1 + m), int)
    for k, n in enumerate(plan.sizes):
        looking = state.open.copy()
        if not looking.any():
            break
        n_arm[:, 1:] = np.where(looking, n, n_arm[:, 1:])
        n_arm[:, 0] = np.where(looking.any(axis=1), n, n_arm[:, 0])
        head = scores[:, :, :n]
        mean, var = head.mean(axis=2), head.var(axis=2, ddof=1) if n > 1 else np.full(head.shape[:2], np.nan)
        diff, se, df = welch_stats(mean[:, 1:], var[:, 1:], n, mean[:, :1], var[:, :1], n)
        take_look(state, k, diff, se, df, looking, plan, rule)
    effect_found, equiv_found = state.decision == EFFECT, state.decision == EQUIVALENT
    true_sign = np.sign(effect)
    right = effect_found & (state.sign == true_sign) if effect != 0 else np.zeros_like(effect_found)
    wrong = effect_found & (state.sign != true_sign) if effect != 0 else effect_found
    seeds = n_arm.sum(axis=1)
    return Outcome(scenario=scenario, effect=effect, studies=studies,
                   any_effect=float(effect_found.any(axis=1).mean()),
                   any_equivalent=float(equiv_found.any(axis=1).mean()),
                   wrong_sign=float(wrong.any(axis=1).mean()), power=float(right.mean()),
                   equivalent=float(equiv_found.mean()), mean_seeds=float(seeds.mean()),
                   mean_seeds_per_arm=float(seeds.mean() / (1 + m)))
