"""Trained encoders you can load: :func:`load_encoder` turns a trial folder into a torch module that
maps images to the codes the trial's scores were computed from.

A trial folder is what a finished run writes (``python -m did_core.train --out DIR``, or a study's
``trials/<n>/``): ``scores.json`` (which model), ``config.json`` (the config, read as JSON) and
``checkpoint.pt`` (read with ``weights_only=True``: nothing is unpickled). The model's encoder hook
(``ModelSpec.encoder``, did_core/models/encoder.py) builds its encoder; :class:`TrialEncoder` feeds it
images as the trial's evaluation did (on the device, channels-last, under the run's bf16 autocast
where it trained under one, :data:`~did_core.metrics.evaluate.BATCH_SIZE` images at a time). On the
device type the trial was scored on (and without ``compile``) the codes equal the scored ones.

Anything that keeps a folder from loading (not a finished trial, a truncated checkpoint, a checkpoint
of another model or run, nets that do not fit this version's) is one :class:`TrialError` naming the file.

Example:
    >>> encoder = load_encoder("runs/x/trials/3")            # or did_core.load_encoder
    >>> encoder.model, encoder.image_shape
    ('beta_vae', (1, 64, 64))
    >>> encoder(torch.rand(5, 1, 64, 64)).shape               # the encoder's mean
    torch.Size([5, 10])
    >>> sample = evaluation_sample("runs/x/trials/3")        # the final evaluation's images and factors
    >>> sorted(sample)
    ['factors', 'factors_test', 'images', 'images_test']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import __version__
from .checkpoint import CheckpointError, load_checkpoint
from .models.base import TrainConfig
from .training import CHECKPOINT, CONFIG, SCORES, choose_device, uses_amp


class TrialError(ValueError):
    """A folder is not a trial whose encoder can be loaded; the message names the file and why."""


class TrialEncoder(nn.Module):
    """A trial's encoder: images ``[n, C, S, S]`` (tensor or array, float in [0, 1], as the trial's
    dataset yields them) to float32 codes ``[n, d]`` on ``device``, without gradients."""

    def __init__(self, net: nn.Module, model: str, config: TrainConfig, trial_dir: Path, device: torch.device):
        from .data import dataset_images

        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.model, self.config, self.trial_dir, self.device = model, config, trial_dir, device
        channels, size = dataset_images(config.dataset)
        self.image_shape = (channels, size, size)
        self.amp = uses_amp(config, device)
        self.eval()

    def forward(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        from .metrics.evaluate import BATCH_SIZE

        x = torch.as_tensor(images)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape or not x.is_floating_point():
            raise ValueError(f"images must be floats [n, {', '.join(map(str, self.image_shape))}] as dataset "
                             f"{self.config.dataset!r} yields them, got {x.dtype} {list(x.shape)}")
        codes = []
        with torch.no_grad():
            for start in range(0, max(len(x), 1), BATCH_SIZE):  # as the evaluation encodes: one batch at a time
                batch = x[start:start + BATCH_SIZE].to(self.device, torch.float32)
                batch = batch.contiguous(memory_format=torch.channels_last)
                with torch.autocast(self.device.type, torch.bfloat16, enabled=self.amp):
                    codes.append(self.net(batch).float())
        return torch.cat(codes)

    def extra_repr(self) -> str:
        return f"model={self.model!r}, trial={str(self.trial_dir)!r}, device={self.device}, amp={self.amp}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise TrialError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(data, dict):
        raise TrialError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_trial(trial_dir: str | Path) -> tuple[str, Any, TrainConfig, dict[str, Any]]:
    """``(model, spec, config, scores.json)`` of a finished trial folder, from its JSON files."""
    from .models import get_model

    trial = Path(trial_dir)
    missing = [name for name in (SCORES, CONFIG, CHECKPOINT) if not (trial / name).is_file()]
    if not trial.is_dir() or missing:
        why = "no such folder" if not trial.is_dir() else f"no {', '.join(missing)}"
        raise TrialError(f"{trial}: not a finished trial folder ({why}; a run writes {SCORES}, {CONFIG} and "
                         f"{CHECKPOINT} when it ends)")
    summary = _read_json(trial / SCORES)
    model = summary.get("model")
    if not isinstance(model, str) or not model:
        raise TrialError(f"{trial / SCORES}: names no model (expected a \"model\" key, as a run writes)")
    try:
        spec = get_model(model)
    except ValueError as err:  # a model not installed here, a broken plugin
        raise TrialError(f"{trial / SCORES}: {err}") from None
    values = _read_json(trial / CONFIG)
    try:
        config = spec.config_cls.from_dict(values)
    except ValueError as err:  # a field this version does not know, a value it refuses
        raise TrialError(f"{trial / CONFIG}: cannot be read as a {model!r} config ({err})") from None
    return model, spec, config, summary


def _check_checkpoint(path: Path, model: str, config: TrainConfig) -> str | None:
    """The checkpoint is this trial's (written for ``model`` with ``config``'s experiment); returns the
    did_core version that wrote it (None for a checkpoint older than the stamp)."""
    try:
        state = load_checkpoint(path, map_location="cpu")
    except CheckpointError as err:
        raise TrialError(str(err)) from None
    extra = state["extra"] if isinstance(state.get("extra"), dict) else {}
    if extra.get("model", model) != model:
        raise TrialError(f"{path}: a checkpoint of model {extra['model']!r}, but the trial's {SCORES} says {model!r}")
    try:
        differ = config.experiment_differences(state["config"], schedule=True)
    except (TypeError, ValueError, AttributeError):
        differ = ["its config is not a config"]
    if differ:
        raise TrialError(f"{path}: written by another run than {path.parent / CONFIG} ({', '.join(differ[:5])})")
    return extra.get("did_core")


def _one_line(message: str, keep: int = 2) -> str:
    """A message of several lines (torch's list of every tensor that does not fit) on one line: its
    first ``keep`` lines and how many more there were."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    more = f" ... ({len(lines) - keep} more)" if len(lines) > keep else ""
    return " ".join(lines[:keep]) + more


def load_encoder(trial_dir: str | Path, device: str | torch.device = "cpu") -> TrialEncoder:
    """The encoder of the finished trial in ``trial_dir`` on ``device`` (``"auto"``: CUDA when present;
    an unavailable one is a ConfigError)."""
    model, spec, config, _ = read_trial(trial_dir)
    trial = Path(trial_dir)
    checkpoint = trial / CHECKPOINT
    if spec.encoder is None:
        raise TrialError(f"{trial}: model {model!r} ({spec.package}) has no encoder hook (a load_encoder function "
                         "in its module, docs/extending.md)")
    device = choose_device(str(device))
    written = _check_checkpoint(checkpoint, model, config)
    try:
        net = spec.encoder(checkpoint, device=device)
    except ValueError as err:  # CheckpointError, ConfigError, DatasetError, PluginError
        message = _one_line(str(err) if str(err).startswith(str(checkpoint)) else f"{checkpoint}: {err}")
        if written is not None and written != __version__:
            message += f" (written by did_core {written}; this is {__version__})"
        raise TrialError(message) from None
    if not isinstance(net, nn.Module):
        raise TrialError(f"{checkpoint}: model {model!r}'s load_encoder returned {type(net).__name__}, not a torch module")
    return TrialEncoder(net, model, config, trial, device)


def evaluation_sample(trial_dir: str | Path, protocol: str | None = None) -> dict[str, np.ndarray]:
    """The images and factors the trial's final evaluation encoded for its code-based scores (its
    protocol's training rows, then its test rows), rendered as it rendered them: ``images``
    ``[num_train, C, S, S]``, ``factors`` ``[num_train, K]``, ``images_test``, ``factors_test``.
    ``protocol``: another protocol's sample (default: the one in ``scores.json``)."""
    from .data import get_dataset
    from .metrics.evaluate import BATCH_SIZE, evaluation_factors

    _, _, config, summary = read_trial(trial_dir)
    protocol = protocol or summary.get("protocol") or config.final_protocol
    dataset = get_dataset(config.dataset, source=config.data_source, path=config.data_path, device="cpu")
    view = dataset.scoring_view(config.seed)  # a sequence dataset's view draws nuisances in call order
    sample: dict[str, np.ndarray] = {}
    for suffix, factors in zip(("", "_test"), evaluation_factors(view, protocol, config.seed)):
        chunks = [view.images(factors[i:i + BATCH_SIZE]) for i in range(0, len(factors), BATCH_SIZE)]
        sample["images" + suffix] = torch.cat(chunks).numpy()
        sample["factors" + suffix] = factors
    return sample
