"""What the file sources share: finding the file, reading .npz/.h5 safely, mapping rows to factors.

A file may hold the full grid (the DeepMind files) or only some combinations (a small test file).
Its rows are placed on the grid by their factor classes/values, so row order does not matter;
sampling draws only combinations that are present, and asking for the image of an absent one
raises :class:`DatasetError`.

Example:
    >>> path = resolve_path(None, "3dshapes.h5", "shapes3d")   # looks in $DID_DATA_DIR
"""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ..npz import check_npz_sizes, npy_header
from .base import DatasetError, GroundTruthDataset

DATA_DIR_ENV = "DID_DATA_DIR"
# What reading a damaged file can raise; each is turned into one DatasetError naming the file.
READ_ERRORS = (OSError, EOFError, KeyError, ValueError, MemoryError, zipfile.BadZipFile, zlib.error)


def resolve_path(path: str | os.PathLike | None, filename: str, dataset: str) -> Path:
    """The data file: ``path`` itself, ``path/filename`` for a folder, or ``$DID_DATA_DIR/filename``."""
    if path is None:
        path = os.environ.get(DATA_DIR_ENV)
        if not path:
            raise DatasetError(
                f"{dataset}: no file given; pass path= (the file {filename} or its folder) "
                f"or set {DATA_DIR_ENV} to the folder that holds {filename}"
            )
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / filename
    if not p.is_file():
        raise DatasetError(f"{p}: file not found ({dataset} expects {filename})")
    return p


def check_zip_magic(path: Path) -> None:
    """DatasetError unless ``path`` starts like a zip (.npz) file; numpy would try to unpickle it."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        raise DatasetError(f"{path}: not an .npz file (a zip archive starts with b'PK\\x03\\x04', this one with {head!r})")


def read_npz_bits(path: Path, key: str, image_shape: tuple[int, int], chunk_rows: int = 16384) -> np.ndarray:
    """Read a 0/1 uint8 image array from an .npz member chunk by chunk into packed bits.

    Returns uint8 [n, H*W/8]; ``np.unpackbits(a[rows], axis=1)`` gives the pixels back. The full
    dSprites array (2.9 GB as uint8) is never held in memory: packed it takes 370 MB.
    """
    check_npz_sizes(path, DatasetError)  # before allocating what a header claims
    with zipfile.ZipFile(path) as zf, zf.open(key + ".npy") as f:
        shape, fortran, dtype = npy_header(f, path, key, DatasetError)
        if len(shape) != 3 or tuple(shape[1:]) != image_shape:
            raise DatasetError(f"{path}: {key!r} has shape {shape}, expected (n, {image_shape[0]}, {image_shape[1]})")
        if dtype != np.uint8 or fortran:
            raise DatasetError(f"{path}: {key!r} must be a C-ordered uint8 array, got {dtype}")
        row_bytes = image_shape[0] * image_shape[1]
        bits = np.empty((shape[0], row_bytes // 8), dtype=np.uint8)
        for start in range(0, shape[0], chunk_rows):
            rows = min(chunk_rows, shape[0] - start)
            buf = f.read(rows * row_bytes)
            if len(buf) != rows * row_bytes:
                raise DatasetError(f"{path}: {key!r} is truncated after {start + len(buf) // row_bytes} of {shape[0]} images")
            pixels = np.frombuffer(buf, dtype=np.uint8).reshape(rows, row_bytes)
            if pixels.max(initial=0) > 1:
                raise DatasetError(f"{path}: {key!r} holds pixel value {pixels.max()}, expected only 0 and 1")
            bits[start : start + rows] = np.packbits(pixels, axis=1)
        f.read()  # reaching the member's end makes zipfile check its CRC
    return bits


def check_array(path: Path, key: str, array: np.ndarray, shape: tuple, kind: str) -> np.ndarray:
    """``array`` if it has ``shape`` (None = any size) and dtype kind (``"i"``, ``"f"``, ``"u"``), else DatasetError."""
    ok_shape = array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape))
    if not ok_shape:
        want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        raise DatasetError(f"{path}: {key!r} has shape {array.shape}, expected {want}")
    kinds = {"i": "iu", "f": "f", "u": "u"}[kind]
    if array.dtype.kind not in kinds:
        raise DatasetError(f"{path}: {key!r} has dtype {array.dtype}, expected {dict(i='integers', f='floats', u='uint8')[kind]}")
    return array


class FileDataset(GroundTruthDataset):
    """A dataset read from a file whose rows are placed on the factor grid by ``row_factors``.

    Subclasses call ``_index_rows(row_factors)`` and implement ``_read_sorted(rows)`` (uint8
    numpy [u, C, 64, 64] for increasing file rows); ``pixel_max`` is the stored value of 1.0.
    """

    source = "file"
    pixel_max: float = 1.0  # the stored value of a full-intensity pixel

    def __init__(self, path: Path, device: str | torch.device = "cpu"):
        super().__init__(device)
        self.path = Path(path)

    def _index_rows(self, row_factors: np.ndarray) -> None:
        flat = self.flat_index(row_factors)
        self._row_of = np.full(int(np.prod(self.factor_sizes)), -1, dtype=np.int64)
        self._row_of[flat] = np.arange(len(flat))
        if (self._row_of >= 0).sum() != len(flat):
            first = int(np.flatnonzero(np.bincount(flat) > 1)[0])
            rows = np.flatnonzero(flat == first)[:2].tolist()
            raise DatasetError(f"{self.path}: rows {rows} have the same factors {self._describe(row_factors[rows[0]])}")
        self.num_rows = len(flat)
        self.complete = self.num_rows == len(self._row_of)
        self._present = None if self.complete else row_factors.astype(np.int64)

    def _describe(self, y: np.ndarray) -> str:
        return "{" + ", ".join(f"{n}: {int(v)}" for n, v in zip(self.factor_names, y)) + "}"

    def contains(self, factors: np.ndarray | torch.Tensor) -> np.ndarray:
        return self._row_of[self.flat_index(self.check_factors(factors))] >= 0

    def rows(self, factors: np.ndarray | torch.Tensor) -> np.ndarray:
        """File rows of ``factors``; DatasetError for a combination the file does not hold."""
        y = self.check_factors(factors)
        rows = self._row_of[self.flat_index(y)]
        if (rows < 0).any():
            missing = y[np.flatnonzero(rows < 0)[0]]
            raise DatasetError(
                f"{self.path}: holds no image for factors {self._describe(missing)} "
                f"(the file has {self.num_rows} of {len(self._row_of)} combinations)"
            )
        return rows

    def images(self, factors: np.ndarray | torch.Tensor) -> torch.Tensor:
        unique, inverse = np.unique(self.rows(factors), return_inverse=True)
        if len(unique) == 0:
            return torch.zeros(0, self.num_channels, self.image_size, self.image_size, device=self.device)
        try:
            pixels = self._read_sorted(unique)
        except DatasetError:
            raise
        except READ_ERRORS as e:
            raise DatasetError(f"{self.path}: reading images failed ({type(e).__name__}: {e})") from None
        x = torch.from_numpy(pixels[inverse]).to(self.device)
        return x.float().div_(self.pixel_max)

    def _read_sorted(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # Sampling: the base class draws from the full grid; a partial file draws among its rows.
    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.complete:
            return super().sample_factors(n, rng)
        return self._present[rng.integers(0, len(self._present), size=n)].copy()

    def sample_fixed_factor(self, factor: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        if self.complete:
            return super().sample_fixed_factor(factor, batch_size, rng)
        value = self._present[rng.integers(0, len(self._present)), factor]
        same = self._present[self._present[:, factor] == value]
        return same[rng.integers(0, len(same), size=batch_size)].copy()

    def sample_pairs_with_fixed_factor(
        self, factor: int, batch_size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.complete:
            return super().sample_pairs_with_fixed_factor(factor, batch_size, rng)
        y1 = self.sample_factors(batch_size, rng)
        order = np.argsort(self._present[:, factor], kind="stable")
        values = self._present[order, factor]
        lo = np.searchsorted(values, y1[:, factor], side="left")
        hi = np.searchsorted(values, y1[:, factor], side="right")
        pick = lo + (rng.random(batch_size) * (hi - lo)).astype(np.int64)
        return y1, self._present[order[pick]].copy()
