"""The Ray Tune callback that records a study's trials: it tells Optuna how each trial ended
(COMPLETE, PRUNED, FAIL; a trial whose process died is FAIL and ``interrupted``, to run again) and
keeps ``results.csv`` and ``curves.csv`` current. :mod:`orchestrator.running.search` hands Tune the trials.

Example:
    >>> searcher = OptunaSearcher(ostudy, study, bases)
    >>> tune.RunConfig(callbacks=[Recorder(ostudy, study, run_dir, searcher, log=print)])  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray import tune

from did_core.atomic import atomic_path

from ..run_folder.no_space import NoSpace, no_space
from ..study_file.plan import Study
from ..run_folder.tables import INTERRUPTED, CurveWriter, format_params, write_results
from ..run_folder.layout import CURVES_FILE, ERROR_FILE, LOSS_PREFIX, THROUGHPUT, Status, param_column, trial_dir
from .search import OptunaSearcher
from ..study_file import StudyError
from .trainable import TrialReport


class Recorder(tune.Callback):
    """Tells Optuna how each trial ended, and keeps ``results.csv`` / ``curves.csv`` current.

    COMPLETE: the trial reported its final scores; PRUNED: early stopping ended it; FAIL: it
    raised (the error text is the user attr ``error``, the traceback ``trials/<n>/error.txt``), its
    final scores are of another protocol than the study's, or an objective is missing / not finite.
    A trial still running when the session ends stays RUNNING here and is handled by :func:`recover`.

    A full disk (a trial's ``no_space`` report, or a write of the driver's own), or a metric plugin
    that returned what it does not declare (a ``plugin`` report: :class:`BrokenMetric`), sets :attr:`stopped`,
    which ends the session (:func:`orchestrator.running.tuning.run_tune`); from then on nothing more is told
    or written, so the trials still running stay RUNNING and run again on the next run.
    """

    def __init__(self, ostudy: optuna.Study, study: Study, run_dir: Path, searcher: OptunaSearcher, log=print):
        self.ostudy, self.study, self.run_dir, self.searcher, self.log = ostudy, study, run_dir, searcher, log
        self.curves = CurveWriter(run_dir / CURVES_FILE)
        self.intermediate = f"{study.eval_protocol}/{study.objectives[0].metric}" \
            if len(study.objectives) == 1 else None
        self.total = study.planned_trials
        if study.sequential:  # the rounds so far ask for more than the first round's trials
            from .rounds import planned

            self.total = planned(ostudy)
        self.told: set[int] = set()
        self.last_scores: dict[int, dict[str, float]] = {}  # trial -> its latest in-training scores
        # the disk filled, or a metric plugin broke its contract: the session ends, nothing more is written
        self.stopped: StudyError | None = None

    @contextlib.contextmanager
    def _unless_full(self):
        """Run a callback's writes; a full disk stops the session instead of raising into Ray Tune."""
        try:
            yield
        except Exception as e:
            full = no_space(e, str(self.run_dir))
            if full is None:
                raise
            self.stopped = self.stopped or full

    def __getstate__(self):  # Tune pickles its callbacks; `log` may be a print another module has replaced
        return {k: v for k, v in self.__dict__.items() if k != "log"}

    def __setstate__(self, state):
        self.__dict__.update(state, log=print)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.stopped is None:
            with self._unless_full():
                self._on_result(trial, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self.stopped is None:
            with self._unless_full():
                self._on_complete(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        if self.stopped is None:
            with self._unless_full():
                self._on_error(trial)

    def _on_result(self, trial, result):
        report, number = TrialReport.from_tune(result), trial.config["number"]
        if report is not None and report.note:
            self.log(f"trial {number}: {report.note}")
        if report is None or report.kind not in ("progress", "eval"):
            return
        values = [(f"{LOSS_PREFIX}{k}", float(v)) for k, v in report.losses.items()] + \
                 [(k, float(v)) for k, v in report.scores.items()]
        if report.images_per_sec is not None:
            values.append((THROUGHPUT, float(report.images_per_sec)))
        self.curves.write(number, report.step, values)
        self.last_scores.setdefault(number, {}).update(report.scores)
        value = report.scores.get(self.intermediate) if self.intermediate else None
        if value is not None and math.isfinite(value):
            with warnings.catch_warnings():  # a step reported again after a resume is ignored (Optuna warns)
                warnings.simplefilter("ignore", UserWarning)
                self.searcher.asked[number].report(float(value), report.step)

    def _on_complete(self, trial):
        r = TrialReport.from_tune(trial.last_result)
        if r is None:
            return
        if r.kind == "no_space":
            self.stopped = NoSpace(r.error or str(trial_dir(self.run_dir, trial.config['number'])))
        elif r.kind == "plugin":
            self.stopped = self.stopped or BrokenMetric.of(r.error or "a metric plugin broke its contract")
        elif r.kind == "error":
            self._finish(trial, Status.FAIL, r, error=r.error)
        elif r.kind == "final":
            values = [r.scores.get(o.metric) for o in self.study.objectives]
            bad = [o.metric for o, v in zip(self.study.objectives, values) if v is None or not math.isfinite(v)]
            if r.protocol != self.study.final_protocol:
                self._finish(trial, Status.FAIL, r, error=f"final scores of protocol {r.protocol!r}, but this "
                             f"study's final scores are {self.study.final_protocol!r}; a table never mixes protocols")
            elif bad:
                err = f"objective(s) {bad} missing or not finite in the final scores {sorted(r.scores)}"
                self._finish(trial, Status.FAIL, r, error=err)
            else:
                self._finish(trial, Status.COMPLETE, r, values=values)
        elif (trial.last_result or {}).get("done"):  # Tune's scheduler stopped it
            self._finish(trial, Status.PRUNED, r)
        # else: stopped because the session ended; recover() re-queues it

    def _on_error(self, trial):
        text = ""
        if trial.error_file and Path(trial.error_file).exists():
            text = Path(trial.error_file).read_text(errors="replace")
        r = TrialReport.from_tune(trial.last_result) or TrialReport("error", 0, "", "", 0.0)
        error = _trial_exception(trial)
        if no_space(error) is not None:  # the trial's own writes (Ray Tune's files of it) found the disk full
            self.stopped = no_space(error, str(trial_dir(self.run_dir, trial.config["number"])))
        elif _process_died(error):  # no verdict on the configuration: the next run runs it again
            line = (f"{_error_line(error)} (the trial's process died; it is queued again for the next run, which "
                    "continues from its checkpoint)")
            self._finish(trial, Status.FAIL, r, error=line, tb=text, interrupted=True)
        elif _cannot_reach(error):  # nor is a node that cannot reach the run folder
            line = f"{_error_line(error)} (it is queued again for the next run)"
            self.log(f"trial {trial.config['number']}: {line}")
            self._finish(trial, Status.FAIL, r, error=line, tb=text, interrupted=True)
        else:
            self._finish(trial, Status.FAIL, r, error=_error_line(error), tb=text)

    def _finish(self, trial, state: Status, r: TrialReport, values=None, error=None, tb=None,
                interrupted: bool = False) -> None:
        number = trial.config["number"]
        if number in self.told:
            return
        self.told.add(number)
        handle = self.searcher.asked[number]
        last = {k: v for k, v in self.last_scores.pop(number, {}).items() if math.isfinite(v)}
        duration = time.time() - r.started if r.started else (trial.last_result or {}).get("time_total_s")
        # few attributes, each one storage write: "run" holds where and how long
        attrs = {"run": {"step": r.step, "duration_s": duration, "node": r.node or None, "host": r.host or None,
                         "started_at": r.started or None, "final_protocol": r.protocol},
                 "last_scores": last}
        if r.kind == "final":
            attrs["scores"] = r.scores
        if error:
            attrs["error"] = error
        if interrupted:
            attrs[INTERRUPTED] = True
        if tb:
            out = trial_dir(self.run_dir, number)
            out.mkdir(parents=True, exist_ok=True)
            if not (out / ERROR_FILE).exists():  # the trainable writes the model's own traceback there
                with atomic_path(out / ERROR_FILE) as tmp:
                    tmp.write_text(tb)
        try:
            for k, v in attrs.items():
                handle.set_user_attr(k, v)
            self.ostudy.tell(number, values if state == Status.COMPLETE else None, state=TrialState[state.value])
        except optuna.exceptions.UpdateFinishedTrialError:
            self.log(f"trial {number}: {state.value}, but the Optuna storage already has it finished (another "
                     f"process wrote to this study); its files stay in {trial_dir(self.run_dir, number)}")
            return
        df = write_results(self.run_dir, self.ostudy)
        shown = ", ".join(f"{o.metric}={r.scores[o.metric]:.4g}" for o in self.study.objectives
                          if r.kind == "final" and _is_number(r.scores.get(o.metric)))
        params = format_params({param_column(k): v for k, v in trial.config["params"].items()})
        if self.study.comparison:
            params = f"{trial.config['arm']}: {params}"
        note = f"  {error}" if error else ""
        self.log(f"[{len(df):>3}/{self.total}] trial {number} ({params}, seed {trial.config['seed']}): "
                 f"{state.value} {shown}{note}".rstrip())


class BrokenMetric(StudyError):
    """A metric plugin returned what it does not declare: no trial can be scored, so the study stops
    (exit 2); the trials that were running stay unfinished and run again once the plugin is fixed."""

    @classmethod
    def of(cls, message: str) -> "BrokenMetric":
        return cls(f"{message}; the study stops (finished trials are kept, the running ones run again once the "
                   "plugin is fixed)")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _trial_exception(trial) -> BaseException | None:
    """The exception that ended a trial: Tune pickles it into the trial's local folder before it
    calls the callbacks (its storage copy may not be there yet)."""
    from ray import cloudpickle

    path = trial.pickled_error_file
    if path and Path(path).is_file():
        try:
            return cloudpickle.loads(Path(path).read_bytes())
        except Exception:  # an exception that does not unpickle here: Tune's copy, or none
            pass
    return trial.get_pickled_error()


def _process_died(error: BaseException | None) -> bool:
    """Whether a trial ended because its process or node died (kill -9, out of memory), not by an
    exception of its own (the trainable reports those itself; a task error wraps them)."""
    import ray.exceptions as rx

    died = (rx.RayActorError, rx.WorkerCrashedError, rx.NodeDiedError, rx.OutOfMemoryError, rx.LocalRayletDiedError)
    return isinstance(error, died) and not isinstance(error, rx.RayTaskError)


def _cannot_reach(error: BaseException | None) -> bool:
    from ..run_folder.reach import RunFolderUnreachable

    return isinstance(getattr(error, "cause", None) or error, RunFolderUnreachable)


def _error_line(error: BaseException | None) -> str:
    """``<ExceptionType>: <message>`` of the exception that ended a trial's process; a task error
    names the exception raised inside it (``cause``)."""
    if error is None:
        return "the trial's process failed (see the Ray logs)"
    cause = getattr(error, "cause", None) or error
    message = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {message[0] if message else ''}"[:500]
