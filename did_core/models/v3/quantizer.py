"""The EMA vector quantiser of V3's content codes.

``K`` atoms; a code is replaced by its nearest atom (Euclidean). The atoms are not learned by
gradient: each is the exponential moving average (``decay``) of the codes assigned to it
(cluster sizes and sums tracked separately, Laplace-smoothed sizes). The codebook starts from
k-means on the first training batch, each atom's size the count of its k-means cluster. After
every training call an atom whose size (the EMA of the codes assigned to it per call) is below
``dead_threshold`` is dead: it moves onto a random code of the current batch, its size reset to
the threshold, so it must draw about that many codes a call to stay (the rule of the authors'
quantiser library, ``threshold_ema_dead_code``). The encoder gets the straight-through gradient
(``z + (q - z).detach()``) and the commitment loss ``mean ||z - sg(q)||^2``.

Example:
    >>> vq = EMAQuantizer(codebook_size=10, dim=16)
    >>> out = vq(torch.randn(320, 16))          # training mode: k-means init, EMA update
    >>> out.quantized.shape, out.indices.shape, float(out.commitment) >= 0
    (torch.Size([320, 16]), torch.Size([320]), True)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

KMEANS_ITERS = 10
EPS = 1e-5


@dataclass(frozen=True)
class Quantized:
    quantized: torch.Tensor  # [N, d], straight-through: forward = the atoms, gradient to z
    atoms: torch.Tensor  # [N, d], the atoms themselves (no gradient)
    indices: torch.Tensor  # [N] int64
    commitment: torch.Tensor  # scalar, mean squared distance of z to its atom (gradient to z only)


class EMAQuantizer(nn.Module):
    def __init__(self, codebook_size: int, dim: int, decay: float = 0.98, dead_threshold: float = 16.0):
        super().__init__()
        self.K, self.decay, self.dead_threshold = codebook_size, decay, dead_threshold
        self.register_buffer("codebook", torch.zeros(codebook_size, dim))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))  # EMA of codes assigned per call
        self.register_buffer("cluster_sum", torch.zeros(codebook_size, dim))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self._initialised_seen = False  # True once the buffer is known to be set (a loaded state may set it)

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest atom for each row of ``z`` [N, d]."""
        return torch.cdist(z.float(), self.codebook).argmin(dim=1)

    def _load_from_state_dict(self, *args, **kwargs):
        self._initialised_seen = False  # the loaded buffer says, at the next training call
        return super()._load_from_state_dict(*args, **kwargs)

    def forward(self, z: torch.Tensor) -> Quantized:
        if self.training:
            with torch.no_grad():
                if not self._initialised_seen:  # the buffer is read back once, not every step
                    self._initialised_seen = bool(self.initialised)
                if not self._initialised_seen:
                    self._kmeans_init(z.detach().float())
                    self._initialised_seen = True
        idx = self.assign(z.detach())
        if self.training:
            with torch.no_grad():
                self._ema_update(z.detach().float(), idx)
                self._replace_dead(z.detach().float())
        atoms = self.codebook[idx].to(z.dtype)
        commitment = (z - atoms.detach()).pow(2).sum(dim=1).mean()
        return Quantized(quantized=z + (atoms - z).detach(), atoms=atoms, indices=idx, commitment=commitment)

    def _kmeans_init(self, z: torch.Tensor) -> None:
        """Lloyd's k-means from K distinct random rows (torch's global RNG, seeded by the run)."""
        start = torch.randperm(len(z), device=z.device)[: self.K]
        centres = z[start].clone()
        if len(centres) < self.K:  # fewer codes than atoms: repeat them with a little noise
            extra = z[torch.randint(len(z), (self.K - len(centres),), device=z.device)]
            centres = torch.cat([centres, extra + 1e-3 * torch.randn_like(extra)])
        for _ in range(KMEANS_ITERS):
            idx = torch.cdist(z, centres).argmin(dim=1)
            counts = torch.bincount(idx, minlength=self.K).float()
            sums = torch.zeros_like(centres).index_add_(0, idx, z)
            centres = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centres)
        counts = torch.bincount(torch.cdist(z, centres).argmin(dim=1), minlength=self.K).float()
        self.codebook.copy_(centres)
        self.cluster_size.copy_(counts)
        self.cluster_sum.copy_(centres * counts[:, None])
        self.initialised.fill_(True)

    def _ema_update(self, z: torch.Tensor, idx: torch.Tensor) -> None:
        counts = torch.bincount(idx, minlength=self.K).float()
        sums = torch.zeros_like(self.cluster_sum).index_add_(0, idx, z)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.cluster_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + EPS) / (n + self.K * EPS) * n  # Laplace smoothing
        self.codebook.copy_(self.cluster_sum / smoothed[:, None])

    def _replace_dead(self, z: torch.Tensor) -> None:
        dead = torch.nonzero(self.cluster_size < self.dead_threshold).flatten()
        if len(dead):
            pick = z[torch.randint(len(z), (len(dead),), device=z.device)]
            self.codebook[dead] = pick
            self.cluster_size[dead] = float(self.dead_threshold)
            self.cluster_sum[dead] = pick * float(self.dead_threshold)
