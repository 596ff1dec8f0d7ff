"""A registered model as a Ray Tune function trainable.

The Tune config of a trial (built by :mod:`orchestrator.search`) says which model, which budget,
the fixed and searched Config fields, the seed and the Optuna trial number. The trainable builds
the model's Config, runs ``train(config, out_dir=RUN_DIR/trials/<number>)`` and turns its events
into ``tune.report`` calls:

- progress: ``loss/<name>`` for each loss, ``images_per_sec``
- eval:     ``<protocol>/<score>`` (``fast/mig``), which early stopping reads

The model checkpoints into the trial folder, and a trial re-queued after an interruption
continues from its predecessor's folder. When the study allows Ray Tune to retry a trial whose
process died (``retries > 0``), each eval also hands Tune the checkpoint
(``tune.Checkpoint``), and a retry, on any node, starts from ``tune.get_checkpoint()``. Without
retries Tune would never read them, and copying them would cost time and disk.
- final:    ``<score>`` (plain names) and ``final = 1``
- an exception from the model: ``error`` ("<ExceptionType>: <message>"), the traceback in
  ``trials/<number>/error.txt``

Every report also carries ``step``, ``node`` (the Ray node id) and ``host``.

Example:
    >>> from ray import tune
    >>> tuner = tune.Tuner(tune.with_parameters(run_trial, model=None), param_space={...})  # doctest: +SKIP
"""
from __future__ import annotations

import json
import shutil
import socket
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import ray
from ray import tune

from did_core.models import ModelSpec, get_model
from did_core.training import CHECKPOINT

from .environment import capture


def build_config(model: ModelSpec, trial: dict[str, Any]):
    """The model Config of one trial: budget preset, then fixed fields, searched fields, seed."""
    return model.config_cls.from_preset(trial["budget"], **{**trial["fixed"], **trial["params"]},
                                        seed=trial["seed"])


def run_trial(trial: dict[str, Any], model: ModelSpec | None = None) -> None:
    """Train one configuration and report to Ray Tune (see the module docstring)."""
    model = model or get_model(trial["model"])
    run_dir = Path(trial["run_dir"])
    out = run_dir / "trials" / str(trial["number"])
    out.mkdir(parents=True, exist_ok=True)
    _restore_checkpoint(out, run_dir, trial.get("resumed_from"))
    config = build_config(model, trial)
    node = ray.get_runtime_context().get_node_id()
    where = {"node": node, "host": socket.gethostname(), "trial_started": time.time()}
    (out / "trial.json").write_text(json.dumps({
        "number": trial["number"], "config_id": trial["config_id"], "seed": trial["seed"],
        "params": trial["params"], "model": model.name, "budget": trial["budget"],
        "config": config.to_dict(), "resumed_from": trial.get("resumed_from"),
        **where, "environment": capture(),
    }, indent=1, default=str))

    where["step"] = 0  # _train keeps it at the latest event's step
    try:
        _train(model, config, out, where, tune_checkpoints=bool(trial.get("tune_checkpoints")))
    except Exception as e:
        # A model that raises (TrainingDiverged, a bad config, a bug) ends its trial with an `error`
        # report instead of an exception: the worker process stays up for the next trial, and the
        # exception need not pickle. A dying process still reaches Tune as a trial error.
        (out / "error.txt").write_text(traceback.format_exc())
        tune.report({**where, "error": f"{type(e).__name__}: {e}"[:2000]})


def _train(model: ModelSpec, config, out: Path, where: dict[str, Any], tune_checkpoints: bool) -> None:
    finished = False
    for event in model.train(config, out_dir=out, resume=True):
        where["step"] = int(event["step"])
        metrics: dict[str, Any] = dict(where)
        kind = event["kind"]
        if kind == "progress":
            metrics.update({f"loss/{k}": float(v) for k, v in event["losses"].items()})
            if event.get("images_per_sec") is not None:
                metrics["images_per_sec"] = float(event["images_per_sec"])
            tune.report(metrics)
        elif kind == "eval":
            metrics.update({f"{event['protocol']}/{k}": float(v) for k, v in event["scores"].items()})
            if tune_checkpoints and event.get("checkpoint"):
                _report_with_checkpoint(metrics, out)
            else:
                tune.report(metrics)
        elif kind == "final":
            metrics.update({k: float(v) for k, v in event["scores"].items()})
            metrics["final"] = 1
            metrics["final_protocol"] = event.get("protocol")
            tune.report(metrics)
            finished = True
    if not finished:
        raise RuntimeError(f"model {model.name!r} stopped without a final event")


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


def _restore_checkpoint(out: Path, run_dir: Path, resumed_from: int | None) -> None:
    """Put a checkpoint to resume from into the trial folder, when there is one and none is there.

    Tune's own checkpoint comes first (a retried trial, possibly on another node); then the
    folder of the interrupted trial this one replaces.
    """
    if (out / CHECKPOINT).exists():
        return
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            if (Path(d) / CHECKPOINT).exists():
                shutil.copy2(Path(d) / CHECKPOINT, out / CHECKPOINT)
                return
    if resumed_from is not None:
        old = run_dir / "trials" / str(resumed_from) / CHECKPOINT
        if old.exists():
            shutil.copy2(old, out / CHECKPOINT)
