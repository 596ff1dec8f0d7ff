"""Ground-truth datasets (dSprites, 3DShapes, the small Squares, and V3's digit sequences), from a file or drawn procedurally.

Both sources of a dataset have the same factor names, sizes and values; the procedural one
needs no file and draws batches directly on the training device.

Example:
    >>> ds = get_dataset("shapes3d", device="cpu")                    # procedural
    >>> real = get_dataset("dsprites", source="file", path="~/data")  # or set $DID_DATA_DIR
    >>> x, y = next(ds.batches(64, seed=0))                           # [64, 3, 64, 64], [64, 6]
"""
from __future__ import annotations

from pathlib import Path

import torch

from .base import DatasetError, GroundTruthDataset
from .digit_sequences import DigitSequences, DigitSequencesCentred, DigitSequencesSampleShift
from .dsprites import DSpritesFile, DSpritesProcedural
from .shapes3d import Shapes3DFile, Shapes3DProcedural
from .squares import Squares

_DATASETS = {
    "dsprites": {"procedural": DSpritesProcedural, "file": DSpritesFile},
    "shapes3d": {"procedural": Shapes3DProcedural, "file": Shapes3DFile},
    "squares": {"procedural": Squares},  # small and procedural only: no file exists
    "digit_sequences": {"procedural": DigitSequences},  # from scikit-learn's bundled digits: no file
    "digit_sequences_sample_shift": {"procedural": DigitSequencesSampleShift},  # one shift per sample (diagnosis)
    "digit_sequences_centred": {"procedural": DigitSequencesCentred},  # no shift (diagnosis)
}
ALIASES = {"3dshapes": "shapes3d"}
SOURCES = ("procedural", "file")


def available_datasets() -> list[str]:
    return sorted(_DATASETS)


def dataset_sources(name: str) -> list[str]:
    """The sources dataset ``name`` has: ``procedural``, and ``file`` for those that exist as a file."""
    return sorted(_DATASETS[ALIASES.get(name, name)])


def dataset_factors(name: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """``(factor_names, factor_sizes)`` of dataset ``name`` without building it (both sources share them)."""
    key = ALIASES.get(name, name)
    if key not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {available_datasets()} (or the alias '3dshapes')")
    cls = _DATASETS[key]["procedural"]
    return tuple(cls.factor_names), tuple(cls.factor_sizes)


def get_dataset(
    name: str, source: str = "procedural", path: str | Path | None = None, device: str | torch.device = "cpu"
) -> GroundTruthDataset:
    """The dataset ``name`` ("dsprites", "shapes3d" or "3dshapes", "squares") from ``source``.

    ``path`` (file source only) is the data file or its folder; without it ``$DID_DATA_DIR`` is
    used. Raises ValueError for an unknown name, source or unavailable device, DatasetError
    for a missing or bad file.
    """
    key = ALIASES.get(name, name)
    if key not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {available_datasets()} (or the alias '3dshapes')")
    if source not in SOURCES:
        raise ValueError(f"unknown dataset source {source!r}; choose one of {list(SOURCES)}")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested for dataset {name!r}, but CUDA is not available")
    if source not in _DATASETS[key]:
        raise ValueError(f"dataset {key!r} has no {source!r} source; use one of {sorted(_DATASETS[key])}")
    if source == "procedural":
        if path is not None:
            raise ValueError(f"path={str(path)!r} is only used with source='file'")
        return _DATASETS[key]["procedural"](device=device)
    return _DATASETS[key]["file"](path=path, device=device)


__all__ = ["DatasetError", "GroundTruthDataset", "available_datasets", "dataset_factors", "dataset_sources", "get_dataset",
           "SOURCES"]
