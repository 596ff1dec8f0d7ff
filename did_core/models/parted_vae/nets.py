"""PartedVAE's nets: the encoder (trunk, heads of ``z`` and ``c``, the attention gate and ``u``'s
heads), the decoder, and ``u``'s prior.

Encoder trunk as the baselines' (four 4x4 stride-2 convolutions of 32, 32, 64, 64 channels, dense
256), except that the last convolution and the dense layer use LeakyReLU(0.1), as in the authors'
code. With ``V`` categorical variables of ``K_1 .. K_V`` classes:

- ``c``'s logits ``[n, sum K]`` from the features ``h [n, 256]``; training feeds the attention a
  Gumbel-softmax sample ``c~`` per variable, evaluation the one-hot argmax;
- the gate ``a = sigmoid(slope * W_a c~ + b)`` ``[n, V * 256]``, ``W_a`` block-diagonal (block ``i``
  sees only ``c~_i``); ``u``'s mean and log-variance ``[n, V * u_dim]`` from ``repeat(h, V) * a``,
  again block-diagonal. :class:`BlockLinear` multiplies its weight by the mask in every forward
  pass, so off-block weights get zero gradients and (initialised at zero) stay exactly zero under
  Adam. With ``attention=False`` (ablation) ``a = 1``.

The decoder is the baselines' (``vae_nets.Decoder``) on ``[z, u]``; its output are Bernoulli logits.
Weights: PyTorch's default initialisation (the authors'), the decoder Glorot as the baselines'.

Example:
    >>> enc = PartedEncoder(1, z_dim=5, class_sizes=[3], u_dim=1)
    >>> post = enc(torch.rand(8, 1, 64, 64), slope=1.0, temperature=0.67)
    >>> post.z_mean.shape, post.u_mean.shape, post.c_logits.shape
    (torch.Size([8, 5]), torch.Size([8, 1]), torch.Size([8, 3]))
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN = 256


def block_mask(rows: list[int], cols: list[int]) -> torch.Tensor:
    """``[sum rows, sum cols]``: ones in the diagonal blocks ``rows[i] x cols[i]``, zeros elsewhere."""
    mask = torch.zeros(sum(rows), sum(cols))
    r = c = 0
    for nr, nc in zip(rows, cols):
        mask[r:r + nr, c:c + nc] = 1.0
        r, c = r + nr, c + nc
    return mask


class BlockLinear(nn.Linear):
    """A linear layer whose weight is block-diagonal: the mask is applied to the stored weight at
    initialisation and to the weight in every forward pass (so gradients outside the blocks are 0)."""

    def __init__(self, in_blocks: list[int], out_blocks: list[int]):
        super().__init__(sum(in_blocks), sum(out_blocks))
        self.register_buffer("mask", block_mask(out_blocks, in_blocks), persistent=False)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


@dataclass
class Posterior:
    """What the encoder says about a batch: ``z``'s and ``u``'s Gaussians, ``c``'s logits (all
    variables side by side) and the (relaxed or one-hot) ``c`` the attention saw."""

    z_mean: torch.Tensor
    z_logvar: torch.Tensor
    c_logits: torch.Tensor
    c: torch.Tensor
    u_mean: torch.Tensor
    u_logvar: torch.Tensor

    def code(self) -> torch.Tensor:
        """The representation that is scored: ``[mu_z, mu_u]``."""
        return torch.cat([self.z_mean, self.u_mean], dim=1)


def split_softmax(logits: torch.Tensor, class_sizes: list[int]) -> list[torch.Tensor]:
    """Per categorical variable, the class probabilities ``[n, K_i]``."""
    return [chunk.softmax(dim=1) for chunk in logits.split(class_sizes, dim=1)]


def gumbel_softmax(logits: torch.Tensor, class_sizes: list[int], temperature: float,
                   generator: torch.Generator | None) -> torch.Tensor:
    """A relaxed one-hot sample per variable, ``softmax((logits + g) / T)`` with Gumbel noise ``g``
    drawn from ``generator`` (so that a resumed run draws the same noise)."""
    logits = logits.float()  # the noise and the softmax in float32, also under bf16 autocast
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=torch.float32)
    g = -torch.log(-torch.log(u.clamp(1e-10, 1.0)) + 1e-10)
    return torch.cat([chunk.softmax(dim=1) for chunk in ((logits + g) / temperature).split(class_sizes, dim=1)], dim=1)


def one_hot_argmax(logits: torch.Tensor, class_sizes: list[int]) -> torch.Tensor:
    return torch.cat([F.one_hot(chunk.argmax(dim=1), k).to(logits.dtype)
                      for chunk, k in zip(logits.split(class_sizes, dim=1), class_sizes)], dim=1)


class PartedEncoder(nn.Module):
    """Image ``[n, C, 64, 64]`` -> :class:`Posterior`. ``trunk`` and ``c_head`` are what the
    labelled step trains."""

    def __init__(self, channels: int, z_dim: int, class_sizes: list[int], u_dim: int, attention: bool = True):
        super().__init__()
        self.class_sizes, self.u_dim, self.attention = list(class_sizes), u_dim, attention
        n_vars = len(self.class_sizes)
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, 32, 4, stride=2, padding=1), nn.ReLU(),  # 32x32
            nn.Conv2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),  # 16x16
            nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),  # 8x8
            nn.Conv2d(64, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.1),  # 4x4
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, HIDDEN), nn.LeakyReLU(0.1),
        )
        self.z_mean = nn.Linear(HIDDEN, z_dim)
        self.z_logvar = nn.Linear(HIDDEN, z_dim)
        self.c_head = nn.Linear(HIDDEN, sum(self.class_sizes))
        self.gate = BlockLinear(self.class_sizes, [HIDDEN] * n_vars) if attention else None
        self.u_mean = BlockLinear([HIDDEN] * n_vars, [u_dim] * n_vars)
        self.u_logvar = BlockLinear([HIDDEN] * n_vars, [u_dim] * n_vars)

    def supervised_parameters(self) -> list[nn.Parameter]:
        """What the labelled cross-entropy step updates: the trunk and ``c``'s head."""
        return [*self.trunk.parameters(), *self.c_head.parameters()]

    def forward(self, x: torch.Tensor, slope: float, temperature: float,
                generator: torch.Generator | None = None, hard: bool = False) -> Posterior:
        """``hard`` (evaluation): ``c`` is the one-hot argmax; else a Gumbel-softmax sample."""
        h = self.trunk(x)
        logits = self.c_head(h)
        c = one_hot_argmax(logits, self.class_sizes) if hard else \
            gumbel_softmax(logits, self.class_sizes, temperature, generator)
        h_rep = h.repeat(1, len(self.class_sizes))
        if self.gate is not None:
            # slope * (W_a c + b): the authors' sigmoid(k * logit)
            h_rep = h_rep * torch.sigmoid(slope * self.gate(c))
        return Posterior(self.z_mean(h), self.z_logvar(h), logits, c, self.u_mean(h_rep), self.u_logvar(h_rep))


class UPrior(nn.Module):
    """``u``'s prior: per class ``k`` of each variable a diagonal Gaussian ``N(m_k, exp(logvar_k))``,
    ``m_k ~ N(0, 1)`` at initialisation and ``logvar_k = 2 tanh(theta_k) - 1`` (within [-3, 1]);
    learnable (``mixture``), or every component N(0, I) and nothing to learn (``standard``)."""

    def __init__(self, class_sizes: list[int], u_dim: int, kind: str = "mixture"):
        super().__init__()
        self.class_sizes, self.kind = list(class_sizes), kind
        shape = (sum(self.class_sizes), u_dim)
        if kind == "mixture":
            self.means = nn.Parameter(torch.randn(shape))
            self.theta = nn.Parameter(torch.randn(shape))
        else:
            self.register_buffer("means", torch.zeros(shape))
            self.theta = None

    def logvars(self) -> torch.Tensor:
        """``[sum K, u_dim]``; 0 for every component of the ``standard`` prior."""
        if self.theta is None:
            return torch.zeros_like(self.means)
        return 2.0 * torch.tanh(self.theta) - 1.0
