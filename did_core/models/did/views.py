"""How H, E (and, when asked, the critic) see G's images: the channel that closes DiD's shortcuts.

A generator can meet L_H and L_enc by writing the code into low-amplitude grey levels that no real
image of a binary dataset carries; E, trained only on G's images, then learns nothing that transfers
to real images. Seeing G's images through a channel that destroys sub-visible detail closes that
shortcut, while gradients still reach G:

- ``raw``: the image itself (the paper's form);
- ``binarize``: threshold at 0.5 forward, identity backward (straight-through), for binary data;
- ``noise``: add Gaussian noise of std ``view_noise`` (any data): detail below the noise is lost.

``degrade`` is the fixed, non-differentiable channel the shortcut diagnostics use.

Example:
    >>> x = torch.tensor([0.2, 0.7], requires_grad=True)
    >>> y = view(x, "binarize"); y.tolist()
    [0.0, 1.0]
    >>> y.sum().backward(); x.grad.tolist()   # straight-through
    [1.0, 1.0]
"""
from __future__ import annotations

import torch

VIEWS = ("raw", "binarize", "noise")
QUANT_LEVELS = 8  # degrade() of non-binary images: 8 grey levels per channel


def view(x: torch.Tensor, kind: str, noise: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` as seen through the channel ``kind`` (see the module docstring)."""
    if kind == "raw":
        return x
    if kind == "binarize":
        return x + ((x > 0.5).to(x.dtype) - x).detach()
    if kind == "noise":
        return x + noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    raise ValueError(f"unknown view {kind!r}; choose one of {list(VIEWS)}")


@torch.no_grad()
def degrade(x: torch.Tensor, binary: bool) -> torch.Tensor:
    """Destroy sub-visible detail: binarise images of a binary dataset, else quantise to 8 levels."""
    if binary:
        return (x > 0.5).to(x.dtype)
    return torch.round(x.clamp(0, 1) * (QUANT_LEVELS - 1)) / (QUANT_LEVELS - 1)
