"""The two things the orchestrator needs from Optuna that its public API does not offer.

Everything else uses public calls (``ask``, ``tell`` by trial number, ``enqueue_trial``,
``Trial.report``, ``Trial.set_user_attr``). ``tests/test_optuna_private.py`` checks both
functions against the installed Optuna, so an Optuna release that changes them fails there, by
name, rather than somewhere in a study.

Example:
    >>> frozen = ostudy.get_trials(states=(TrialState.RUNNING,))[0]
    >>> trial_of(ostudy, frozen).set_user_attr("interrupted", True)
    >>> planned_params(ostudy.get_trials(states=(TrialState.WAITING,))[0])
    {'n': 2}
"""
from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial


def trial_of(ostudy: optuna.Study, frozen: FrozenTrial) -> optuna.Trial:
    """A live handle on a trial this process did not ``ask`` (one a dead process left RUNNING),
    to set its attributes before it is told. Private: ``FrozenTrial._trial_id``."""
    return optuna.Trial(ostudy, frozen._trial_id)


def planned_params(frozen: FrozenTrial) -> dict[str, Any]:
    """A trial's parameters; for an enqueued one also those fixed for it before it set them (a trial
    taken from the queue and killed before it wrote its parameters still has its plan).
    Private: the ``fixed_params`` system attribute that ``Study.enqueue_trial`` writes."""
    return {**frozen.system_attrs.get("fixed_params", {}), **frozen.params}
