"""A registered model as a Ray Tune function trainable.

The Tune config of a trial (built by :mod:`orchestrator.running.search`) says which model, which budget,
the fixed and searched Config fields, the seed and the Optuna trial number. The trainable builds
the model's Config, runs ``train(config, out_dir=RUN_DIR/trials/<number>)`` and turns each of its
events into one :class:`TrialReport` (``tune.report(report.to_tune())``), which the Recorder
(:mod:`orchestrator.running.search`) reads back with :meth:`TrialReport.from_tune`; Ray's own keys are
never read as scores, since losses and scores sit under their own keys:

- progress: ``losses`` (``{name: value}``), ``images_per_sec``
- eval:     ``scores`` by column name (``{"fast/mig": ...}``); Ray flattens them to
            ``scores/fast/mig``, which early stopping reads (:func:`scheduler_metric`)
- final:    ``scores`` by name and their ``protocol``
- an exception from the model: ``error`` ("<ExceptionType>: <message>"), the traceback in
  ``trials/<number>/error.txt``; a full disk (:mod:`orchestrator.run_folder.no_space`): ``no_space``, the
  file it could not write in ``error``: no verdict on the configuration, the driver stops the study;
  a metric that returned what it did not declare (:class:`~did_core.metrics.registry.MetricResultError`):
  ``plugin``, its message in ``error``: the driver stops the study likewise, naming the plugin
- a checkpoint it resumed from that is unreadable (:class:`~did_core.checkpoint.CheckpointUnreadable`):
  the trial starts over from step 0, and its first report's ``note`` says so (the driver logs it)

The model checkpoints into the trial folder (:class:`~orchestrator.run_folder.trial_folder.TrialFolder`:
the run folder's ``trials/<n>/``, or a scratch folder on the trial's node uploaded to a run folder
at a URI at each checkpoint and at the end), and a trial re-queued after an interruption
continues from its predecessor's checkpoint, on any node. A node that cannot reach the run
folder fails the trial at start (``RunFolderUnreachable``, naming the node and the path). When
the study allows Ray Tune to retry a trial whose process died (``retries > 0``), each eval also
hands Tune the checkpoint (``tune.Checkpoint``), and a retry, on any node, starts from
``tune.get_checkpoint()``. Without retries Tune would never read them, and copying them would
cost time and disk.

Every report also carries ``step``, ``node`` (the Ray node id), ``host`` and ``started``.

Example:
    >>> from ray import tune
    >>> tuner = tune.Tuner(tune.with_parameters(run_trial, model=None), param_space={...})  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import tune

from did_core.atomic import atomic_path
from did_core.checkpoint import CheckpointUnreadable
from did_core.metrics.registry import MetricResultError
from did_core.models import Eval, Final, ModelSpec, Progress, get_model
from did_core.training import CHECKPOINT

from ..run_folder.environment import capture
from ..run_folder.no_space import no_space
from ..run_folder.layout import ERROR_FILE, TRIAL_FILE, TrialRecord
from ..run_folder.trial_folder import TrialFolder

KINDS = ("progress", "eval", "final", "error", "no_space", "plugin")
SCORES = "scores"  # the key of a report's scores; Ray flattens nested keys with "/"


@dataclass
class TrialReport:
    """One report of a running trial, from the trainable to the Recorder (and Tune's scheduler)."""

    kind: str  # "progress" | "eval" | "final" | "error" | "no_space" | "plugin" (a metric plugin broke its contract)
    step: int
    node: str
    host: str
    started: float  # when the trainable started (time.time())
    losses: dict[str, float] = field(default_factory=dict)  # progress
    images_per_sec: float | None = None  # progress
    scores: dict[str, float] = field(default_factory=dict)  # eval: by column ("fast/mig"); final: by name
    protocol: str | None = None  # final: the protocol of its scores
    error: str | None = None  # error: "<ExceptionType>: <message>"; no_space: the file it could not write
    note: str | None = None  # what the driver should say about the trial (a checkpoint it could not resume)

    def to_tune(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_tune(cls, result: dict[str, Any] | None) -> "TrialReport | None":
        """The report in a Tune result (None for a result that holds none, e.g. Tune's own)."""
        if not result or result.get("kind") not in KINDS:
            return None
        return cls(**{f.name: result[f.name] for f in dataclasses.fields(cls) if f.name in result})

    @classmethod
    def of_event(cls, event, where: dict[str, Any]) -> "TrialReport":
        if isinstance(event, Progress):
            return cls("progress", event.step, **where, losses=dict(event.losses), images_per_sec=event.images_per_sec)
        if isinstance(event, Eval):
            return cls("eval", event.step, **where, scores=event.columns())
        if isinstance(event, Final):
            return cls("final", event.step, **where, scores=dict(event.scores), protocol=event.protocol)
        raise TypeError(f"a model's train() yielded {type(event).__name__}, not Progress, Eval or Final")


def scheduler_metric(score_column: str) -> str:
    """The key Tune's scheduler reads for an in-training score column (``fast/mig``)."""
    return f"{SCORES}/{score_column}"


def build_config(model: ModelSpec, trial: dict[str, Any]):
    """The model Config of one trial: budget preset, then fixed fields, searched fields, seed."""
    return model.config_cls.from_preset(trial["budget"], **{**trial["fixed"], **trial["params"]},
                                        seed=trial["seed"])


def run_trial(trial: dict[str, Any], model: ModelSpec | None = None) -> None:
    """Train one configuration and report to Ray Tune (see the module docstring)."""
    model = model or get_model(trial["model"])
    where = {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "started": time.time()}
    folder = TrialFolder.open(trial, where)  # RunFolderUnreachable: this node cannot reach the run folder
    try:
        _run(model, trial, folder, where)
    finally:
        folder.close()


def _run(model: ModelSpec, trial: dict[str, Any], folder: TrialFolder, where: dict[str, Any]) -> None:
    out = folder.out
    step = [0]  # the latest event's step
    checkpoints = bool(trial.get("tune_checkpoints"))
    try:
        origin = _restore_checkpoint(out, folder, trial.get("resumed_from"))
        config = build_config(model, trial)
        TrialRecord(number=trial["number"], config_id=trial["config_id"], seed=trial["seed"], params=trial["params"],
                    model=model.name, budget=trial["budget"], config=config.to_dict(),
                    resumed_from=trial.get("resumed_from"), **where, environment=capture()).write(out)
        folder.sync((TRIAL_FILE,))
        try:
            _train(model, config, folder, where, step, checkpoints)
        except CheckpointUnreadable as e:
            if origin is None or step[0]:  # not the checkpoint it resumed from
                raise
            # a corrupt checkpoint says nothing of the configuration: the trial starts over
            (out / CHECKPOINT).unlink(missing_ok=True)
            why = str(e).removeprefix(f"{out / CHECKPOINT}: ")  # the copy here is not the file to name
            note = f"the checkpoint it resumed from, {origin}, is unreadable ({why}); it starts over from step 0"
            _train(model, config, folder, where, step, checkpoints, note=note)
    except Exception as e:
        full = no_space(e, str(out))
        if full is not None:  # no verdict on the configuration either: the study stops, a rerun runs it again
            tune.report(TrialReport("no_space", step[0], **where, error=full.path).to_tune())
            return
        broken = _metric_result_error(e)
        if broken is not None:  # a metric plugin's fault, not the configuration's: every trial would fail alike
            with contextlib.suppress(OSError), atomic_path(out / ERROR_FILE) as tmp:
                tmp.write_text(traceback.format_exc())
            folder.sync()
            tune.report(TrialReport("plugin", step[0], **where, error=str(broken)[:2000]).to_tune())
            return
        # A model that raises (TrainingDiverged, a bad config, a bug) ends its trial with an `error`
        # report instead of an exception: the worker process stays up for the next trial, and the
        # exception need not pickle. A dying process still reaches Tune as a trial error.
        with contextlib.suppress(OSError), atomic_path(out / ERROR_FILE) as tmp:
            tmp.write_text(traceback.format_exc())
        folder.sync()
        tune.report(TrialReport("error", step[0], **where, error=f"{type(e).__name__}: {e}"[:2000]).to_tune())


def _train(model: ModelSpec, config, folder: TrialFolder, where: dict[str, Any], step: list[int],
           tune_checkpoints: bool, note: str | None = None) -> None:
    finished, out = False, folder.out
    for event in model.train(config, out_dir=out, resume=True):
        report = TrialReport.of_event(event, where)
        report.note, note = note, None  # said once, with the first report
        step[0] = report.step
        if isinstance(event, Final):
            folder.sync()  # scores, traversal: in the run folder before the driver hears of them
        elif isinstance(event, Eval) and event.checkpoint:
            folder.sync((CHECKPOINT,))  # a resume on any node finds it, before the driver hears of the eval
        if isinstance(event, Eval) and tune_checkpoints and event.checkpoint:
            _report_with_checkpoint(report.to_tune(), out)
        else:
            tune.report(report.to_tune())
        finished = isinstance(event, Final)
    if not finished:
        raise RuntimeError(f"model {model.name!r} stopped without a final event")


def _metric_result_error(error: BaseException | None) -> MetricResultError | None:
    """The :class:`MetricResultError` behind ``error`` (itself, its cause or its context), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MetricResultError):
            return error
        error = error.__cause__ or error.__context__
    return None


def _report_with_checkpoint(metrics: dict[str, Any], out: Path) -> None:
    """Report, handing Tune a copy of just the model checkpoint (not the whole trial folder)."""
    if not (out / CHECKPOINT).exists():
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix=".ckpt-", dir=out) as tmp:
        try:
            (Path(tmp) / CHECKPOINT).hardlink_to(out / CHECKPOINT)
        except OSError:
            shutil.copy2(out / CHECKPOINT, Path(tmp) / CHECKPOINT)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _restore_checkpoint(out: Path, folder: TrialFolder, resumed_from: int | None) -> str | None:
    """Put a checkpoint to resume from into the trial folder, when there is one and none is there;
    returns where the checkpoint in the folder came from (for the log, should it be unreadable), or
    None when there is none.

    Tune's own checkpoint comes first (a retried trial, possibly on another node); then the
    checkpoint of the interrupted trial this one replaces, from the run folder.
    """
    if (out / CHECKPOINT).exists():
        return str(out / CHECKPOINT)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            if (Path(d) / CHECKPOINT).exists():
                shutil.copy2(Path(d) / CHECKPOINT, out / CHECKPOINT)
                return f"Ray Tune's checkpoint of this trial ({checkpoint.path})"
    return folder.resume_from(resumed_from)
