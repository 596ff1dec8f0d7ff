"""β-VAE (Higgins et al. 2017): Bernoulli reconstruction + β · KL(q(z|x) || N(0, I)).

Settings of the large published study (Locatello et al. 2019): batch 64, 10 latents, Adam lr 1e-4,
grid β in {1, 2, 4, 6, 8, 16}. The representation is the encoder mean.

Example:
    >>> cfg = Config.from_preset("smoke", beta=8.0, seed=2)
    >>> final = list(train(cfg, out_dir="runs/bvae"))[-1]
    >>> final["scores"]["mig"]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch

from .base import ConfigError
from .vae_losses import bernoulli_reconstruction, gaussian_kl
from .vae_selection import encoder_hook, selection_hook
from .vae_trainer import VAEConfig, train_vae


@dataclass
class Config(VAEConfig):
    model: ClassVar[str] = "beta_vae"
    beta: float = 4.0  # weight of the KL term

    def validate(self) -> None:
        super().validate()
        if not self.beta >= 0:
            raise ConfigError.invalid(type(self).__name__, "beta", f"must be >= 0, got {self.beta}")


load_selection = selection_hook(Config)  # the label-free scores' hook (did_core/models/selection.py)
load_encoder = encoder_hook(Config)  # the trained encoder, as scored (did_core/models/encoder.py)


def train(config: Config, out_dir: str | Path | None = None, resume: bool = True) -> Iterator[dict[str, Any]]:
    """Train a β-VAE; yields the events of :mod:`did_core.models.base`."""

    def objective(run, nets, x, logits, mean, logvar, z):
        return loss_terms(x, logits, mean, logvar, config.beta)

    yield from train_vae(config, out_dir, resume, objective)


def loss_terms(images: torch.Tensor, logits: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
               beta: float) -> dict[str, torch.Tensor]:
    """``{"reconstruction", "kl", "loss"}`` with ``loss = reconstruction + beta * kl``.

    Example:
        >>> t = loss_terms(x, decoder(z), mean, logvar, beta=4.0)
        >>> t["loss"].backward()
    """
    reconstruction = bernoulli_reconstruction(logits, images)
    kl = gaussian_kl(mean, logvar)
    return {"reconstruction": reconstruction, "kl": kl, "loss": reconstruction + beta * kl}
