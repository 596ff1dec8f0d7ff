"""V3's variability ratios and hinge losses ("variance versus invariance").

Codes come as ``[B, L, d]``: ``B`` samples of ``L`` fragments.
- ``mpd(X)``: the mean pairwise Euclidean distance of the rows of ``X`` [n, d].
- within-sample variability ``V_f = mean_b mpd(X[b])``; across-sample variability
  ``V_s = mpd(mean_l X[:, l])`` (the per-sample mean codes).
- Content should vary within a sample and not across samples, style the reverse, and each
  should dominate the other where it varies. The four ratios (``hinge_*`` config names):
  ``content``: Vc_f / Vc_s, ``style``: Vs_s / Vs_f, ``across``: Vs_s / Vc_s, ``within``: Vc_f / Vs_f,
  each pushed above the relativity ``r`` by ``h(ratio) = relu(r - ratio) / r``.
With quantisation the content variabilities are the mean of those of the codes before and after
quantisation (the authors' code). Denominators get ``EPS``.

Example:
    >>> zc, zs = torch.randn(4, 10, 8), torch.randn(4, 1, 8).expand(4, 10, 8)
    >>> v = variabilities(zc, zs)
    >>> sorted(v), hinge(torch.tensor(20.0), 15.0).item()
    (['content_f', 'content_s', 'style_f', 'style_s'], 0.0)
"""
from __future__ import annotations

import torch

EPS = 1e-5
TERMS = ("content", "style", "across", "within")


def mpd(x: torch.Tensor) -> torch.Tensor:
    """Mean pairwise Euclidean distance of the rows of ``x`` [n, d] (n >= 2); gradient 0 at
    coincident rows."""
    if x.shape[0] < 2:
        raise ValueError(f"mpd: needs at least 2 rows, got {x.shape[0]}")
    return torch.pdist(x.float()).mean()


def within(x: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the mpd of each sample's fragments; ``x`` [B, L, d] (L >= 2)."""
    L = x.shape[1]
    if L < 2:
        raise ValueError(f"within: needs at least 2 fragments per sample, got {L}")
    i, j = torch.triu_indices(L, L, offset=1, device=x.device)
    return torch.linalg.vector_norm((x[:, i] - x[:, j]).float(), dim=-1).mean()


def across(x: torch.Tensor) -> torch.Tensor:
    """The mpd of the per-sample mean codes; ``x`` [B, L, d]."""
    return mpd(x.mean(dim=1))


def variabilities(zc: torch.Tensor, zs: torch.Tensor, zc_quantized: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``content_f``, ``content_s``, ``style_f``, ``style_s`` for codes ``[B, L, d]``; with
    ``zc_quantized`` the content ones average the codes before and after quantisation."""
    content = [zc] if zc_quantized is None else [zc, zc_quantized]
    return {
        "content_f": torch.stack([within(c) for c in content]).mean(),
        "content_s": torch.stack([across(c) for c in content]).mean(),
        "style_f": within(zs),
        "style_s": across(zs),
    }


def ratios(v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The four ratios, named as the hinge terms that push them up."""
    return {
        "content": v["content_f"] / (v["content_s"] + EPS),
        "style": v["style_s"] / (v["style_f"] + EPS),
        "across": v["style_s"] / (v["content_s"] + EPS),
        "within": v["content_f"] / (v["style_f"] + EPS),
    }


def hinge(ratio: torch.Tensor, r: float) -> torch.Tensor:
    """``relu(r - ratio) / r``: 0 once the ratio reaches the relativity ``r``."""
    return torch.relu(r - ratio) / r
