"""A ground-truth dataset from any file of images and their factor indices: ``dataset: file:PATH``
(MPI3D, Cars3D, SmallNORB, a lab's renders), or a registered subclass with its own file.

The file, ``.npz`` or ``.h5`` / ``.hdf5``, holds

- ``images``: uint8 [N, S, S, C], C = 1 or 3, 0 black and 255 full intensity;
- ``factors``: integer [N, K], each image's factor indices (row order free, part of the grid is
  allowed); without it the rows are the full factor grid in C order (the last factor fastest, as
  dSprites is stored), so N must be the grid's size;
- ``factor_names`` (K strings) and ``factor_sizes`` (K integers), or the same two keys in a YAML
  file beside it, the data file's name with ``.yaml`` (``shapes.npz`` -> ``shapes.yaml``).

Images are read when a batch asks for them: an uncompressed ``.npz`` (``np.savez``) is memory-mapped,
an ``.h5`` read per batch, a compressed ``.npz`` decompressed into memory once (store large data
uncompressed or as ``.h5``). Each malformed, truncated or inconsistent file is one
:class:`DatasetError` naming the file and the array.

Example:
    >>> write_factor_file("toy.npz", images, factor_names=["shape", "size"], factor_sizes=[3, 4])
    >>> ds = get_dataset("file:toy.npz")            # or FactorFileDataset("toy.npz")
    >>> ds.factor_names, ds.factor_sizes
    (('shape', 'size'), (3, 4))
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
import torch
import yaml

from ..npz import check_npz_sizes, npz_array
from .base import DatasetError
from .files import READ_ERRORS, FileDataset, check_zip_magic

FILE_PREFIX = "file:"
SUFFIXES = (".npz", ".h5", ".hdf5")
IMAGES, FACTORS, NAMES, SIZES = "images", "factors", "factor_names", "factor_sizes"
MAX_SIDECAR_BYTES = 64 * 1024
# The factor grid a file may declare: at most GRID_PER_IMAGE points per image it holds (or GRID_FLOOR),
# since each process indexes the whole grid (8 bytes a point): a small file cannot claim 10^12 points.
GRID_PER_IMAGE, GRID_FLOOR = 1000, 1 << 20
# A compressed .npz is decompressed into each process's memory: only up to this size (store larger
# data uncompressed, which is memory-mapped and shared, or as .h5, read per batch).
MAX_COMPRESSED_BYTES = 256 << 20
# An .h5 array may declare at most this many times the bytes it stores (chunks never written read
# as zeros: a 2 KB file can declare 10^9 images).
MAX_H5_INFLATION = 1000


def sidecar(path: Path) -> Path:
    """The YAML beside a data file that may give its factor names and sizes."""
    return Path(path).with_suffix(".yaml")


class FactorFileDataset(FileDataset):
    """The dataset of one factor-labelled file (see the module docstring). A subclass may set
    ``name`` and ``default_file`` (a plugin's packaged data) and be registered as a dataset."""

    name: str = ""
    default_file: ClassVar[Path | None] = None
    pixel_max = 255.0

    def __init__(self, path: str | Path | None = None, device: str | torch.device = "cpu"):
        super().__init__(self.resolve(path), device)
        self.name = type(self).name or FILE_PREFIX + str(self.path)
        self._h5 = None
        self.factor_names, self.factor_sizes = self.factors_of(self.path)
        self.factor_values = tuple(np.arange(s, dtype=float) for s in self.factor_sizes)
        try:
            images, factors = self._read_npz() if self.path.suffix == ".npz" else self._read_h5()
        except DatasetError:
            self.close()
            raise
        except READ_ERRORS as e:
            self.close()
            raise DatasetError(f"{self.path}: not a readable {self.path.suffix} file, truncated or corrupt "
                               f"({type(e).__name__}: {e})") from None
        self._images = images
        n, s, _, c = images.shape
        self.image_size, self.num_channels = s, c
        try:
            self._check_shape(n, factors)
            self._index_rows(self._check_factors(factors, n))
        except DatasetError:
            self.close()
            raise

    # ---- the file ---------------------------------------------------------------------------------
    @classmethod
    def resolve(cls, path: str | Path | None) -> Path:
        """The data file: ``path``, else the class's ``default_file``; DatasetError if there is none."""
        if path is None:
            path = cls.default_file
        if path is None:
            raise DatasetError(f"{cls.__name__}: no file given (write `dataset: file:PATH`)")
        p = Path(path).expanduser()
        if p.suffix.lower() not in SUFFIXES:
            raise DatasetError(f"{p}: a factor-labelled dataset is an .npz or .h5 file, not {p.suffix or 'a file without suffix'!r}")
        if not p.is_file():
            raise DatasetError(f"{p}: file not found")
        return p

    @classmethod
    def factors_of(cls, path: str | Path | None = None) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """``(factor_names, factor_sizes)`` from the file or the YAML beside it, without reading images."""
        p = cls.resolve(path)
        try:
            stored = _npz_names(p) if p.suffix == ".npz" else _h5_names(p)
        except DatasetError:
            raise
        except READ_ERRORS as e:
            raise DatasetError(f"{p}: not a readable {p.suffix} file, truncated or corrupt ({type(e).__name__}: {e})") from None
        beside = _sidecar_names(sidecar(p))
        if stored and beside and stored != beside:
            raise DatasetError(f"{p}: {NAMES!r} / {SIZES!r} in the file {stored} and in {sidecar(p)} {beside} differ")
        if not (stored or beside):
            raise DatasetError(f"{p}: no factor names and sizes: store the arrays {NAMES!r} and {SIZES!r} in the "
                               f"file, or write them into {sidecar(p)}")
        return stored or beside

    def _read_npz(self) -> tuple[np.ndarray, np.ndarray | None]:
        check_zip_magic(self.path)
        check_npz_sizes(self.path, DatasetError)  # a header may claim more than the file holds
        with zipfile.ZipFile(self.path) as zf:
            members = {n.removesuffix(".npy") for n in zf.namelist()}
        if IMAGES not in members:
            raise DatasetError(f"{self.path}: no array {IMAGES!r}; found {sorted(members)}")
        with zipfile.ZipFile(self.path) as zf:
            big = [(i.filename, i.file_size) for i in zf.infolist()
                   if i.compress_type != zipfile.ZIP_STORED and i.file_size > MAX_COMPRESSED_BYTES]
        if big:
            raise DatasetError(f"{self.path}: {big[0][0].removesuffix('.npy')!r} is compressed and inflates to "
                               f"{big[0][1]:,} bytes, which every trial process would decompress into its memory "
                               f"(at most {MAX_COMPRESSED_BYTES >> 20} MiB); store it uncompressed (np.savez, "
                               "memory-mapped and shared) or as .h5")
        images = self._check_images(npz_array(self.path, IMAGES, DatasetError))
        factors = npz_array(self.path, FACTORS, DatasetError) if FACTORS in members else None
        return images, None if factors is None else np.asarray(factors)

    def _read_h5(self) -> tuple[Any, np.ndarray | None]:
        h5 = self._open()
        if not isinstance(h5.get(IMAGES), h5py.Dataset):
            raise DatasetError(f"{self.path}: no dataset {IMAGES!r}; found {sorted(h5.keys())}")
        images = self._check_images(h5[IMAGES])
        factors = h5.get(FACTORS)
        if factors is not None and not isinstance(factors, h5py.Dataset):
            raise DatasetError(f"{self.path}: {FACTORS!r} is a group, not an array")
        for key, array in ((IMAGES, images), (FACTORS, factors)):
            if array is not None:
                _check_h5_stored(self.path, key, array)
        return images, None if factors is None else factors[()]

    def _check_images(self, images) -> Any:
        shape, dtype = tuple(images.shape), images.dtype
        if dtype != np.uint8:
            raise DatasetError(f"{self.path}: {IMAGES!r} has dtype {dtype}, expected uint8 (0-255)")
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] not in (1, 3):
            raise DatasetError(f"{self.path}: {IMAGES!r} has shape {shape}, expected (N, S, S, C): square images "
                               "with 1 or 3 channels last")
        return images

    def _check_shape(self, n: int, factors: np.ndarray | None) -> None:
        """The file's shape makes a dataset to learn from, within what it holds: two images or
        more, every factor with two values or more, a factor grid of at most GRID_PER_IMAGE points
        per image (each trial indexes the whole grid)."""
        if n < 2:
            raise DatasetError(f"{self.path}: {IMAGES!r} holds {n} image{'s' if n != 1 else ''}; a dataset needs at "
                               "least two")
        for name, size in zip(self.factor_names, self.factor_sizes):
            if size < 2:
                raise DatasetError(f"{self.path}: factor {name!r} has {size} value; every factor needs at least two "
                                   "(leave out one that never varies)")
        grid = int(np.prod(self.factor_sizes, dtype=object))
        if grid > max(GRID_PER_IMAGE * n, GRID_FLOOR):
            raise DatasetError(f"{self.path}: the factor grid {' x '.join(map(str, self.factor_sizes))} has {grid:,} "
                               f"points for {n:,} images (at most {GRID_PER_IMAGE} per image, or {GRID_FLOOR:,}); "
                               f"check {SIZES!r}")
        if factors is not None and factors.ndim == 2 and factors.shape[0] == n and factors.dtype.kind in "iu":
            for k, name in enumerate(self.factor_names[:factors.shape[1]]):
                if len(np.unique(factors[:, k])) < 2:
                    raise DatasetError(f"{self.path}: factor {name!r} takes one value in {FACTORS!r} "
                                       f"({int(factors[0, k])}); every factor needs at least two")

    def _check_factors(self, factors: np.ndarray | None, n: int) -> np.ndarray:
        """The factor index of every row: ``factors`` checked, or the full grid in C order."""
        sizes = self.factor_sizes
        grid = int(np.prod(sizes))
        if factors is None:
            if n != grid:
                raise DatasetError(f"{self.path}: {IMAGES!r} holds {n} images, but the factor grid "
                                   f"{' x '.join(map(str, sizes))} has {grid}: store the full grid in C order, "
                                   f"or each image's indices in {FACTORS!r}")
            return np.stack(np.unravel_index(np.arange(n), sizes), axis=1).astype(np.int64)
        if factors.dtype.kind not in "iu":
            raise DatasetError(f"{self.path}: {FACTORS!r} has dtype {factors.dtype}, expected integer indices")
        if factors.shape != (n, len(sizes)):
            raise DatasetError(f"{self.path}: {FACTORS!r} has shape {factors.shape}, expected ({n}, {len(sizes)}): "
                               f"one row per image of {IMAGES!r}, one column per factor {list(self.factor_names)}")
        factors = factors.astype(np.int64)
        for k, (name, size) in enumerate(zip(self.factor_names, sizes)):
            bad = np.flatnonzero((factors[:, k] < 0) | (factors[:, k] >= size))
            if len(bad):
                raise DatasetError(f"{self.path}: {FACTORS!r}[{bad[0]}, {k}] ({name}) = {factors[bad[0], k]} is "
                                   f"outside [0, {size})")
        return factors

    # ---- reading ----------------------------------------------------------------------------------
    def _read_sorted(self, rows: np.ndarray) -> np.ndarray:
        images = self._open()[IMAGES] if self._images is None else self._images
        return np.ascontiguousarray(np.asarray(images[rows]).transpose(0, 3, 1, 2))

    def _open(self) -> h5py.File:
        if self._h5 is None:
            self._h5 = h5py.File(self.path, "r")
        return self._h5

    def __getstate__(self):  # an open h5py file cannot be pickled: reopen after unpickling
        state = {**self.__dict__, "_h5": None}
        if self.path.suffix != ".npz":
            state["_images"] = None
        return state

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None


def _check_h5_stored(path: Path, key: str, array: h5py.Dataset) -> None:
    """DatasetError when ``array`` declares far more bytes than the file stores for it."""
    claimed = int(np.prod(array.shape, dtype=object)) * array.dtype.itemsize
    stored = array.id.get_storage_size()
    if claimed > MAX_H5_INFLATION * stored + (1 << 20):
        raise DatasetError(f"{path}: {key!r} declares shape {tuple(array.shape)} ({claimed:,} bytes), but the file "
                           f"stores {stored:,} bytes for it; the file is corrupt or not written out")


def _names_sizes(where: str, names: Any, sizes: Any) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Checked ``(names, sizes)``; ``where`` names the file (and the arrays) in errors."""
    names = [n.decode() if isinstance(n, bytes) else str(n) if isinstance(n, str) else n
             for n in list(np.asarray(names).ravel())]
    if not all(isinstance(n, str) and n for n in names):
        raise DatasetError(f"{where}: {NAMES!r} must be non-empty strings, got {names}")
    if len(set(names)) != len(names):
        raise DatasetError(f"{where}: {NAMES!r} has a name twice: {names}")
    array = np.asarray(sizes)
    if array.ndim != 1 or array.dtype.kind not in "iu" or len(array) != len(names) or (array < 1).any():
        raise DatasetError(f"{where}: {SIZES!r} must be {len(names)} integers >= 1 (one per name in {NAMES!r}), "
                           f"got {array.tolist()}")
    return tuple(names), tuple(int(s) for s in array)


def _npz_names(path: Path) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    check_zip_magic(path)
    check_npz_sizes(path, DatasetError)
    with np.load(path, allow_pickle=False) as npz:
        have = [k for k in (NAMES, SIZES) if k in npz.files]
        if not have:
            return None
        if len(have) == 1:
            raise DatasetError(f"{path}: has {have[0]!r} without {({NAMES, SIZES} - set(have)).pop()!r}")
        try:
            names, sizes = npz[NAMES], npz[SIZES]
        except ValueError as e:  # an object array needs unpickling, which is never done
            raise DatasetError(f"{path}: {NAMES!r} / {SIZES!r} must be plain arrays of strings and integers ({e})") from None
    return _names_sizes(str(path), names, sizes)


def _h5_names(path: Path) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    with h5py.File(path, "r") as h5:
        have = [k for k in (NAMES, SIZES) if isinstance(h5.get(k), h5py.Dataset)]
        if not have:
            return None
        if len(have) == 1:
            raise DatasetError(f"{path}: has {have[0]!r} without {({NAMES, SIZES} - set(have)).pop()!r}")
        return _names_sizes(str(path), h5[NAMES][()], h5[SIZES][()])


def _sidecar_names(path: Path) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_SIDECAR_BYTES:
        raise DatasetError(f"{path}: larger than {MAX_SIDECAR_BYTES // 1024} KiB; it only names the factors")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict) or set(data) != {NAMES, SIZES}:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DatasetError(f"{path}: must hold exactly the keys {NAMES!r} and {SIZES!r} (lists), found {found}")
    if not isinstance(data[SIZES], list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in data[SIZES]):
        raise DatasetError(f"{path}: {SIZES!r} must be a list of integers, got {data[SIZES]!r}")
    if not isinstance(data[NAMES], list):
        raise DatasetError(f"{path}: {NAMES!r} must be a list of names, got {data[NAMES]!r}")
    return _names_sizes(str(path), np.array(data[NAMES], dtype=object), np.array(data[SIZES], dtype=np.int64))
