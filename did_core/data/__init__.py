"""Ground-truth datasets (dSprites, 3DShapes, the small Squares, V3's digit sequences, any
factor-labelled file), drawn procedurally or read from a file.

A name resolves through the dataset registry: the built-ins and the installed packages' entry
points in the group ``did_orchestrator.datasets`` (:mod:`did_core.plugins`; the contract:
:mod:`did_core.data.spec`, docs/extending.md). ``file:PATH`` names the generic dataset of one
file of images and factor indices (:mod:`did_core.data.factor_file`). Both sources of a dataset
have the same factor names, sizes and values; the procedural one needs no file and draws batches
directly on the training device.

Example:
    >>> ds = get_dataset("shapes3d", device="cpu")                    # procedural
    >>> real = get_dataset("dsprites", source="file", path="~/data")  # or set $DID_DATA_DIR
    >>> mine = get_dataset("file:/data/mpi3d_toy.npz")                # images + factor indices
    >>> x, y = next(ds.batches(64, seed=0))                           # [64, 3, 64, 64], [64, 6]
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..plugins import DATASET_GROUP, PluginError, Registry
from .base import DatasetError, GroundTruthDataset
from .factor_file import FILE_PREFIX, SUFFIXES, FactorFileDataset
from .spec import SOURCES, DatasetSpec, spec_of_object

# The built-in datasets, registered like a plugin (pyproject.toml declares the same entry points).
BUILT_IN_DATASETS: dict[str, str] = {
    "dsprites": "did_core.data.dsprites:DATASET",
    "shapes3d": "did_core.data.shapes3d:DATASET",
    "squares": "did_core.data.squares:Squares",  # small and procedural only: no file exists
    "digit_sequences": "did_core.data.digit_sequences:DigitSequences",  # from scikit-learn's bundled digits
    "digit_sequences_sample_shift": "did_core.data.digit_sequences:DigitSequencesSampleShift",  # (diagnosis)
    "digit_sequences_centred": "did_core.data.digit_sequences:DigitSequencesCentred",  # no shift (diagnosis)
}
DATASETS: Registry[DatasetSpec] = Registry(DATASET_GROUP, "dataset", BUILT_IN_DATASETS, check=spec_of_object)
ALIASES = {"3dshapes": "shapes3d"}


def available_datasets() -> list[str]:
    """Every registered dataset name, sorted (``file:PATH`` names a file besides these)."""
    return sorted(DATASETS.names())


def dataset_problem(name: str) -> str | None:
    """Why ``name`` names no usable dataset, or None when it does: an unknown name, a plugin that
    cannot be imported or breaks the contract, a ``file:PATH`` that is not there (not read)."""
    if name.startswith(FILE_PREFIX):
        path = Path(name[len(FILE_PREFIX):]).expanduser()
        if path.suffix.lower() not in SUFFIXES:
            return f"{name!r}: a dataset file is one of {list(SUFFIXES)}"
        return None if path.is_file() else f"{name!r}: file not found"
    if ALIASES.get(name, name) not in DATASETS.plugins():
        return f"unknown dataset {name!r}; choose one of {available_datasets()}, or file:PATH"
    try:
        DATASETS.get(ALIASES.get(name, name))  # imported and checked once, before any trial needs it
    except PluginError as e:
        return str(e)
    return None


def _spec(name: str) -> DatasetSpec:
    key = ALIASES.get(name, name)
    if key not in DATASETS.plugins():
        raise ValueError(f"unknown dataset {name!r}; choose one of {available_datasets()} (or the alias '3dshapes', "
                         "or file:PATH)")
    return DATASETS.get(key)


def dataset_sources(name: str) -> list[str]:
    """The sources dataset ``name`` has: ``procedural``, and ``file`` for those that exist as a file
    (a ``file:PATH`` dataset: ``file``)."""
    if name.startswith(FILE_PREFIX):
        return ["file"]
    return sorted(_spec(name).sources)


def dataset_factors(name: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """``(factor_names, factor_sizes)`` of dataset ``name`` without building it (both sources share them)."""
    if name.startswith(FILE_PREFIX):
        return FactorFileDataset.factors_of(name[len(FILE_PREFIX):])
    return _spec(name).factors()


def dataset_images(name: str) -> tuple[int, int]:
    """``(num_channels, image_size)`` of dataset ``name``'s images without building it (both sources share them)."""
    if name.startswith(FILE_PREFIX):
        dataset = FactorFileDataset(name[len(FILE_PREFIX):])
        return int(dataset.num_channels), int(dataset.image_size)
    spec = _spec(name)  # an unknown name is refused as dataset_factors refuses it
    cls = spec.sources[spec.default_source]
    if not hasattr(cls, "num_channels"):  # a file dataset (a plugin's) knows its images once it has opened its file
        dataset = cls(device="cpu")
        return int(dataset.num_channels), int(dataset.image_size)
    return int(cls.num_channels), int(cls.image_size)


def get_dataset(
    name: str, source: str = "procedural", path: str | Path | None = None, device: str | torch.device = "cpu"
) -> GroundTruthDataset:
    """The dataset ``name`` ("dsprites", "shapes3d" or "3dshapes", "squares", a plugin's, or
    "file:PATH") from ``source``.

    ``path`` (file source only) is the data file or its folder; without it ``$DID_DATA_DIR`` is
    used (or a plugin's own file). A dataset that has only a file (``file:PATH``, a plugin's file
    dataset) is read from it under the default source. Raises ValueError for an unknown name,
    source or unavailable device, DatasetError for a missing or bad file, PluginError for a
    plugin that cannot be used.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown dataset source {source!r}; choose one of {list(SOURCES)}")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested for dataset {name!r}, but CUDA is not available")
    if name.startswith(FILE_PREFIX):
        if path is not None:
            raise ValueError(f"path={str(path)!r}: the file of {name!r} is in its name; give it once")
        return FactorFileDataset(name[len(FILE_PREFIX):], device=device)
    spec = _spec(name)
    if source == "procedural" and source not in spec.sources:
        source = spec.default_source  # a file-only dataset: "procedural" is only the default
    if source not in spec.sources:
        raise ValueError(f"dataset {ALIASES.get(name, name)!r} has no {source!r} source; use one of {sorted(spec.sources)}")
    if source == "procedural" and path is not None:
        raise ValueError(f"path={str(path)!r} is only used with source='file'")
    return spec.build(source, path, device)


__all__ = ["ALIASES", "BUILT_IN_DATASETS", "DATASETS", "DatasetError", "DatasetSpec", "FactorFileDataset",
           "FILE_PREFIX", "GroundTruthDataset", "PluginError", "SOURCES", "available_datasets", "dataset_factors", "dataset_images", "dataset_sources",
           "dataset_problem", "get_dataset"]
