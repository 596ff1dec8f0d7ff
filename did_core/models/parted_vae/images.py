"""PartedVAE's pictures: the latent traversal (``traversal.png``: a row per ``z`` and per ``u``
latent) and the swap grid (``swap.png``: ``z`` of one image decoded with ``u`` of another), which
:data:`REPORT_IMAGES` puts beside each traversal in the report.

Example:
    >>> write_images(enc, dec, dataset, cfg, [0], torch.device("cpu"), Path("runs/x"))
    {'traversal': 'runs/x/traversal.png', 'swap': 'runs/x/swap.png'}
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...images import save_image_grid
from ..report import ReportImages, TrialImage
from .scores import encode_hard, swap_decode

SWAP = "swap.png"
N_SWAP_GRID = 6  # rows (u sources) and columns (z sources) of the swap grid
SWAP_STREAM = 0x5A4
# the report's image gallery shows each trial's swap grid after its traversal
REPORT_IMAGES = ReportImages(extra=(TrialImage(
    SWAP, "swap grid",
    explain=("A swap grid (PartedVAE) decodes the class-independent z of the top row's image with the class-related "
             "u of the left column's image: each row should draw the left image's class (shape) in the pose, size "
             "and place of the image above.")),))


@torch.no_grad()
def traversal(enc, dec, dataset, cfg, device: torch.device) -> tuple[torch.Tensor, list[str]]:
    """``[z_dim + V*u_dim, steps, C, 64, 64]`` and the row labels: row ``i`` sweeps one latent of
    ``[mu_z, mu_u]`` over ``[-r, r]`` around the code of one real image (drawn from the seed)."""
    y = dataset.sample_factors(1, np.random.default_rng(cfg.seed))
    base = encode_hard(enc, dataset.images(y).to(device), cfg).code().float()  # [1, d]
    d = base.shape[1]
    values = torch.linspace(-cfg.traversal_range, cfg.traversal_range, cfg.traversal_steps, device=device)
    codes = base.repeat(d, cfg.traversal_steps, 1)
    dims = torch.arange(d, device=device)
    codes[dims, :, dims] = values
    x = torch.sigmoid(dec(codes.reshape(-1, d)).float())
    labels = [f"z{i}" for i in range(cfg.z_dim)] + [f"u{i}" for i in range(d - cfg.z_dim)]
    return x.reshape(d, cfg.traversal_steps, *x.shape[1:]), labels


@torch.no_grad()
def swap_grid(enc, dec, dataset, cfg, class_columns: list[int], device: torch.device) -> list[list]:
    """Rows of images: the first row the ``z`` sources ``j`` (after an empty corner), then per ``u``
    source ``i`` its image and ``[z_j, u_i]`` decoded for every ``j``. The sources cycle through
    the classes of the first class factor."""
    rng = np.random.default_rng([cfg.seed, SWAP_STREAM])
    n, c0 = N_SWAP_GRID, class_columns[0]
    y_i, y_j = dataset.sample_factors(n, rng), dataset.sample_factors(n, rng)
    y_i[:, c0] = np.arange(n) % dataset.factor_sizes[c0]
    y_j[:, c0] = (np.arange(n) + 1) % dataset.factor_sizes[c0]
    x_i, x_j = dataset.images(y_i).to(device), dataset.images(y_j).to(device)
    rows = [[None, *x_j.float().cpu()]]
    for a in range(n):
        decoded = swap_decode(enc, dec, x_i[a:a + 1].expand(n, *x_i.shape[1:]), x_j, cfg)
        rows.append([x_i[a].float().cpu(), *decoded.cpu()])
    return rows


def write_images(enc, dec, dataset, cfg, class_columns: list[int], device: torch.device,
                 out_dir: Path) -> dict[str, str]:
    """Write ``traversal.png`` and ``swap.png`` into ``out_dir``; name -> path."""
    from ...training import TRAVERSAL

    images, labels = traversal(enc, dec, dataset, cfg, device)
    paths = {"traversal": save_image_grid(images.cpu(), out_dir / TRAVERSAL, row_labels=labels),
             "swap": save_image_grid(swap_grid(enc, dec, dataset, cfg, class_columns, device), out_dir / SWAP)}
    return {k: str(v) for k, v in paths.items()}
