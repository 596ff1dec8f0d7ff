"""Command line: look at a dataset.

    python -m did_core.data preview dsprites --out dsprites.png [--source file --path DIR] [--seed 0]

writes a grid with one row per factor: the factor traverses its values (all of them, or 16
evenly spaced ones when it has more than 16) while the other factors stay at one random draw.
With a partial file, combinations the file lacks are left empty. A sequence dataset
(digit_sequences) adds ``SEQUENCE_ROWS`` rows below, each one whole sample (its fragments in order).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ..images import save_image_grid
from . import SOURCES, available_datasets, get_dataset
from .base import DatasetError, GroundTruthDataset

MAX_STEPS = 16
SEQUENCE_ROWS = 4


def traversal_rows(ds: GroundTruthDataset, seed: int = 0) -> tuple[list[list], list[str]]:
    """One row of images per factor (then whole samples of a sequence dataset), each a list of
    [C, S, S] tensors or None, and the row labels."""
    base = ds.sample_factors(1, np.random.default_rng(seed))[0]
    rows, labels = [], []
    for k, (name, size) in enumerate(zip(ds.factor_names, ds.factor_sizes)):
        values = np.unique(np.round(np.linspace(0, size - 1, min(size, MAX_STEPS))).astype(np.int64))
        y = np.repeat(base[None], len(values), axis=0)
        y[:, k] = values
        present = ds.contains(y)
        x = ds.images(y[present]) if present.any() else None
        it = iter(x) if x is not None else iter(())
        rows.append([next(it) if p else None for p in present])
        labels.append(f"{name} ({len(values)}/{size})")
    if ds.sequence_length:
        samples = ds.sample_sequences(SEQUENCE_ROWS, np.random.default_rng(seed))
        for i, y in enumerate(samples):
            rows.append(list(ds.images(y)))
            labels.append(f"sample {i}")
    return rows, labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m did_core.data", description="Inspect a ground-truth dataset.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("preview", help="write a PNG grid traversing every factor")
    p.add_argument("dataset", help=f"one of {available_datasets()} (or 3dshapes)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--source", default="procedural", choices=SOURCES)
    p.add_argument("--path", default=None, help="file source: the data file or its folder (default $DID_DATA_DIR)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draw the other factors stay at")
    p.add_argument("--zoom", type=int, default=2, help="enlarge each 64x64 image this many times")
    p.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        ds = get_dataset(args.dataset, source=args.source, path=args.path, device=args.device)
        rows, labels = traversal_rows(ds, args.seed)
        out = save_image_grid(rows, args.out, zoom=args.zoom, row_labels=labels)
    except (DatasetError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({ds.name}, {ds.source}, one row per factor: {', '.join(ds.factor_names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
