"""dSprites: white square / ellipse / heart on black, 64x64, 1 channel, pixel values 0 or 1.

Factors (the file's constant colour column is dropped): shape 3, scale 6 (0.5..1.0),
orientation 40 (``linspace(0, 2pi, 40)``, both ends included), posX 32, posY 32 (``linspace(0, 1, 32)``).

Two sources with the same factors:
- :class:`DSpritesProcedural` draws the sprites on the fly (batched, on any torch device);
- :class:`DSpritesFile` reads ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``.

Example:
    >>> ds = DSpritesProcedural(device="cpu")
    >>> x = ds.images(np.array([[2, 5, 0, 16, 16]]))   # a big heart in the middle: [1, 1, 64, 64]
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch

from .base import DatasetError, GroundTruthDataset
from .spec import DatasetSpec
from ..npz import check_npz_sizes
from .files import READ_ERRORS, FileDataset, check_array, check_zip_magic, read_npz_bits, resolve_path

FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
SHAPE_NAMES = ("square", "ellipse", "heart")


def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.flags.writeable = False
    return arrays


class DSpritesFactors:
    name = "dsprites"
    num_channels = 1
    binary = True
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)
    # The values the DeepMind file stores in ``latents_values`` (shape is 1, 2, 3 there).
    factor_values = _frozen(
        np.array([1.0, 2.0, 3.0]),
        np.linspace(0.5, 1.0, 6),
        np.linspace(0.0, 2 * np.pi, 40),
        np.linspace(0.0, 1.0, 32),
        np.linspace(0.0, 1.0, 32),
    )


# Sprite geometry in pixels: at scale 1 a square has half-side UNIT; every shape fits in a circle of
# radius sqrt(2) * UNIT around its centre, so centres in [MARGIN, 64 - MARGIN] keep it in frame.
UNIT = 8.0
MARGIN = math.ceil(math.sqrt(2) * UNIT) + 1.0
HEART_CENTRE = 0.118  # shifts the heart curve's bounding box onto the origin


def _inside(shape: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Inside test in sprite units (x right, y up), each shape within radius sqrt(2)."""
    if shape == 0:
        return (x.abs() <= 1) & (y.abs() <= 1)
    if shape == 1:
        return (x / 1.4) ** 2 + (y / 0.7) ** 2 <= 1
    x, y = x * 1.05, y * 1.05 + HEART_CENTRE
    return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0


@functools.lru_cache(maxsize=8)
def _tables(device: torch.device, size: int) -> tuple[torch.Tensor, ...]:
    """Per-index cos, sin, scale (pixels) and centre (pixels) tables, and the pixel centres."""
    values = DSpritesFactors.factor_values
    # Reduce angles mod 2pi in float64 so that orientation 0 and 2pi give bit-identical images.
    angle = np.mod(values[2], 2 * np.pi)
    tables = (np.cos(angle), np.sin(angle), values[1] * UNIT, MARGIN + values[3] * (size - 2 * MARGIN), np.arange(size) + 0.5)
    return tuple(torch.tensor(t, dtype=torch.float32, device=device) for t in tables)


def render_dsprites(factors: np.ndarray, size: int = 64, device: str | torch.device = "cpu") -> torch.Tensor:
    """Binary sprites for factor indices [n, 5] (int64 numpy): float32 [n, 1, size, size] on ``device``.
    Which rows have which shape is found on the host, so drawing asks the device nothing back."""
    device = torch.device(device)
    shapes = factors[:, 0]
    factors = torch.from_numpy(factors).to(device, non_blocking=True)
    cos, sin, scale, centres, pix = _tables(device, size)
    cos, sin, scale = cos[factors[:, 2]], sin[factors[:, 2]], scale[factors[:, 1]]
    cx, cy = centres[factors[:, 3]], centres[factors[:, 4]]

    out = torch.zeros(len(factors), 1, size, size, device=device)
    for shape in range(3):
        rows = np.flatnonzero(shapes == shape)
        if rows.size == 0:
            continue
        idx = torch.from_numpy(rows).to(device, non_blocking=True)
        c, s, r = cos[idx, None, None], sin[idx, None, None], scale[idx, None, None]
        dx = pix[None, None, :] - cx[idx, None, None]  # columns, to the right
        dy = cy[idx, None, None] - pix[None, :, None]  # rows, upwards
        x = (c * dx + s * dy) / r  # rotate the pixel grid by -angle into sprite units
        y = (c * dy - s * dx) / r
        out[idx, 0] = _inside(shape, x, y).float()
    return out


class DSpritesProcedural(DSpritesFactors, GroundTruthDataset):
    """dSprites drawn on demand on ``device``; no file needed."""

    source = "procedural"

    def images(self, factors: np.ndarray | torch.Tensor) -> torch.Tensor:
        return render_dsprites(self.check_factors(factors), self.image_size, self.device)


class DSpritesFile(DSpritesFactors, FileDataset):
    """dSprites read from the DeepMind .npz (or a file in its format holding some of the rows).

    Needs the keys ``imgs`` (n, 64, 64) uint8 0/1, ``latents_classes`` (n, 6) int and
    ``latents_values`` (n, 6) float; ``metadata`` is not read (it needs unpickling).
    """

    def __init__(self, path: str | Path | None = None, device: str | torch.device = "cpu"):
        super().__init__(resolve_path(path, FILENAME, self.name), device)
        try:
            check_zip_magic(self.path)
            check_npz_sizes(self.path, DatasetError)  # a header may claim more than the file holds
            with np.load(self.path, allow_pickle=False) as npz:
                missing = [k for k in ("imgs", "latents_classes", "latents_values") if k not in npz.files]
                if missing:
                    raise DatasetError(f"{self.path}: missing key(s) {missing}; found {sorted(npz.files)}")
                classes = check_array(self.path, "latents_classes", npz["latents_classes"], (None, 6), "i")
                values = check_array(self.path, "latents_values", npz["latents_values"], (None, 6), "f")
            self._bits = read_npz_bits(self.path, "imgs", (self.image_size, self.image_size))
        except DatasetError:
            raise
        except READ_ERRORS as e:
            raise DatasetError(f"{self.path}: not a readable dSprites .npz, truncated or corrupt ({type(e).__name__}: {e})") from None
        if not (len(classes) == len(values) == len(self._bits)):
            raise DatasetError(
                f"{self.path}: imgs, latents_classes and latents_values have different lengths "
                f"({len(self._bits)}, {len(classes)}, {len(values)})"
            )
        if (classes[:, 0] != 0).any():
            raise DatasetError(f"{self.path}: latents_classes column 0 (color) must be 0 everywhere")
        factors = classes[:, 1:].astype(np.int64)
        for k, (name, size) in enumerate(zip(self.factor_names, self.factor_sizes)):
            col = factors[:, k]
            if col.min(initial=0) < 0 or col.max(initial=0) >= size:
                raise DatasetError(f"{self.path}: latents_classes column {k + 1} ({name}) is outside [0, {size})")
            if not np.allclose(values[:, k + 1], self.factor_values[k][col], atol=1e-4):
                raise DatasetError(f"{self.path}: latents_values column {k + 1} ({name}) does not match its classes")
        self._index_rows(factors)

    def _read_sorted(self, rows: np.ndarray) -> np.ndarray:
        pixels = np.unpackbits(self._bits[rows], axis=1)
        return pixels.reshape(len(rows), 1, self.image_size, self.image_size)


DATASET = DatasetSpec({"procedural": DSpritesProcedural, "file": DSpritesFile})  # the registered dataset
