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
import ctypes
import functools
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import __version__
from .atomic import atomic_path
from .checkpoint import CheckpointError, load_checkpoint, restore_modules, rng_state, save_checkpoint, set_rng_state
from .models.base import ConfigError, TrainConfig, TrainingDiverged
from .models.events import Eval, Final, Progress

CHECKPOINT, SCORES, CONFIG, TRAVERSAL = "checkpoint.pt", "scores.json", "config.json", "traversal.png"
RUN_FILES = (CHECKPOINT, SCORES, CONFIG, TRAVERSAL)  # what a run writes into out_dir


def choose_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU. ``"cuda"`` without a GPU is a :class:`ConfigError`.
    A CUDA device always carries its index (``"cuda"`` is the current device, ``cuda:0`` under Ray,
    which sets ``CUDA_VISIBLE_DEVICES`` per trial): torch's per-device calls refuse one without."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device: {name!r} is not a torch device (use 'auto', 'cpu', 'cuda' or 'cuda:N')") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available")
    return with_index(device, torch.cuda.current_device() if device.type == "cuda" else None)


def with_index(device: torch.device, current: int | None) -> torch.device:
    """``device`` with an index: a CUDA device without one becomes ``cuda:<current>``."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", current if current is not None else 0)
    return device


def memory_share(device: torch.device, fraction: float) -> tuple[float, int] | None:
    """The arguments of ``torch.cuda.set_per_process_memory_fraction`` for a trial given ``fraction``
    of a GPU (``gpus: 0.25`` packs four trials on one), or None: not CUDA, or no cap (0 or 1)."""
    if device.type != "cuda" or not 0 < fraction < 1:
        return None
    if device.index is None:
        raise ValueError(f"memory_share: {device} has no index (use with_index first)")
    return fraction, device.index


def uses_amp(config: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast, for training and scoring alike: for a model that trains under it (its Config's
    ``AMP``), on CUDA with ``amp``, on the CPU only with ``cpu_amp`` (which tests the GPU's
    mixed-precision path without a GPU)."""
    return type(config).AMP and bool(config.amp) and (device.type == "cuda" or bool(config.cpu_amp))


def check_finite(step: int, losses: dict[str, float], max_abs: float) -> None:
    """Raise :class:`TrainingDiverged` for the first loss that is NaN/inf or larger than ``max_abs``."""
    for name, value in losses.items():
        if not math.isfinite(value) or abs(value) > max_abs:
            raise TrainingDiverged(step, name, value)


PRERENDER_MAX_BYTES = 64 * 2 ** 20  # a procedural dataset this small is drawn once, whole (Squares: 4 MiB)


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed blocks up to 32 MiB for reuse instead of handing each back
    to the kernel: a training step allocates and frees the same large activations every step, and
    fresh pages cost a page fault each (~5-10% of a CPU step here). Once per process; False where
    the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 * 2 ** 20)) and bool(libc.mallopt(m_trim_threshold, 2 ** 30))
    except (OSError, AttributeError):
        return False


def prerender(dataset) -> torch.Tensor | None:
    """Every image of a small procedural dataset, in its flat-index order, or None (a file source, a
    sequence dataset, or one over :data:`PRERENDER_MAX_BYTES`)."""
    n = int(np.prod(dataset.factor_sizes))
    size = n * dataset.num_channels * dataset.image_size ** 2 * 4
    if dataset.source != "procedural" or dataset.sequence_length or size > PRERENDER_MAX_BYTES:
        return None
    grid = np.stack(np.unravel_index(np.arange(n), dataset.factor_sizes), axis=1).astype(np.int64)
    return dataset.images(grid)


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
        share = memory_share(self.device, config.gpu_memory_fraction)
        if share is not None:
            torch.cuda.set_per_process_memory_fraction(*share)
        self.amp = uses_amp(config, self.device)
        # channels-last images and conv weights: faster convolutions on the CPU (oneDNN) and on CUDA
        self.channels_last = True
        torch.manual_seed(config.seed)  # net initialisation
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)  # codes and noise
        self.data_rng = np.random.default_rng(config.seed)  # which real images are drawn
        self.dataset = get_dataset(config.dataset, source=config.data_source, path=config.data_path,
                                   device=self.device)
        self._all_images = prerender(self.dataset)  # real batches then index it: the same images
        if self.device.type == "cpu":
            keep_freed_memory()
        self.step = 0
        self._window: list[tuple[int, list[str], torch.Tensor]] = []  # recorded steps not yet read back
        self._sums: dict[str, float] = {}
        self._count = 0
        self._images = 0
        self._clock = time.perf_counter()

    # ----- nets and data -----------------------------------------------------------------------
    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move to the device, conv weights channels-last."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def compile(self, module: torch.nn.Module) -> Callable:
        """``torch.compile(module)`` when the config asks for it, else the module itself. Keep the
        uncompiled module for checkpoints (its state-dict keys have no ``_orig_mod.`` prefix)."""
        # dynamic: one graph for every batch size (the critic's, the generator's, the evaluation's)
        return torch.compile(module, dynamic=True) if self.config.compile else module

    def autocast(self):
        """bf16 autocast on this run's device type when :func:`uses_amp`, else nothing."""
        if self.amp:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def real_batch(self, n: int | None = None) -> torch.Tensor:
        factors = self.dataset.sample_factors(n or self.config.batch_size, self.data_rng)
        if self._all_images is not None:
            x = self._all_images[torch.from_numpy(self.dataset.flat_index(factors)).to(self.device)]
        else:
            x = self.dataset.images(factors).to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    # ----- per step ----------------------------------------------------------------------------
    def record(self, step: int, losses: dict[str, torch.Tensor | float], images: int) -> None:
        """Keep the step's losses on the device; they are read back (one device sync for the whole
        window) and checked for divergence, naming the first bad step, every ``log_every`` steps
        and before any event or checkpoint."""
        names = list(losses)
        values = torch.stack([torch.as_tensor(losses[k], dtype=torch.float32, device=self.device).detach().reshape(())
                              for k in names])
        self._window.append((step, names, values))
        self._images += images
        self.step = step
        if len(self._window) >= self.config.log_every:
            self.check()

    def check(self) -> None:
        """Read back the recorded losses, raise :class:`TrainingDiverged` at the first step with a bad
        one, and add them to the running means."""
        if not self._window:
            return
        rows = torch.stack([values for _, _, values in self._window]).cpu().tolist()
        window, self._window = self._window, []
        for (step, names, _), row in zip(window, rows):
            floats = dict(zip(names, row))
            check_finite(step, floats, self.config.max_abs_loss)
            for k, v in floats.items():
                self._sums[k] = self._sums.get(k, 0.0) + v
            self._count += 1

    @staticmethod
    def due(step: int, every: int) -> bool:
        return every > 0 and step % every == 0

    def progress(self, step: int) -> Progress:
        """A progress event: mean losses since the last one, and real training images per second."""
        self.check()
        elapsed = max(time.perf_counter() - self._clock, 1e-9)
        event = Progress(step=step, losses={k: v / max(self._count, 1) for k, v in self._sums.items()},
                         images_per_sec=self._images / elapsed)
        self._reset_meter()
        return event

    def _reset_meter(self) -> None:
        self._window = []
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
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                return encode(x).float()

        # a trial's metric fits use its own CPUs (num_threads, set from resources.cpus), never every
        # core of the machine: trials packed beside it have theirs
        n_jobs = self.config.num_threads if self.config.num_threads > 0 else None
        try:
            scores = evaluate(self.dataset.scoring_view(self.config.seed), encode_eval, protocol=protocol,
                              metrics=self.config.metric_names(), seed=self.config.seed, n_jobs=n_jobs)
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
        self.check()
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
        self.check()
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
        self.check()  # a diverged state is never saved
        if self.out_dir is None:
            return None
        # the model's name and the code's version: a loader tells another model's checkpoint by them
        return save_checkpoint(self.out_dir / CHECKPOINT, step=step, nets=nets, optimizers=optimizers,
                               rng=self._rng(), config=self.config.to_dict(),
                               extra={"model": type(self.config).model, "did_core": __version__})

    def restore(self, nets: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> int:
        """Resume from ``out_dir/checkpoint.pt`` when present (and ``resume``); return the step to
        continue after (0 for a fresh run). A checkpoint of a different experiment is refused."""
        path = self.out_dir / CHECKPOINT if self.out_dir is not None else None
        if path is None or not self.resume or not path.exists():
            return 0
        # on the CPU: RNG states must stay CPU byte tensors; load_state_dict moves the rest to the nets' device
        state = load_checkpoint(path, map_location="cpu")
        differ = self.config.experiment_differences(state["config"])  # runtime and schedule may change
        if differ:
            detail = ", ".join(differ)
            raise CheckpointError(f"{path}: was written by a different experiment ({detail}); "
                                  f"use another out_dir or resume=False")
        restore_modules(state, nets, optimizers, path)
        reseeded = set_rng_state(state["rng"], generators={"codes": self.generator}, numpy_rngs={"data": self.data_rng})
        if reseeded:
            warnings.warn(f"{path}: written on another kind of device; the {', '.join(reseeded)} generator is "
                          f"seeded from its saved state instead (the run goes on reproducibly, with other draws)")
        self.step = int(state["step"])
        self._reset_meter()
        return self.step


def _write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
