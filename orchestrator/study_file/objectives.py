"""Whether a study's trials will report its objectives: checked before anything trains.

A trial's final scores are those of the metrics its Config's ``eval_metrics`` names (every
registered metric when it is empty) and the scores its model provides itself (registered with
``needs=model``, :mod:`did_core.metrics.registry`). An objective outside both would fail every
trial of the study at its end; it is refused instead, naming the field.

Example:
    >>> check_objectives(arms, probes, [Objective(metric="sap")], fail)   # doctest: +SKIP
    StudyError: studies/x.yaml: objectives.0.metric: 'sap' is not among the scores of arm 'did' ...
"""
from __future__ import annotations

from did_core.metrics.registry import MODEL, computed_metrics, get_metric, metric_names

from .schema import Objective


def computed_scores(config) -> set[str]:
    """The scores the evaluation driver computes for a trial of ``config`` (its ``eval_metrics``)."""
    names = config.metric_names() or computed_metrics()
    return {score for name in names for score in get_metric(name).scores}


def provided_scores() -> set[str]:
    """The scores models compute from their own nets (whichever model registered them)."""
    return {score for name in metric_names((MODEL,)) for score in get_metric(name).scores}


def check_objectives(arms: list, probes: list, objectives: list[Objective], fail) -> None:
    """``fail(field, why)`` for the first objective an arm's trials would not score (``probes``: each
    arm's first Config)."""
    provided = provided_scores()
    for arm, probe in zip(arms, probes):
        computed = computed_scores(probe)
        for i, objective in enumerate(objectives):
            if objective.metric not in computed | provided:
                what = f"eval_metrics {probe.eval_metrics!r}" if probe.eval_metrics else "the registered metrics"
                arm_name = f" of arm {arm.label!r}" if len(arms) > 1 else ""
                raise fail(f"objectives.{i}.metric", f"{objective.metric!r} is not among the scores{arm_name}: "
                                                     f"{what} compute {sorted(computed)}, and no model provides it")
