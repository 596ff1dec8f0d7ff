"""The Sample Generation Paradigm: base codes and their moves along ``k`` of the ``n`` latent axes.

For each base code ``c ~ U(-1, 1)^n`` we pick ``k`` distinct axes and make one moved code per
axis, equal to ``c`` except on that axis. ``G`` renders both; ``H`` sees each (base, moved)
image pair, labelled by the axis that moved.

Example:
    >>> gen = torch.Generator().manual_seed(0)
    >>> c, moved, dims = sample_moves(4, n_latents=10, k=3, move="resample", generator=gen)
    >>> c.shape, moved.shape, dims.shape
    (torch.Size([4, 10]), torch.Size([4, 3, 10]), torch.Size([4, 3]))
"""
from __future__ import annotations

import torch


def sample_codes(n: int, n_latents: int, generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` codes from ``U(-1, 1)^n_latents``."""
    return torch.rand(n, n_latents, generator=generator, device=device) * 2 - 1


def sample_moves(
    batch: int,
    n_latents: int,
    k: int,
    move: str,
    generator: torch.Generator,
    shift_min: float = 0.5,
    shift_max: float = 1.0,
    device: torch.device | str = "cpu",
    n_axes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Base codes ``[B, n]``, moved codes ``[B, k, n]`` and the moved axes ``[B, k]`` (distinct per row),
    drawn from the first ``n_axes`` latents (default all; the others are never moved).

    ``move="resample"`` draws the moved coordinate afresh from ``U(-1, 1)``; ``move="shift"`` adds
    ``+-U(shift_min, shift_max)`` and clips to ``[-1, 1]``.
    """
    c = sample_codes(batch, n_latents, generator, device)
    dims = torch.rand(batch, n_axes or n_latents, generator=generator, device=device).argsort(dim=1)[:, :k]
    old = c.gather(1, dims)  # [B, k]
    if move == "resample":
        new = torch.rand(batch, k, generator=generator, device=device) * 2 - 1
    elif move == "shift":
        size = shift_min + (shift_max - shift_min) * torch.rand(batch, k, generator=generator, device=device)
        sign = torch.randint(0, 2, (batch, k), generator=generator, device=device) * 2 - 1
        new = (old + sign * size).clamp(-1, 1)
    else:
        raise ValueError(f"unknown move {move!r}")
    moved = c.unsqueeze(1).repeat(1, k, 1)  # [B, k, n]
    moved.scatter_(2, dims.unsqueeze(2), new.unsqueeze(2))
    return c, moved, dims


def traversal_codes(n_latents: int, steps: int, base: torch.Tensor | None = None) -> torch.Tensor:
    """``[n_latents * steps, n]``: row ``i`` sweeps latent ``i`` over ``linspace(-1, 1, steps)``,
    the others held at ``base`` (zeros by default). For the latent-traversal image."""
    base = torch.zeros(n_latents) if base is None else base
    codes = base.reshape(1, 1, n_latents).repeat(n_latents, steps, 1)
    values = torch.linspace(-1, 1, steps, device=codes.device)
    for i in range(n_latents):
        codes[i, :, i] = values
    return codes.reshape(n_latents * steps, n_latents)


def order_pairs(x: torch.Tensor, x_moved: torch.Tensor, c: torch.Tensor, moved: torch.Tensor,
                dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Swap each (base, moved) image pair where the moved coordinate went down, so that in every
    pair H sees the coordinate increase from the first image to the second. ``x`` and ``x_moved``
    are ``[B*k, ...]`` in the order of ``moved.reshape(B*k, n)``."""
    old = c.gather(1, dims)  # [B, k]
    new = moved.gather(2, dims.unsqueeze(2)).squeeze(2)
    up = (new >= old).reshape(-1, *([1] * (x.dim() - 1)))
    return torch.where(up, x, x_moved), torch.where(up, x_moved, x)
