"""Loss pieces shared by the VAE baselines: reparameterisation, Gaussian log-density and KL,
Bernoulli reconstruction.

Conventions follow the large published study (Locatello et al. 2019): per-example sums over
pixels / latent dimensions, averaged over the batch; natural logarithms.

Example:
    >>> mean, logvar = torch.zeros(4, 10), torch.zeros(4, 10)
    >>> gaussian_kl(mean, logvar)            # KL(N(0, I) || N(0, I)) = 0
    tensor(0.)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


def reparameterise(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample ``mean + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * eps


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise ``log N(z; mean, exp(logvar))`` (broadcasting, no reduction)."""
    return -0.5 * (LOG_2PI + logvar + (z - mean) ** 2 * torch.exp(-logvar))


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, exp(logvar)) || N(0, I))`` summed over latent dims, averaged over the batch."""
    return 0.5 * (mean**2 + torch.exp(logvar) - logvar - 1.0).sum(dim=1).mean()


def bernoulli_reconstruction(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Sigmoid cross-entropy of the decoder's logits against images in [0, 1], summed over pixels
    and channels, averaged over the batch (the Bernoulli decoder's negative log-likelihood)."""
    per_pixel = F.binary_cross_entropy_with_logits(logits, images, reduction="none")
    return per_pixel.flatten(1).sum(dim=1).mean()
