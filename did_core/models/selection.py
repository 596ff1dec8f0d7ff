"""What a trained model gives the study-level scores that need no labels (UDR, ModelCentrality).

A model module may define ``load_selection(checkpoint, device="cpu") -> SelectionModel``: it loads
its own nets from a training checkpoint and returns them behind this small contract;
``did_core.models.get_model(name).selection`` is that hook (None for a model without one). The
orchestrator reaches a model only through it, never through the model's module.

- ``encode(images) -> codes [n, d]``: the representation the metrics score (the encoder's mean);
- ``kl(images) -> [d]``: the mean KL of the posterior to the prior per dimension on those images
  (UDR's mask of dead dimensions); ``None`` for a model without a posterior (DiD, V3: every
  dimension alive);
- ``generator``: the model as a :class:`~did_core.metrics.model_centrality.GenerativeModel`
  (prior, generator, encoder) for ModelCentrality; ``None`` for a model without a generator.

Images are float tensors [n, C, H, W] in [0, 1] on the device the model was loaded on.

Example:
    >>> view = get_model("beta_vae").selection("runs/x/trials/3/checkpoint.pt")
    >>> codes, kl = view.encode(images), view.kl(images)
    >>> view.generator.sample(view.generator.sample_prior(8, np.random.default_rng(0))).shape
    torch.Size([8, 1, 64, 64])
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..checkpoint import CheckpointError, load_checkpoint, restore_modules
from ..data import dataset_images
from ..metrics.model_centrality import GenerativeModel
from .base import ConfigError, TrainConfig

BATCH = 512  # images through a net at a time


@dataclass(frozen=True)
class SelectionModel:
    config: TrainConfig  # the run's config: its dataset (name, source, path), seed, ...
    encode: Callable[[Any], np.ndarray]
    kl: Callable[[Any], np.ndarray] | None = None
    generator: GenerativeModel | None = None


@torch.no_grad()
def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor | np.ndarray, device: torch.device,
            to_numpy: bool = True):
    """``fn`` of ``x`` in no-grad batches of :data:`BATCH` rows on ``device``: float64 numpy
    (``to_numpy``), else a float32 tensor on ``device``."""
    x = torch.as_tensor(x, dtype=torch.float32)
    out = [fn(x[i:i + BATCH].to(device)).float() for i in range(0, len(x), BATCH)]
    y = torch.cat(out) if out else torch.zeros(0, device=device)
    return y.cpu().double().numpy() if to_numpy else y


def read_checkpoint(config_cls: type[TrainConfig], checkpoint: str | Path, device: str | torch.device):
    """``(state, config, (num_channels, image_size), device)`` of a training checkpoint: what a hook
    builds its nets from (``weights_only`` loading, did_core/checkpoint.py). A checkpoint of another
    model is a CheckpointError naming the file."""
    device = torch.device(device)
    state = load_checkpoint(checkpoint, map_location=device)
    written_by = state["extra"].get("model") if isinstance(state.get("extra"), dict) else None
    if written_by is not None and written_by != config_cls.model:  # older checkpoints carry no model name
        raise CheckpointError(f"{checkpoint}: a checkpoint of model {written_by!r}, not of {config_cls.model!r}")
    try:
        config = config_cls.from_dict(state["config"])
    except ConfigError as err:
        raise CheckpointError(f"{checkpoint}: its config is not one of model {config_cls.model!r} ({err})") from None
    return state, config, dataset_images(config.dataset), device


def restore_nets(state: dict[str, Any], nets: dict[str, torch.nn.Module], checkpoint: str | Path,
                 device: torch.device) -> dict[str, torch.nn.Module]:
    """``nets`` on ``device`` with the checkpoint's weights, in inference mode (batch statistics frozen,
    no gradients); a net the checkpoint lacks, or one that does not fit, is a CheckpointError."""
    nets = {name: net.to(device) for name, net in nets.items()}
    restore_modules(state, nets, {}, checkpoint)
    for net in nets.values():
        net.eval().requires_grad_(False)
    return nets
