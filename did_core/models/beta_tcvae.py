"""β-TCVAE (Chen et al. 2018): reconstruction + KL + (β - 1) · total correlation of q(z).

The KL(q(z|x) || p(z)) decomposes into index-code MI + TC + dimension-wise KL; β-TCVAE weighs
the TC term by β and the other two by 1, i.e. ``recon + KL + (β - 1) TC``, as in the large
published study (Locatello et al. 2019, grid β in {1, 2, 4, 6, 8, 10}).

TC estimator (``tc_estimator``), both from Chen et al. with the dataset size ``N`` = the number of
images of the dataset (product of its factor sizes: 737,280 for dSprites, 480,000 for 3DShapes)
unless ``dataset_size`` says otherwise. For a batch of ``M`` and ``z_i ~ q(z | x_i)``:
``log q(z_i) ≈ logsumexp_j [log q(z_i | x_j) + log w_ij]``, the same for each marginal ``q(z_i[d])``.

- ``"mws"`` (default, minibatch-weighted sampling): ``w_ij = 1 / (N M)``. The large study's
  code drops the constant ``(D - 1) log(N M)``, which changes the value, not the gradient. The
  estimate is biased upwards: when all posteriors coincide (true TC = 0) it is ``(D - 1) log N``.
- ``"mss"`` (minibatch-stratified sampling): with ``K = M - 1``, ``w_ii = 1/N``, one other sample
  per row ``(N - K)/(N K)``, the rest ``1/K`` (each row sums to 1); coinciding posteriors give 0.

Example:
    >>> cfg = Config.from_preset("smoke", beta=6.0)
    >>> final = list(train(cfg))[-1]
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch

from .base import ConfigError
from .vae_losses import bernoulli_reconstruction, gaussian_kl, gaussian_log_density
from .vae_selection import encoder_hook, selection_hook
from .vae_trainer import VAEConfig, train_vae

ESTIMATORS = ("mws", "mss")


@dataclass
class Config(VAEConfig):
    model: ClassVar[str] = "beta_tcvae"
    beta: float = 6.0  # weight of the total-correlation term (the loss adds (beta - 1) * TC to the ELBO)
    tc_estimator: str = "mws"  # "mws" (minibatch-weighted) or "mss" (minibatch-stratified sampling)
    dataset_size: int = 0  # N in the estimator's weights; 0 = the dataset's number of images

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        if not self.beta >= 0:
            raise ConfigError.invalid(name, "beta", f"must be >= 0, got {self.beta}")
        if self.tc_estimator not in ESTIMATORS:
            raise ConfigError.invalid(name, "tc_estimator", f"must be one of {list(ESTIMATORS)}, got {self.tc_estimator!r}")
        if self.dataset_size < 0:
            raise ConfigError.invalid(name, "dataset_size", f"must be >= 0 (0 = the dataset's size), got {self.dataset_size}")
        if self.tc_estimator == "mss" and self.batch_size < 2:
            raise ConfigError.invalid(name, "batch_size", f"tc_estimator='mss' needs >= 2, got {self.batch_size}")


load_selection = selection_hook(Config)  # the label-free scores' hook (did_core/models/selection.py)
load_encoder = encoder_hook(Config)  # the trained encoder, as scored (did_core/models/encoder.py)


def train(config: Config, out_dir: str | Path | None = None, resume: bool = True) -> Iterator[dict[str, Any]]:
    """Train a β-TCVAE; yields the events of :mod:`did_core.models.base`."""

    def objective(run, nets, x, logits, mean, logvar, z):
        n = config.dataset_size or math.prod(run.dataset.factor_sizes)
        return loss_terms(x, logits, mean, logvar, z, config.beta, n, config.tc_estimator)

    yield from train_vae(config, out_dir, resume, objective)


def log_importance_weights(batch_size: int, dataset_size: int, estimator: str = "mws") -> torch.Tensor:
    """``log w`` [M, M] (float64): row ``i`` weighs the posteriors ``q(. | x_j)`` in the estimate of ``q(z_i)``."""
    m, n = batch_size, dataset_size
    if estimator == "mws":
        return torch.full((m, m), -math.log(n * m), dtype=torch.float64)
    if estimator != "mss":
        raise ValueError(f"unknown TC estimator {estimator!r}; choose one of {list(ESTIMATORS)}")
    if m < 2:
        raise ValueError("the 'mss' TC estimator needs a batch of at least 2")
    k = m - 1
    w = torch.full((m, m), 1.0 / k, dtype=torch.float64)
    rows = torch.arange(m)
    w[rows, (rows + 1) % m] = (n - k) / (n * k)
    w[rows, rows] = 1.0 / n
    return w.log()


def total_correlation(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                      estimator: str = "mws") -> torch.Tensor:
    """Estimate of ``TC(q(z)) = KL(q(z) || prod_d q(z_d))`` from one batch, averaged over it.

    ``z``, ``mean``, ``logvar`` are [M, D]: sample ``z[i] ~ q(z | x_i)``.

    Example:
        >>> tc = total_correlation(z, mean, logvar, dataset_size=737_280)
    """
    # log q(z_i[d] | x_j) for every pair (i, j): [M, M, D]
    log_q_pairs = gaussian_log_density(z[:, None, :], mean[None, :, :], logvar[None, :, :])
    log_w = log_importance_weights(z.shape[0], dataset_size, estimator).to(device=z.device, dtype=z.dtype)
    log_qz = torch.logsumexp(log_q_pairs.sum(dim=2) + log_w, dim=1)
    log_prod_marginals = torch.logsumexp(log_q_pairs + log_w[:, :, None], dim=1).sum(dim=1)
    return (log_qz - log_prod_marginals).mean()


def loss_terms(images: torch.Tensor, logits: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
               z: torch.Tensor, beta: float, dataset_size: int, estimator: str = "mws") -> dict[str, torch.Tensor]:
    """``{"reconstruction", "kl", "tc", "loss"}`` with ``loss = reconstruction + kl + (beta - 1) * tc``."""
    reconstruction = bernoulli_reconstruction(logits, images)
    kl = gaussian_kl(mean, logvar)
    tc = total_correlation(z, mean, logvar, dataset_size, estimator)
    return {"reconstruction": reconstruction, "kl": kl, "tc": tc, "loss": reconstruction + kl + (beta - 1.0) * tc}
