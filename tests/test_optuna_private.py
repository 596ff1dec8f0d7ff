"""The Optuna internals orchestrator.running.optuna_private relies on, against the installed Optuna."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from orchestrator.running.optuna_private import planned_params, trial_of


@pytest.fixture
def ostudy():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study()


def test_planned_params_of_an_enqueued_trial_before_and_after_ask(ostudy):
    ostudy.enqueue_trial({"n": 2, "mode": "b"}, user_attrs={"seed": 7})
    waiting = ostudy.get_trials(states=(TrialState.WAITING,))[0]
    assert waiting.params == {} and planned_params(waiting) == {"n": 2, "mode": "b"}
    trial = ostudy.ask()
    assert trial.user_attrs == {"seed": 7}
    trial.suggest_int("n", 1, 3)
    running = ostudy.get_trials(states=(TrialState.RUNNING,))[0]
    assert planned_params(running) == {"n": 2, "mode": "b"}  # "mode" not yet suggested, still planned


def test_trial_of_a_frozen_running_trial_sets_attributes_and_reports(ostudy):
    asked = ostudy.ask()
    frozen = ostudy.get_trials(states=(TrialState.RUNNING,))[0]
    handle = trial_of(ostudy, frozen)
    assert handle.number == asked.number
    handle.set_user_attr("interrupted", True)
    handle.report(0.5, step=3)
    ostudy.tell(frozen.number, state=TrialState.FAIL)  # public: tell by number
    done = ostudy.get_trials()[0]
    assert done.state == TrialState.FAIL and done.user_attrs == {"interrupted": True}
    assert done.intermediate_values == {3: 0.5}
