"""Save rows of images as one PNG grid (latent traversals, dataset previews, reconstructions).

Images are float in [0, 1] with 1 or 3 channels, [C, H, W] each. Rows may have different
lengths; a ``None`` cell stays empty. Grey images are drawn in colour when any row has colour.

Example:
    >>> x = torch.rand(5, 8, 3, 64, 64)                       # 5 rows of 8 images
    >>> save_image_grid(x, "grid.png", row_labels=[f"z{i}" for i in range(5)], zoom=2)
    >>> save_image_grid([imgs_a, imgs_b[:3]], "ragged.png")   # rows: [n, C, H, W] tensors or lists
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

def _as_hwc(image) -> np.ndarray:
    a = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"save_image_grid: each image must be [C, H, W] with C in (1, 3), got shape {list(a.shape)}")
    return np.clip(np.nan_to_num(a), 0.0, 1.0).transpose(1, 2, 0)


def save_image_grid(
    rows: torch.Tensor | np.ndarray | Sequence,
    path: str | Path,
    *,
    padding: int = 2,
    separator: float = 0.5,
    zoom: int = 1,
    row_labels: Sequence[str] | None = None,
) -> Path:
    """Write ``rows`` as a PNG grid and return its path.

    ``rows``: a tensor/array [R, N, C, H, W] (R rows of N images), [N, C, H, W] (one row), or a
    list of rows, each [n, C, H, W] or a list of [C, H, W] images / ``None``. Cells are separated
    by ``padding`` pixels of grey level ``separator``; ``zoom`` enlarges every image by pixel
    repetition; ``row_labels`` are written in a column to the left.
    """
    if isinstance(rows, (torch.Tensor, np.ndarray)):
        rows = [rows] if rows.ndim == 4 else list(rows)
    grid = [[None if im is None else _as_hwc(im) for im in row] for row in rows]
    cells = [im for row in grid for im in row if im is not None]
    if not cells:
        raise ValueError("save_image_grid: no images to save")
    h, w = cells[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in cells):
        raise ValueError("save_image_grid: all images must have the same height and width")
    colour = any(im.shape[2] == 3 for im in cells)
    h, w = h * zoom, w * zoom
    label_w = 0 if not row_labels else 7 * max(len(s) for s in row_labels) + 2 * padding
    n_cols = max(len(row) for row in grid)
    canvas = np.full(
        (padding + len(grid) * (h + padding), label_w + padding + n_cols * (w + padding), 3), separator, np.float32
    )
    for r, row in enumerate(grid):
        for c, im in enumerate(row):
            if im is None:
                continue
            im = np.repeat(np.repeat(im, zoom, 0), zoom, 1)
            y, x = padding + r * (h + padding), label_w + padding + c * (w + padding)
            canvas[y : y + h, x : x + w] = im  # a grey [h, w, 1] image fills all three channels
    pixels = (canvas * 255 + 0.5).astype(np.uint8)
    picture = Image.fromarray(pixels if colour else pixels[..., 0])
    if row_labels:
        draw = ImageDraw.Draw(picture)
        for r, text in enumerate(row_labels):
            draw.text((padding, padding + r * (h + padding) + h // 2 - 5), str(text), fill=255 if not colour else (255, 255, 255))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, format="PNG")
    return path
