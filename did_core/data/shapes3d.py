"""3DShapes: an object in a room, 64x64 RGB.

Factors, in file order: floor_hue 10, wall_hue 10, object_hue 10 (hues 0.0, 0.1, ..., 0.9),
scale 8 (0.75..1.25), shape 4 (cube, cylinder, sphere, capsule), orientation 15 (-30..30 degrees).

Two sources with the same factors:
- :class:`Shapes3DProcedural` ray-casts the room on the fly (batched, on any torch device);
- :class:`Shapes3DFile` reads DeepMind's ``3dshapes.h5`` (uint8 images, read per batch).

Example:
    >>> ds = Shapes3DProcedural()
    >>> x = ds.images(np.array([[0, 5, 3, 7, 2, 14]]))   # red floor, cyan wall, big sphere: [1, 3, 64, 64]
"""
from __future__ import annotations

import colorsys
from pathlib import Path

import h5py
import numpy as np
import torch

from .base import DatasetError, GroundTruthDataset
from .spec import DatasetSpec
from .dsprites import _frozen
from .files import READ_ERRORS, FileDataset, check_array, resolve_path
from .shapes3d_scene import render_layers

FILENAME = "3dshapes.h5"
SHAPE_NAMES = ("cube", "cylinder", "sphere", "capsule")
SATURATION = 0.8
GEOMETRY_CHUNK = 16  # scenes ray-cast at once: bounds the temporaries to about 0.1 GB


class Shapes3DFactors:
    name = "shapes3d"
    num_channels = 3
    factor_names = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    factor_sizes = (10, 10, 10, 8, 4, 15)
    # The values the DeepMind file stores in ``labels``.
    factor_values = _frozen(
        np.linspace(0.0, 0.9, 10),
        np.linspace(0.0, 0.9, 10),
        np.linspace(0.0, 0.9, 10),
        np.linspace(0.75, 1.25, 8),
        np.array([0.0, 1.0, 2.0, 3.0]),
        np.linspace(-30.0, 30.0, 15),
    )


class Shapes3DProcedural(Shapes3DFactors, GroundTruthDataset):
    """3DShapes drawn on demand on ``device``; no file needed.

    The 480 geometries (scale x shape x orientation) are ray-cast once each, when first asked for,
    and kept on the device (24 MB, shared by all instances on that device: about 5 s of one CPU
    core for all of them); a batch is then one gather and one colour mix.
    """

    source = "procedural"
    _shared_layers: dict[str, tuple[torch.Tensor, np.ndarray]] = {}  # device -> (layers, which are drawn)

    def __init__(self, device: str | torch.device = "cpu"):
        super().__init__(device)
        if str(self.device) not in self._shared_layers:
            n_geom = int(np.prod(self.factor_sizes[3:]))
            layers = torch.zeros(n_geom, 3, self.image_size, self.image_size, device=self.device)
            self._shared_layers[str(self.device)] = (layers, np.zeros(n_geom, dtype=bool))
        self._layers, self._have = self._shared_layers[str(self.device)]
        hues = [colorsys.hsv_to_rgb(h, SATURATION, 1.0) for h in self.factor_values[0]]
        self._palette = torch.tensor(hues, dtype=torch.float32, device=self.device)
        self._values = [torch.tensor(v, dtype=torch.float32, device=self.device) for v in self.factor_values]

    def _geometry(self, y: np.ndarray) -> torch.Tensor:
        """Layer weights [n, 3, 64, 64] for factor rows ``y`` (int64 numpy), ray-casting any not seen
        before. Which are new is known on the host (``_have``), so the device is asked nothing back."""
        g = (y[:, 3] * self.factor_sizes[4] + y[:, 4]) * self.factor_sizes[5] + y[:, 5]
        new = np.unique(g[~self._have[g]])
        if new.size:
            scale, rest = new // (self.factor_sizes[4] * self.factor_sizes[5]), new % (self.factor_sizes[4] * self.factor_sizes[5])
            shape, orient = rest // self.factor_sizes[5], rest % self.factor_sizes[5]
            for chunk in range(0, new.size, GEOMETRY_CHUNK):  # bounds the ray caster's memory
                part = slice(chunk, chunk + GEOMETRY_CHUNK)
                on_device = [torch.from_numpy(a[part]).to(self.device) for a in (new, scale, shape, orient)]
                self._layers[on_device[0]] = render_layers(
                    self._values[3][on_device[1]], on_device[2], self._values[5][on_device[3]], self.image_size
                )
            self._have[new] = True
        return self._layers[torch.from_numpy(g).to(self.device, non_blocking=True)]

    def images(self, factors: np.ndarray | torch.Tensor) -> torch.Tensor:
        y = self.check_factors(factors)
        colours = self._palette[torch.from_numpy(y[:, :3]).to(self.device, non_blocking=True)]  # [n, layer, rgb]
        return torch.einsum("blhw,blc->bchw", self._geometry(y), colours).clamp_(0, 1)


class Shapes3DFile(Shapes3DFactors, FileDataset):
    """3DShapes read from DeepMind's ``3dshapes.h5`` (or a file in its format holding some rows).

    Needs the datasets ``images`` (n, 64, 64, 3) uint8 and ``labels`` (n, 6) float factor values.
    The file stays open; each batch reads its rows in increasing order.
    """

    pixel_max = 255.0

    def __init__(self, path: str | Path | None = None, device: str | torch.device = "cpu"):
        super().__init__(resolve_path(path, FILENAME, self.name), device)
        self._h5 = None
        try:
            h5 = self._open()
            missing = [k for k in ("images", "labels") if not isinstance(h5.get(k), h5py.Dataset)]
            if missing:
                raise DatasetError(f"{self.path}: missing dataset(s) {missing} (or not an array); found {sorted(h5.keys())}")
            shape, dtype = h5["images"].shape, h5["images"].dtype
            if len(shape) != 4 or tuple(shape[1:]) != (self.image_size, self.image_size, 3):
                raise DatasetError(f"{self.path}: 'images' has shape {shape}, expected (n, 64, 64, 3)")
            if dtype != np.uint8:
                raise DatasetError(f"{self.path}: 'images' has dtype {dtype}, expected uint8")
            labels = check_array(self.path, "labels", h5["labels"][()], (shape[0], 6), "f")
            self._index_rows(self._label_indices(labels))
        except DatasetError:
            self.close()
            raise
        except READ_ERRORS as e:
            self.close()
            raise DatasetError(f"{self.path}: not a readable 3DShapes .h5, truncated or corrupt ({type(e).__name__}: {e})") from None

    def _label_indices(self, labels: np.ndarray) -> np.ndarray:
        """Factor indices from factor values: the nearest value, within a quarter of a step."""
        columns = []
        for k, (name, values) in enumerate(zip(self.factor_names, self.factor_values)):
            idx = np.abs(labels[:, k, None] - values[None, :]).argmin(1)
            off = np.abs(labels[:, k] - values[idx]) > 0.25 * np.diff(values).min()
            if off.any():
                row = int(np.flatnonzero(off)[0])
                raise DatasetError(
                    f"{self.path}: labels[{row}, {k}] ({name}) = {labels[row, k]!r} is not one of {np.round(values, 4).tolist()}"
                )
            columns.append(idx)
        return np.stack(columns, axis=1).astype(np.int64)

    def _open(self) -> h5py.File:
        if self._h5 is None:
            self._h5 = h5py.File(self.path, "r")
        return self._h5

    def _read_sorted(self, rows: np.ndarray) -> np.ndarray:
        return self._open()["images"][rows].transpose(0, 3, 1, 2)

    def __getstate__(self):  # an open h5py file cannot be pickled: reopen after unpickling
        return {**self.__dict__, "_h5": None}

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None


DATASET = DatasetSpec({"procedural": Shapes3DProcedural, "file": Shapes3DFile})  # the registered dataset
