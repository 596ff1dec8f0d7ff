"""Reading .npz archives without trusting them: an ``.npy`` header is checked against the bytes
its member holds before anything is allocated (a header may claim 10^9 images in a 1 kB file).

Example:
    >>> check_npz_sizes(Path("codes.npz"), error=MetricInputError)
    >>> images = npz_array(Path("shapes.npz"), "images", DatasetError)   # memory-mapped if stored
    >>> arrays = read_npz(Path("codes.npz"), error=MetricInputError)   # {name: array}, nothing pickled
    >>> with zipfile.ZipFile(path) as zf, zf.open("imgs.npy") as f:
    ...     shape, fortran, dtype = npy_header(f, path, "imgs", ValueError)
"""
from __future__ import annotations

import math
import struct
import zipfile
from pathlib import Path
from typing import IO

import numpy as np


def npy_header(f: IO[bytes], path: Path, key: str, error: type[Exception]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the .npy stream ``f`` (positioned at its start)."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    if version not in readers:
        raise error(f"{path}: {key!r} uses .npy format version {version}, expected 1.0 or 2.0")
    return readers[version](f)


def check_npz_sizes(path: Path, error: type[Exception]) -> None:
    """``error`` unless every numeric .npy member holds at least the bytes its header claims."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename.removesuffix(".npy")
            with zf.open(info) as f:
                shape, _, dtype = npy_header(f, path, key, error)
            if dtype.hasobject:
                continue  # pickled objects: never read (allow_pickle=False), so never allocated
            claimed = math.prod(shape) * dtype.itemsize
            if claimed > info.file_size:
                raise error(f"{path}: {key!r}: its header claims shape {tuple(shape)} ({claimed:,} bytes), but the "
                            f"archive holds {info.file_size:,} bytes for it; the file is corrupt")


def _data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Where the bytes of the stored (uncompressed) member ``info`` start in the file."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"member {info.filename!r} has no local header")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len


def npz_array(path: Path, key: str, error: type[Exception], chunk_bytes: int = 64 << 20) -> np.ndarray:
    """The numeric array ``key`` of the .npz ``path`` without trusting its header: memory-mapped
    when the member is stored uncompressed (``np.savez``), else read chunk by chunk (``np.savez_compressed``).
    Call :func:`check_npz_sizes` first; a member shorter than its header says is ``error`` naming it."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(key + ".npy")
        with zf.open(info) as f:
            shape, fortran, dtype = npy_header(f, path, key, error)
            header_len = f.tell()
            if dtype.hasobject:
                raise error(f"{path}: {key!r} holds Python objects (dtype {dtype}); only numeric arrays are read")
            if fortran and len(shape) > 1:
                raise error(f"{path}: {key!r} is stored in Fortran order; store it C-ordered (np.ascontiguousarray)")
            nbytes = math.prod(shape) * dtype.itemsize
            if info.compress_type == zipfile.ZIP_STORED:
                offset = _data_offset(path, info) + header_len
                if offset + nbytes > path.stat().st_size:
                    raise error(f"{path}: {key!r} is truncated: the file ends before its {nbytes:,} bytes")
                if nbytes == 0:
                    return np.empty(shape, dtype)
                return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))
            out = np.empty(nbytes, dtype=np.uint8)
            done = 0
            while done < nbytes:
                buf = f.read(min(chunk_bytes, nbytes - done))
                if not buf:
                    raise error(f"{path}: {key!r} is truncated after {done:,} of {nbytes:,} bytes")
                out[done:done + len(buf)] = np.frombuffer(buf, dtype=np.uint8)
                done += len(buf)
            f.read()  # reaching the member's end makes zipfile check its CRC
    return out.view(dtype).reshape(shape)


def read_npz(path: Path, error: type[Exception]) -> dict[str, np.ndarray]:
    """Every array of the archive ``path``, loaded with ``allow_pickle=False`` after
    :func:`check_npz_sizes`; ``error`` names the file, and the array when one cannot be read (an
    object array, which only pickle could load)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    try:
        check_npz_sizes(path, error)
        with np.load(path, allow_pickle=False) as archive:
            arrays = {}
            for name in archive.files:
                try:
                    arrays[name] = archive[name]
                except ValueError as err:
                    if "allow_pickle" in str(err):
                        raise error(f"{path}: array {name!r} holds Python objects (dtype object), not numbers; "
                                    "save it as a numeric array") from None
                    raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, MemoryError) as err:
        if isinstance(err, error):
            raise
        raise error(f"{path}: not a readable .npz archive ({err})") from None
    return arrays
