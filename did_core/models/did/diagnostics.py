"""Shortcut diagnostics: does DiD meet its objectives through what a real image can show?

Recorded with every DiD evaluation (next to the metric scores) and shown in the report:

- ``h_acc_raw`` / ``h_acc_degraded``: H's moved-axis accuracy (leave-one-out 1-nearest-neighbour
  over H's embeddings of (base, moved) pairs, every compared axis moved once per base) on G's
  images as they are, and on the same images degraded (``views.degrade``: binarised for a binary
  dataset, else 8 grey levels). ``h_acc_chance`` = 1 / compared axes.
- ``e_mse_raw`` / ``e_mse_degraded``: E's squared error per compared latent on the same images
  (guessing 0 for ``U(-1, 1)`` gives 1/3).
- ``nn_dist_fake``: mean squared distance from G's degraded samples (codes from the prior) to the
  nearest of ``N_REFERENCE`` real images, in pixels (for binary images: the number of differing
  pixels): are the samples realistic? ``nn_dist_real``: the same for fresh real images, the floor.
- ``nn_cover_fake``: mean distance from ``N_SAMPLES`` fresh real images to the nearest of the
  ``N_SAMPLES`` samples: does G cover the data (a blank frame is close to a small real sprite, but
  a G that draws only blank frames covers nothing)? ``nn_cover_real``: the same with real images
  in place of the samples, the floor.

A skill that lives on raw images and dies on degraded ones was met through sub-visible detail; a
sample far from every real image is an unrealistic mark; real images far from every sample are
data that G does not draw. :func:`shortcut_flags` names both, with
the thresholds below. Everything is drawn from generators seeded by the run's seed, never from the
training RNG, so diagnosing a run does not change it.

Example:
    >>> scores = shortcut_diagnostics(G, H, E, get_dataset("squares"), cfg, torch.device("cpu"))
    >>> shortcut_flags(scores)      # [] when nothing is suspicious
    []
"""
from __future__ import annotations

import numpy as np
import torch

from ...metrics.registry import MODEL, Metric, register
from .sample_generation import order_pairs, sample_codes
from .views import degrade

N_BASES = 64  # base codes for H's and E's skill; each moved once along every compared axis
N_SAMPLES = 256  # G samples (and fresh real images) for the realism distances
N_REFERENCE = 2048  # real images they are compared with
# each diagnostic and its direction, registered as scores the model provides, so that tables and
# objectives know their directions
DIRECTIONS = {"h_acc_raw": "maximize", "h_acc_degraded": "maximize", "h_acc_chance": "maximize",
              "e_mse_raw": "minimize", "e_mse_degraded": "minimize",
              "nn_dist_fake": "minimize", "nn_dist_real": "minimize",
              "nn_cover_fake": "minimize", "nn_cover_real": "minimize"}
DIAGNOSTICS = tuple(DIRECTIONS)
register(Metric("did_shortcuts", DIRECTIONS, MODEL, diagnostic=True))
# shortcut_flags' thresholds
H_SKILL_KEPT = 0.5  # H keeps less than half its above-chance accuracy on degraded images
E_ERROR_RATIO, E_ERROR_MARGIN = 2.0, 0.05  # E's degraded error above 2x its raw error + 0.05
REALISM_RATIO, REALISM_MARGIN = 1.5, 0.005  # farther than 1.5x the real floor + 0.5% of the pixels (both ways)


def axis_accuracy(v: torch.Tensor, labels: torch.Tensor) -> float:
    """Leave-one-out 1-NN accuracy (cosine) of embeddings ``v [N, m]`` labelled ``[N]``."""
    v = torch.nn.functional.normalize(v.float(), dim=1)
    sim = v @ v.T
    sim.fill_diagonal_(-float("inf"))
    return float((labels[sim.argmax(dim=1)] == labels).float().mean())


def nn_distance(x: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean over ``x`` of the squared Euclidean distance to the nearest row of ``reference``."""
    a, b = x.flatten(1).double(), reference.flatten(1).double()
    d = (a * a).sum(1, keepdim=True) + (b * b).sum(1) - 2 * a @ b.T
    return float(d.min(dim=1).values.clamp_min(0).mean())


@torch.no_grad()
def shortcut_diagnostics(G, H, encode, dataset, cfg, device: torch.device) -> dict[str, float]:
    """The diagnostics above for the nets as they are now (G and H in eval mode, then restored)."""
    modes = [(m, m.training) for m in (G, H)]
    for m, _ in modes:
        m.eval()
    try:
        return _diagnose(G, H, encode, dataset, cfg, device)
    finally:
        for m, mode in modes:
            m.train(mode)


def _diagnose(G, H, encode, dataset, cfg, device) -> dict[str, float]:
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 7919)
    rng = np.random.default_rng(cfg.seed + 7919)
    m, n, binary = cfg.n_latents, cfg.n_code, dataset.binary
    # every base moved once along each compared axis, the moved value drawn afresh
    c = sample_codes(N_BASES, n, gen, device)
    dims = torch.arange(m, device=device).repeat(N_BASES, 1)  # [B, m]
    moved = c.unsqueeze(1).repeat(1, m, 1)
    moved.scatter_(2, dims.unsqueeze(2), (torch.rand(N_BASES, m, 1, generator=gen, device=device) * 2 - 1))
    codes = torch.cat([c, moved.reshape(-1, n)])
    x = G(codes).float()
    scores = {"h_acc_chance": 1.0 / m}
    for name, images in (("raw", x), ("degraded", degrade(x, binary))):
        first, second = images[:N_BASES].repeat_interleave(m, dim=0), images[N_BASES:]
        if cfg.order_pairs:
            first, second = order_pairs(first, second, c, moved, dims)
        scores[f"h_acc_{name}"] = axis_accuracy(H(first, second), dims.reshape(-1))
        scores[f"e_mse_{name}"] = float((encode(images).float() - codes[:, :m]).pow(2).mean())
    fakes = degrade(G(sample_codes(N_SAMPLES, n, gen, device)).float(), binary)
    reference = dataset.images(dataset.sample_factors(N_REFERENCE, rng)).to(device)
    real = dataset.images(dataset.sample_factors(N_SAMPLES, rng)).to(device)
    other_real = dataset.images(dataset.sample_factors(N_SAMPLES, rng)).to(device)
    scores["nn_dist_fake"] = nn_distance(fakes, reference)
    scores["nn_dist_real"] = nn_distance(real, reference)
    scores["nn_cover_fake"] = nn_distance(real, fakes)
    scores["nn_cover_real"] = nn_distance(real, other_real)
    return scores


def shortcut_flags(scores: dict[str, float], pixels: int | None = None) -> list[str]:
    """Plain-language warnings for diagnostics that show a shortcut; ``pixels`` = values per image
    (for the realism margin; without it the margin is left out)."""
    flags = []
    chance = scores.get("h_acc_chance", 0.0)
    raw, degraded = scores.get("h_acc_raw"), scores.get("h_acc_degraded")
    if raw is not None and degraded is not None and raw - chance > 0.1:
        kept = (degraded - chance) / (raw - chance)
        if kept < H_SKILL_KEPT:
            flags.append(f"H reads sub-visible detail: axis accuracy {raw:.2f} on G's images, {degraded:.2f} "
                         f"degraded (chance {chance:.2f})")
    e_raw, e_deg = scores.get("e_mse_raw"), scores.get("e_mse_degraded")
    if e_raw is not None and e_deg is not None and e_deg > E_ERROR_RATIO * e_raw + E_ERROR_MARGIN:
        flags.append(f"E reads sub-visible detail: error {e_raw:.3f} on G's images, {e_deg:.3f} degraded")
    margin = REALISM_MARGIN * pixels if pixels else 0.0
    fake, real = scores.get("nn_dist_fake"), scores.get("nn_dist_real")
    if fake is not None and real is not None and fake > REALISM_RATIO * real + margin:
        flags.append(f"G's samples are unlike real images: {fake:.1f} from the nearest real image "
                     f"against {real:.1f} for real ones")
    cover, cover_real = scores.get("nn_cover_fake"), scores.get("nn_cover_real")
    if cover is not None and cover_real is not None and cover > REALISM_RATIO * cover_real + margin:
        flags.append(f"G does not draw much of the data: real images lie {cover:.1f} from the nearest sample "
                     f"against {cover_real:.1f} from the nearest other real image")
    return flags
