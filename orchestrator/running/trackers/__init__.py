"""Experiment trackers, offline: each trial's config, its losses and in-training scores per step, and
its final scores, written during the study by Ray Tune's own logger callbacks.

- ``tensorboard``: Ray's ``TBXLoggerCallback`` (:mod:`.tensorboard_tracker`), event files in
  ``RUN_DIR/tensorboard/trial_<n>/``; ``tensorboard --logdir RUN_DIR/tensorboard``.
- ``mlflow``: Ray's ``MLflowLoggerCallback`` (:mod:`.mlflow_tracker`), one MLflow run per trial in the
  experiment ``<study>-<preset>``; by default in an SQLite store inside the run folder,
  ``sqlite:///RUN_DIR/mlflow.db`` (MLflow keeps its plain-file store in maintenance mode and refuses it
  unless told otherwise), or at the tracking URI the user gives.

The study turns trackers on from its file (``trackers: [tensorboard, mlflow]``), from the command line
(``--tracker tensorboard --tracker mlflow --tracking-uri URI``) or from :func:`orchestrator.run_study`;
a tracker whose package is missing is refused in one line before anything is written.

What the trackers record of one trial (shared by both, so that they agree):

- its config (:func:`trial_config`): the searched parameters, the seed, the fixed Config fields, and
  ``trial``, ``config_id``, ``model``, ``budget`` (and ``arm`` in a comparison);
- per step (:func:`tracked_values`): ``loss/<name>``, ``images_per_sec``, the in-training scores
  ``<protocol>/<score>``, and at the last step the final scores ``final/<score>``.

Example:
    >>> settings = TrackerSettings(("tensorboard",), Path("runs/x-smoke"), "x-smoke")
    >>> tune.RunConfig(callbacks=tracker_callbacks(settings))                    # doctest: +SKIP
    >>> tracked_values(TrialReport("progress", 10, "", "", 0.0, losses={"recon": 0.5}))
    {'loss/recon': 0.5}
"""
from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...run_folder.layout import LOSS_PREFIX, MLFLOW_ARTIFACTS, MLFLOW_DB, TENSORBOARD_DIR, THROUGHPUT  # noqa: F401
from ...study_file.reader import StudyError
from ...study_file.schema import TRACKERS
FINAL_PREFIX = "final/"  # a final score: final/<score>
# the package each tracker writes with, and the extra of this project that installs it
_NEEDS = {"tensorboard": ("tensorboardX", "tensorboard"), "mlflow": ("mlflow", "mlflow")}
MAX_PARAM = 500  # characters of a config value (MLflow keeps at most 6,000)


@dataclass(frozen=True)
class TrackerSettings:
    """Which trackers one study session writes to, and where: from :mod:`orchestrator.study` to
    :mod:`orchestrator.running.tuning`, which hands Tune the callbacks of :func:`tracker_callbacks`."""

    names: tuple[str, ...]  # a subset of TRACKERS, in that order
    run_dir: Path
    experiment: str  # the study's run name, <study>-<preset>: MLflow's experiment
    tracking_uri: str | None = None  # MLflow's; default: an SQLite store in the run folder

    @classmethod
    def of(cls, study, run_dir: Path) -> "TrackerSettings | None":
        """The trackers of a :class:`~orchestrator.study_file.plan.Study` (None when it has none)."""
        if not study.trackers:
            return None
        return cls(tuple(study.trackers), run_dir, study.run_name, study.tracking_uri)

    @property
    def tensorboard_dir(self) -> Path:
        return self.run_dir / TENSORBOARD_DIR

    @property
    def mlflow_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.run_dir / MLFLOW_DB}"


def chosen_trackers(from_file: list[str] | tuple[str, ...] = (), given: list[str] | tuple[str, ...] = ()) -> tuple[str, ...]:
    """The trackers of a session: the study file's and those given (``--tracker``), each once, in the
    order of :data:`TRACKERS`; :class:`StudyError` for an unknown name or a tracker whose package is
    missing (one line, naming the package and the extra that installs it)."""
    names = [*from_file, *given]
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise StudyError(f"--tracker {unknown[0]}: unknown tracker; use one of {', '.join(TRACKERS)}")
    chosen = tuple(n for n in TRACKERS if n in names)
    for name in chosen:
        module, extra = _NEEDS[name]
        try:
            importlib.import_module(module)
        except ImportError:
            raise StudyError(f"tracker {name}: the Python package {module} is not installed; "
                             f"pip install 'did-orchestrator[{extra}]'") from None
    return chosen


def tracker_callbacks(settings: TrackerSettings | None) -> list:
    """Ray Tune logger callbacks writing to the trackers of ``settings`` (none for None)."""
    if settings is None:
        return []
    out = []
    if "tensorboard" in settings.names:
        from .tensorboard_tracker import TensorBoardTracker

        out.append(TensorBoardTracker(settings))
    if "mlflow" in settings.names:
        from .mlflow_tracker import MLflowTracker

        out.append(MLflowTracker(settings))
    return out


def summary_lines(study, run_dir: Path) -> list[str]:
    """The lines of the study's closing summary that say where its trackers' records are."""
    settings = TrackerSettings.of(study, run_dir)
    lines = []
    if settings and "tensorboard" in settings.names:
        lines.append(f"tensorboard: tensorboard --logdir {settings.tensorboard_dir} --host 127.0.0.1")
    if settings and "mlflow" in settings.names:
        lines.append(f"mlflow:   experiment {settings.experiment!r} at {settings.mlflow_uri}")
    return lines


def trial_config(tune_config: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """One trial's config as flat name -> scalar (a list or mapping as JSON text): its searched
    parameters, the seed, the fixed Config fields, then ``trial``, ``config_id``, ``model``, ``budget``
    and, in a comparison, ``arm``; never the run folder's paths. A name appears once (the first wins)."""
    c = tune_config
    out: dict[str, Any] = {**c.get("params", {}), "seed": c.get("seed")}
    for k, v in {**c.get("fixed", {}), "trial": c.get("number"), "config_id": c.get("config_id"),
                 "model": c.get("model"), "budget": c.get("budget")}.items():
        out.setdefault(k, v)
    if c.get("arm") not in (None, c.get("model")):
        out.setdefault("arm", c["arm"])
    return {k: _scalar(v) for k, v in out.items() if v is not None}


def tracked_values(report) -> dict[str, float]:
    """What a tracker records of one :class:`~orchestrator.trainable.TrialReport`, by name: a progress
    report's losses and speed, an eval's in-training scores, the final scores; numbers only (not NaN)."""
    if report is None:
        return {}
    if report.kind == "progress":
        values = {f"{LOSS_PREFIX}{k}": v for k, v in report.losses.items()}
        if report.images_per_sec is not None:
            values[THROUGHPUT] = report.images_per_sec
    elif report.kind == "eval":
        values = dict(report.scores)
    elif report.kind == "final":
        values = {f"{FINAL_PREFIX}{k}": v for k, v in report.scores.items()}
    else:
        return {}
    return {k: float(v) for k, v in values.items() if _is_number(v) and not math.isnan(v)}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _scalar(v: Any) -> bool | int | float | str:
    if isinstance(v, (bool, int, float)):
        return v
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return text[:MAX_PARAM]
