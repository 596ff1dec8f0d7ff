"""Write small files in DeepMind's formats, for tests and for trying the file source without the
real data. By default the images come from the procedural renderer.

Example:
    >>> y = DSpritesProcedural().sample_factors(100, np.random.default_rng(0))
    >>> write_dsprites_npz("/tmp/d/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", y)
    >>> get_dataset("dsprites", source="file", path="/tmp/d").images(y[:4])
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
