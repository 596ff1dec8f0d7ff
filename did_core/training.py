"""Model-independent plumbing for a ``train()`` generator: device and threads, seeding, the real-data
stream, divergence checks, the typed events (:mod:`did_core.models.events`), checkpoint save/resume
and the files of a trial folder (``checkpoint.pt``, ``scores.json``, ``config.json``, ``traversal.png``).

A model's ``train`` keeps its own loop readable and calls a :class:`Run` for the rest.

Example:
    >>> run = Run(cfg, out_dir="runs/x")
    >>> nets, opts = {"E": run.prepare(E)}, {"E": adam}
    >>> start = run.restore(nets, opts)
    >>> for step in range(start + 1, cfg.steps + 1):
    ...     loss = ...; run.record(step, {"loss": loss}, images=cfg.batch_size)
    ...     if run.due(step, cfg.log_every): yield run.progress(step)
    ...     if run.due(step, cfg.eval_every): yield run.evaluate(step, encode, nets, opts)
    >>> yield run.final(encode, nets, opts, traversal=images)
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .atomic import atomic_path
from .checkpoint import CheckpointError, load_checkpoint, restore_modules, rng_state, save_checkpoint, set_rng_state
from .models.base import ConfigError, TrainConfig, TrainingDiverged
from .models.events import Eval, Final, Progress

CHECKPOINT, SCORES, CONFIG, TRAVERSAL = "checkpoint.pt", "scores.json", "config.json", "traversal.png"
RUN_FILES = (CHECKPOINT, SCORES, CONFIG, TRAVERSAL)  # what a run writes into out_dir


def choose_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU. ``"cuda"`` without a GPU is a :class:`ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device: {name!r} is not a torch device (use 'auto', 'cpu', 'cuda' or 'cuda:N')") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available")
    return device


def check_finite(step: int, losses: dict[str, float], max_abs: float) -> None:
    """Raise :class:`TrainingDiverged` for the first loss that is NaN/inf or larger than ``max_abs``."""
    for name, value in losses.items():
        if not math.isfinite(value) or abs(value) > max_abs:
            raise TrainingDiverged(step, name, value)


class Run:
    """Everything around a model's training loop; see the module docstring."""

    def __init__(self, config: TrainConfig, out_dir: str | Path | None = None, resume: bool = True):
        from .data import get_dataset  # imported here so that the nets and losses import without it

        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.resume = resume
        if self.out_dir is not None and not resume:
            # starting afresh: no file of an earlier run in out_dir may pass for one of this run
            # (a run that diverges writes no scores, and the earlier scores.json would stay)
            for name in RUN_FILES:
                (self.out_dir / name).unlink(missing_ok=True)
        self.device = choose_device(config.device)
        if config.num_threads > 0:
            torch.set_num_threads(config.num_threads)
        if self.device.type == "cuda" and config.gpu_memory_fraction > 0:
            torch.cuda.set_per_process_memory_fraction(config.gpu_memory_fraction, self.device)
        self.amp = bool(config.amp) and self.device.type == "cuda"
        torch.manual_seed(config.seed)  # net initialisation
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)  # codes and noise
        self.data_rng = np.random.default_rng(config.seed)  # which real images are drawn
        self.dataset = get_dataset(config.dataset, source=config.data_source, path=config.data_path,
                                   device=self.device)
        self.step = 0
        self._sums: dict[str, float] = {}
        self._count = 0
        self._images = 0
        self._clock = time.perf_counter()

    # ----- nets and data -----------------------------------------------------------------------
    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move to the device; channels-last on CUDA with ``amp``."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.amp else module

    def compile(self, module: torch.nn.Module) -> Callable:
        """``torch.compile(module)`` when the config asks for it, else the module itself. Keep the
        uncompiled module for checkpoints (its state-dict keys have no ``_orig_mod.`` prefix)."""
        return torch.compile(module) if self.config.compile else module

    def autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def real_batch(self, n: int | None = None) -> torch.Tensor:
        factors = self.dataset.sample_factors(n or self.config.batch_size, self.data_rng)
        x = self.dataset.images(factors).to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.amp else x

    # ----- per step ----------------------------------------------------------------------------
    def record(self, step: int, losses: dict[str, torch.Tensor | float], images: int) -> dict[str, float]:
        """Check the step's losses for divergence (one device sync) and add them to the running means."""
        names = list(losses)
        values = torch.stack([torch.as_tensor(losses[k], dtype=torch.float32).detach().reshape(()).cpu()
                              for k in names]).tolist()
        floats = dict(zip(names, values))
        check_finite(step, floats, self.config.max_abs_loss)
        for k, v in floats.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._count += 1
        self._images += images
        self.step = step
        return floats

    @staticmethod
    def due(step: int, every: int) -> bool:
        return every > 0 and step % every == 0

    def progress(self, step: int) -> Progress:
        """A progress event: mean losses since the last one, and real training images per second."""
        elapsed = max(time.perf_counter() - self._clock, 1e-9)
        event = Progress(step=step, losses={k: v / max(self._count, 1) for k, v in self._sums.items()},
                         images_per_sec=self._images / elapsed)
        self._reset_meter()
        return event

    def _reset_meter(self) -> None:
        self._sums, self._count, self._images = {}, 0, 0
        self._clock = time.perf_counter()

    # ----- scores ------------------------------------------------------------------------------
    def scores(self, encode: Callable[[torch.Tensor], torch.Tensor], protocol: str,
               eval_modules: list[torch.nn.Module] = ()) -> dict[str, float]:
        """Score ``encode`` (images -> codes) on the dataset with the evaluation driver."""
        from .metrics import evaluate

        was_training = [m.training for m in eval_modules]
        for m in eval_modules:
            m.eval()

        def encode_eval(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), self.autocast():
                x = x.to(self.device)
                if self.amp:
                    x = x.contiguous(memory_format=torch.channels_last)
                return encode(x).float()

        try:
            scores = evaluate(self.dataset.scoring_view(self.config.seed), encode_eval, protocol=protocol, metrics=self.config.metric_names(),
                              seed=self.config.seed)
            return {k: float(v) for k, v in scores.items()}
        finally:
            for m, mode in zip(eval_modules, was_training):
                m.train(mode)

    def _with_model_scores(self, scores: dict[str, float], model_scores: dict[str, float] | None) -> dict[str, float]:
        """The metric scores and the scores the model computed from its own nets (registered in
        :mod:`did_core.metrics.registry` as provided by the model); a name may not be both."""
        model_scores = {k: float(v) for k, v in (model_scores or {}).items()}
        both = sorted(set(scores) & set(model_scores))
        if both:
            raise ValueError(f"model_scores: {both} are metric scores too; a model names its own scores differently")
        return {**scores, **model_scores}

    def evaluate(self, step: int, encode: Callable, nets: dict[str, torch.nn.Module],
                 optimizers: dict[str, torch.optim.Optimizer], eval_modules: list[torch.nn.Module] = (),
                 model_scores: dict[str, float] | None = None) -> Eval:
        """An eval event with ``eval_protocol`` scores (and ``model_scores``, the model's own);
        saves the checkpoint when there is an out_dir."""
        protocol = self.config.eval_protocol
        scores = self._with_model_scores(self.scores(encode, protocol, eval_modules), model_scores)
        path = self.save(step, nets, optimizers)
        self._reset_meter()  # evaluation time is not training throughput
        return Eval(step=step, protocol=protocol, scores=scores, checkpoint=str(path) if path else None)

    def final(self, encode: Callable, nets: dict[str, torch.nn.Module],
              optimizers: dict[str, torch.optim.Optimizer], traversal: torch.Tensor | None = None,
              eval_modules: list[torch.nn.Module] = (), model_scores: dict[str, float] | None = None) -> Final:
        """The final event: ``final_protocol`` scores (and ``model_scores``, the model's own); with an
        out_dir also the checkpoint, ``scores.json``, ``config.json`` and ``traversal.png``
        (``traversal [rows, cols, C, H, W]``)."""
        protocol = self.config.final_protocol
        scores = self._with_model_scores(self.scores(encode, protocol, eval_modules), model_scores)
        artifacts: dict[str, str] = {}
        if self.out_dir is not None:
            artifacts["checkpoint"] = str(self.save(self.step, nets, optimizers))
            summary = {"model": type(self.config).model, "step": self.step, "protocol": protocol, "scores": scores}
            _write_json(self.out_dir / SCORES, summary)
            _write_json(self.out_dir / CONFIG, self.config.to_dict())
            artifacts["scores"] = str(self.out_dir / SCORES)
            artifacts["config"] = str(self.out_dir / CONFIG)
            if traversal is not None:
                from .images import save_image_grid

                save_image_grid(traversal.detach().float().cpu(), self.out_dir / TRAVERSAL)
                artifacts["traversal"] = str(self.out_dir / TRAVERSAL)
        return Final(step=self.step, protocol=protocol, scores=scores, artifacts=artifacts)

    # ----- checkpoints -------------------------------------------------------------------------
    def _rng(self) -> dict[str, Any]:
        return rng_state(generators={"codes": self.generator}, numpy_rngs={"data": self.data_rng})

    def save(self, step: int, nets: dict, optimizers: dict) -> Path | None:
        if self.out_dir is None:
            return None
        return save_checkpoint(self.out_dir / CHECKPOINT, step=step, nets=nets, optimizers=optimizers,
                               rng=self._rng(), config=self.config.to_dict())

    def restore(self, nets: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> int:
        """Resume from ``out_dir/checkpoint.pt`` when present (and ``resume``); return the step to
        continue after (0 for a fresh run). A checkpoint of a different experiment is refused."""
        path = self.out_dir / CHECKPOINT if self.out_dir is not None else None
        if path is None or not self.resume or not path.exists():
            return 0
        state = load_checkpoint(path, map_location=self.device)
        differ = self.config.experiment_differences(state["config"])  # runtime and schedule may change
        if differ:
            detail = ", ".join(differ)
            raise CheckpointError(f"{path}: was written by a different experiment ({detail}); "
                                  f"use another out_dir or resume=False")
        restore_modules(state, nets, optimizers, path)
        set_rng_state(state["rng"], generators={"codes": self.generator}, numpy_rngs={"data": self.data_rng})
        self.step = int(state["step"])
        self._reset_meter()
        return self.step


def _write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
