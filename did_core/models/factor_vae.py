"""FactorVAE (Kim & Mnih 2018): reconstruction + KL + γ · TC, the TC estimated with a
discriminator that tells samples of q(z) from samples of prod_d q(z_d) (density-ratio trick).

The discriminator is an MLP of 6 hidden layers of 1000 units (LeakyReLU 0.2) with two logits:
class 0 = "from q(z)", class 1 = "from the product of marginals" (each latent dimension permuted
independently across the batch). ``TC ≈ E[logit_0 - logit_1]``. It is trained with its own Adam
(lr 1e-4, betas (0.5, 0.9)) on the same batch's codes, as in the large published study
(Locatello et al. 2019, grid γ in {10, 20, 30, 40, 50, 100}). Per step: one VAE update with the
discriminator frozen, then one discriminator update on the (detached) codes of that batch and
their permutation.

Example:
    >>> cfg = Config.from_preset("smoke", gamma=40.0)
    >>> final = list(train(cfg))[-1]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .base import ConfigError
from .vae_losses import bernoulli_reconstruction, gaussian_kl
from .vae_nets import glorot_init
from .vae_selection import encoder_hook, selection_hook
from .vae_trainer import VAEConfig, train_vae


@dataclass
class Config(VAEConfig):
    model: ClassVar[str] = "factor_vae"
    gamma: float = 40.0  # weight of the discriminator's TC estimate
    disc_hidden: int = 1000
    disc_layers: int = 6
    disc_lr: float = 1e-4
    disc_beta1: float = 0.5
    disc_beta2: float = 0.9

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        if not self.gamma >= 0:
            raise ConfigError.invalid(name, "gamma", f"must be >= 0, got {self.gamma}")
        for field in ("disc_hidden", "disc_layers"):
            if getattr(self, field) < 1:
                raise ConfigError.invalid(name, field, f"must be >= 1, got {getattr(self, field)}")
        if not self.disc_lr > 0:
            raise ConfigError.invalid(name, "disc_lr", f"must be > 0, got {self.disc_lr}")
        for field in ("disc_beta1", "disc_beta2"):
            if not 0 <= getattr(self, field) < 1:
                raise ConfigError.invalid(name, field, f"must be in [0, 1), got {getattr(self, field)}")


load_selection = selection_hook(Config)  # the label-free scores' hook (did_core/models/selection.py)
load_encoder = encoder_hook(Config)  # the trained encoder, as scored (did_core/models/encoder.py)


def train(config: Config, out_dir: str | Path | None = None, resume: bool = True) -> Iterator[dict[str, Any]]:
    """Train a FactorVAE; yields the events of :mod:`did_core.models.base`."""
    cfg = config

    def make_discriminator():
        return Discriminator(cfg.latent_dim, cfg.disc_hidden, cfg.disc_layers)

    def make_optimizer(params):
        return torch.optim.Adam(params, lr=cfg.disc_lr, betas=(cfg.disc_beta1, cfg.disc_beta2))

    def objective(run, nets, x, logits, mean, logvar, z):
        d = nets["discriminator"].requires_grad_(False)  # the VAE step must not train it
        with run.autocast():
            d_logits = d(z).float()
        d.requires_grad_(True)
        return loss_terms(x, logits, mean, logvar, d_logits, cfg.gamma)

    def discriminator_step(run, nets, opts, z):
        d = nets["discriminator"]
        with run.autocast():
            both = d(torch.cat([z, permute_dims(z, run.generator)])).float()
        loss = discriminator_loss(both[: len(z)], both[len(z):])
        opts["discriminator"].zero_grad(set_to_none=True)
        loss.backward()
        opts["discriminator"].step()
        return {"loss_discriminator": loss.detach()}

    yield from train_vae(cfg, out_dir, resume, objective,
                         extra_nets={"discriminator": (make_discriminator, make_optimizer)}, extra_step=discriminator_step)


class Discriminator(nn.Module):
    """Codes [n, latent_dim] -> logits [n, 2] (column 0: joint q(z), column 1: product of marginals)."""

    def __init__(self, latent_dim: int = 10, hidden: int = 1000, layers: int = 6):
        super().__init__()
        blocks: list[nn.Module] = []
        width = latent_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        blocks.append(nn.Linear(width, 2))
        self.net = glorot_init(nn.Sequential(*blocks))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each column of ``z`` [n, d] shuffled independently across the batch: a sample of prod_d q(z_d)."""
    n, d = z.shape
    order = torch.argsort(torch.rand(n, d, generator=generator, device=z.device), dim=0)
    return torch.gather(z, 0, order)


def tc_estimate(d_logits: torch.Tensor) -> torch.Tensor:
    """Density-ratio TC estimate ``mean(logit_0 - logit_1)`` = mean log(D(z) / (1 - D(z)))."""
    return (d_logits[:, 0] - d_logits[:, 1]).mean()


def loss_terms(images: torch.Tensor, logits: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
               d_logits: torch.Tensor, gamma: float) -> dict[str, torch.Tensor]:
    """VAE side: ``{"reconstruction", "kl", "tc", "loss"}`` with ``loss = reconstruction + kl + gamma * tc``;
    ``d_logits`` = discriminator(z) for the sampled codes ``z`` (gradient flows into the encoder)."""
    reconstruction = bernoulli_reconstruction(logits, images)
    kl = gaussian_kl(mean, logvar)
    tc = tc_estimate(d_logits)
    return {"reconstruction": reconstruction, "kl": kl, "tc": tc, "loss": reconstruction + kl + gamma * tc}


def discriminator_loss(d_logits_joint: torch.Tensor, d_logits_permuted: torch.Tensor) -> torch.Tensor:
    """``0.5 * (CE(joint, class 0) + CE(permuted, class 1))``, batch means."""
    joint = F.cross_entropy(d_logits_joint, torch.zeros(len(d_logits_joint), dtype=torch.long, device=d_logits_joint.device))
    permuted = F.cross_entropy(d_logits_permuted, torch.ones(len(d_logits_permuted), dtype=torch.long, device=d_logits_permuted.device))
    return 0.5 * (joint + permuted)
