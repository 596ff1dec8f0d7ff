"""DiD's selection hook: G and E read back from a checkpoint behind
:class:`~did_core.models.selection.SelectionModel`; and its encoder hook (:func:`load_encoder`,
did_core/models/encoder.py): E alone, as a module.

- the representation: ``E`` on the images (the critic's code head with ``encoder="critic_head"``);
  DiD has no posterior, so ``kl`` is None and UDR keeps every dimension;
- the generator: codes ``U(-1, 1)^(n_latents + n_noise)``, images ``G(c)``; ModelCentrality fixes
  the ``n_latents`` compared latents in turn, never the free noise.

Example:
    >>> view = load_selection("trials/0/checkpoint.pt")
    >>> view.kl is None, view.generator.n_latents
    (True, 10)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..encoder import CodeFunction, restore_encoder_nets
from ..selection import SelectionModel, batched, read_checkpoint, restore_nets
from .config import Config
from .trainer import build_nets


class DiDView:
    """A trained DiD as a :class:`~did_core.metrics.model_centrality.GenerativeModel`."""

    def __init__(self, G: torch.nn.Module, E, cfg: Config, device: torch.device):
        self.G, self.E, self.n_latents, self.n_code, self.device = G, E, cfg.n_latents, cfg.n_code, device

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, size=(n, self.n_code))

    def sample(self, codes: np.ndarray) -> torch.Tensor:
        return batched(self.G, codes, self.device, to_numpy=False)

    def encode(self, images) -> np.ndarray:
        return batched(self.E, images, self.device)


def load_selection(checkpoint: str | Path, device: str | torch.device = "cpu") -> SelectionModel:
    """DiD's nets from a training checkpoint, for the label-free scores."""
    state, cfg, (channels, size), device = read_checkpoint(Config, checkpoint, device)
    nets = restore_nets(state, build_nets(cfg, channels, size), checkpoint, device)
    view = DiDView(nets["G"], nets["E"] if "E" in nets else nets["D"].encode, cfg, device)
    return SelectionModel(config=cfg, encode=view.encode, kl=None, generator=view)


def critic_codes(x: torch.Tensor, D: torch.nn.Module) -> torch.Tensor:
    """E as the critic's code head (``encoder="critic_head"``): ``D.encode``, as training scores it."""
    return D.encode(x)


def load_encoder(checkpoint: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """E from a training checkpoint, as DiD's evaluation scores it: the separate encoder, or the
    critic's code head (the critic alone is built then; G and H are not needed)."""

    def build(cfg: Config, shape: tuple[int, int]) -> dict[str, torch.nn.Module]:
        nets = build_nets(cfg, *shape)
        return {"E": nets["E"]} if "E" in nets else {"D": nets["D"]}

    _, nets = restore_encoder_nets(Config, checkpoint, device, build)
    return nets["E"] if "E" in nets else CodeFunction(critic_codes, nets)
