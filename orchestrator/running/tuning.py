"""One Ray Tune session over a study's remaining trials: the trials' resources on the Ray
instance (:mod:`orchestrator.running.local_ray`), ASHA early stopping, the Optuna searcher
(:mod:`orchestrator.running.search`) and the callback that records each trial (:mod:`orchestrator.running.recorder`).

Example:
    >>> run_tune(study, ostudy, run_dir, remote=None, todo=4, address=None, max_concurrent=None,
    ...          dashboard=False, model=None, meta=meta, log=print)         # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import optuna
from ray.tune.stopper import Stopper

from did_core.models import ModelSpec

from .local_ray import check_fits, living_nodes, ray_session
from ..study_file.plan import Arm, Study
from .progress import ProgressBoard
from .recorder import Recorder
from ..run_folder.layout import RAY_DIR, RunMeta
from .search import OptunaSearcher
from ..run_folder.remote import RunStorage
from .trackers import TrackerSettings, tracker_callbacks


@contextlib.contextmanager
def _ctrl_c_kept():
    """Ray Tune installs its own SIGINT handler and leaves it behind: the caller's is put back, so that
    a Ctrl-C after the trials (during the label-free scores or the report) stops the command."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():  # only the main thread sets handlers
            signal.signal(signal.SIGINT, handler)


def run_tune(study: Study, ostudy: optuna.Study, run_dir: Path, remote: RunStorage | None, todo: int,
             address: str | None, max_concurrent: int | None, dashboard: bool, model: ModelSpec | None, meta: RunMeta, log) -> None:
    """One Ray Tune session over the remaining trials (a first Ctrl-C ends it early, gracefully);
    :class:`~orchestrator.run_folder.no_space.NoSpace` when the disk filled."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from .trainable import run_trial, scheduler_metric

    # progress reports carry losses, not the early-stopping score: let Tune accept them
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    # the Recorder prints one line per finished trial; Tune's own tables and warnings stay quiet
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    with _ctrl_c_kept(), ray_session(run_dir, address, dashboard, log):
        nodes = living_nodes()
        check_fits(study, nodes, f"the largest node of the Ray cluster at {address}" if address
                   else "the local Ray instance")
        res = study.resources
        gpus = res.gpus if any(n.get("GPU", 0) for n in nodes) else 0.0
        # as many trials at once as the cluster holds (Tune would otherwise start one actor at a time)
        total = ray.cluster_resources()
        slots = int(total.get("CPU", 1) // res.cpus)
        if gpus:
            slots = min(slots, int(total.get("GPU", 0) // gpus))
        max_concurrent = max_concurrent or study.max_concurrent or max(1, slots)
        meta.sessions[-1].ray = {"address": address or "local", "nodes": len(nodes), "resources": total,
                                 "gpus_per_trial": gpus, "max_concurrent": max_concurrent}
        meta.write(run_dir)

        bases = {arm.label: {**arm_base(study, arm, run_dir, res.cpus, gpus), "storage": remote and remote.uri}
                 for arm in study.arms}

        scheduler = None
        es = study.early_stopping
        if es is not None:
            scheduler = ASHAScheduler(time_attr="step", metric=scheduler_metric(es.metric), mode=es.mode,
                                      max_t=max(study.steps, es.grace_period), grace_period=es.grace_period,
                                      reduction_factor=es.reduction_factor, brackets=es.brackets,
                                      stop_last_trials=False)
        searcher = OptunaSearcher(ostudy, study, bases)
        recorder = Recorder(ostudy, study, run_dir, searcher, log=log)
        trainable = tune.with_parameters(run_trial, model=model) if model is not None else run_trial
        trainable = tune.with_resources(trainable, {"cpu": res.cpus, "gpu": gpus})
        session = dt.datetime.now().strftime("session-%Y%m%d-%H%M%S")
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher, scheduler=scheduler, num_samples=todo,
                max_concurrent_trials=max_concurrent, reuse_actors=True,
                trial_name_creator=lambda t: f"trial_{t.config['number']}",
                trial_dirname_creator=lambda t: f"trial_{t.config['number']}"),
            run_config=tune.RunConfig(
                name=session, verbose=0,
                **(remote.tune_storage() if remote is not None else {"storage_path": str(run_dir / RAY_DIR)}),
                callbacks=[recorder, ProgressBoard(study, todo, log=log),
                           *tracker_callbacks(TrackerSettings.of(study, run_dir))], stop=_StopWhenFull(recorder),
                failure_config=tune.FailureConfig(max_failures=study.retries),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
        )
        try:
            tuner.fit()
        except Exception:
            if recorder.stopped is None:
                raise  # else: Tune's own files could not be written either
    if recorder.stopped is not None:  # the disk filled: the trials that were running run again next time
        raise recorder.stopped


class _StopWhenFull(Stopper):
    """Ray Tune's stopper: the whole session ends once the Recorder found the disk full."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.recorder.stopped is not None


def arm_base(study: Study, arm: Arm, run_dir: Path, cpus: float, gpus: float) -> dict[str, Any]:
    """What the Tune configs of one arm's trials share."""
    fixed = dict(arm.fixed)
    if "num_threads" in arm.config_fields and "num_threads" not in fixed:
        fixed["num_threads"] = max(1, int(cpus))
    if "gpu_memory_fraction" in arm.config_fields and "gpu_memory_fraction" not in fixed and 0 < gpus < 1:
        fixed["gpu_memory_fraction"] = gpus
    return {"model": arm.model, "budget": study.budget, "fixed": fixed, "run_dir": str(run_dir),
            "tune_checkpoints": study.retries > 0}
