"""Write small files in DeepMind's formats, for tests and for trying the file source without the
real data (by default the images come from the procedural renderer), and files of the generic
factor-labelled format (``dataset: file:PATH``, :mod:`did_core.data.factor_file`).

Example:
    >>> y = DSpritesProcedural().sample_factors(100, np.random.default_rng(0))
    >>> write_dsprites_npz("/tmp/d/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", y)
    >>> get_dataset("dsprites", source="file", path="/tmp/d").images(y[:4])
    >>> write_factor_file("/tmp/toy.npz", images, ["shape", "size"], [3, 4])   # images: the full grid
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .dsprites import DSpritesFactors, DSpritesProcedural
from .shapes3d import Shapes3DFactors, Shapes3DProcedural


def _values(factor_values, factors: np.ndarray) -> np.ndarray:
    return np.stack([v[factors[:, k]] for k, v in enumerate(factor_values)], axis=1).astype(np.float64)


def write_dsprites_npz(path: str | Path, factors: np.ndarray, images: np.ndarray | None = None, compressed: bool = True) -> Path:
    """An .npz like ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` holding the rows ``factors`` [n, 5].

    ``images``: uint8 [n, 64, 64] 0/1; default the procedural renders.
    """
    factors = np.asarray(factors, dtype=np.int64)
    if images is None:
        images = DSpritesProcedural().images(factors)[:, 0].numpy().astype(np.uint8)
    n = len(factors)
    names = ("color",) + DSpritesFactors.factor_names
    metadata = {
        "date": "April 2017",
        "description": "Disentanglement test Sprites dataset (small file written by did_core.data.writers)",
        "version": 1,
        "latents_names": names,
        "latents_possible_values": dict(zip(names, (np.array([1.0]),) + DSpritesFactors.factor_values)),
        "latents_sizes": np.array((1,) + DSpritesFactors.factor_sizes),
        "author": "did_core",
        "title": "dSprites dataset",
    }
    arrays = dict(
        imgs=np.asarray(images, dtype=np.uint8),
        latents_classes=np.concatenate([np.zeros((n, 1), np.int64), factors], axis=1),
        latents_values=np.concatenate([np.ones((n, 1)), _values(DSpritesFactors.factor_values, factors)], axis=1),
        metadata=np.array(metadata, dtype=object),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def write_shapes3d_h5(path: str | Path, factors: np.ndarray, images: np.ndarray | None = None) -> Path:
    """An .h5 like ``3dshapes.h5`` holding the rows ``factors`` [n, 6] (labels are factor values).

    ``images``: uint8 [n, 64, 64, 3]; default the procedural renders.
    """
    factors = np.asarray(factors, dtype=np.int64)
    if images is None:
        x = Shapes3DProcedural().images(factors).permute(0, 2, 3, 1).numpy()
        images = np.round(x * 255).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.asarray(images, dtype=np.uint8))
        f.create_dataset("labels", data=_values(Shapes3DFactors.factor_values, factors))
    return path


def write_factor_file(path: str | Path, images: np.ndarray, factor_names: list[str], factor_sizes: list[int],
                      factors: np.ndarray | None = None, names_beside: bool = False, compressed: bool = False) -> Path:
    """A file for ``dataset: file:PATH``: ``.npz`` or ``.h5`` by its suffix.

    ``images``: uint8 [N, S, S, C]; ``factors``: [N, K] indices, or None when the images are the full
    grid in C order. ``names_beside``: the factor names and sizes go into the YAML beside the file
    instead of into it. ``compressed``: an .npz with ``np.savez_compressed`` (read into memory).
    """
    import yaml

    from .factor_file import FACTORS, IMAGES, NAMES, SIZES, sidecar

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {IMAGES: np.asarray(images, dtype=np.uint8)}
    if factors is not None:
        arrays[FACTORS] = np.asarray(factors, dtype=np.int64)
    if names_beside:
        sidecar(path).write_text(yaml.safe_dump({NAMES: list(factor_names), SIZES: [int(s) for s in factor_sizes]}))
    else:
        arrays[NAMES] = np.array(list(factor_names))
        arrays[SIZES] = np.array(factor_sizes, dtype=np.int64)
    if path.suffix == ".npz":
        (np.savez_compressed if compressed else np.savez)(path, **arrays)
    else:
        with h5py.File(path, "w") as f:
            for key, array in arrays.items():
                f.create_dataset(key, data=array.astype("S") if array.dtype.kind == "U" else array)
    return path
