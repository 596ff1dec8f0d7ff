"""``tiny_bars``: 48 white bars on black, 32x32, one channel; a file shipped with the package.

Factors: orientation 2 (horizontal, vertical), position 8, thickness 3; the file holds the full
grid in C order (``make_data.py`` writes it). Registered as a dataset by subclassing the generic
factor-labelled dataset and naming its file.

Example:
    >>> ds = get_dataset("tiny_bars")
    >>> ds.factor_names, ds.factor_sizes
    (('orientation', 'position', 'thickness'), (2, 8, 3))
"""
from __future__ import annotations

from pathlib import Path

from did_core.data.factor_file import FactorFileDataset


class TinyBars(FactorFileDataset):
    name = "tiny_bars"
    default_file = Path(__file__).with_name("tiny_bars.npz")
