"""The record of every look: ``RUN_DIR/looks.csv``, one row per (round, score, comparison), so that a
reader can replay how each verdict was reached. Rewritten whole after each round (it is a function
of the trials: :func:`orchestrator.verdicts.rounds.replay`).

Example:
    >>> rows = read_looks("results/did_contrast-quick")     # doctest: +SKIP
    >>> rows[0].decision                                      # doctest: +SKIP
    'undecided'
"""
from __future__ import annotations

import csv
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from did_core.atomic import atomic_path

LOOKS_FILE = "looks.csv"  # in the run folder (orchestrator/run_folder/layout.py lists it)


@dataclass
class LookRow:
    """One comparison at one look. ``ci_low``/``ci_high``: the 95% interval of Δ (Hsu's degrees of
    freedom); ``spend``: the look's share of alpha; ``q_*``: the spent p-values after it;
    ``holm_*``: the Holm threshold each q met or missed; ``decision``: after this look."""

    round: int
    seeds: int  # the plan's seeds a side at this look
    score: str
    comparison: str
    looked: bool  # False: decided earlier, or a side lacked this round's seeds
    n: int
    n_ref: int
    mean: float
    mean_ref: float
    diff: float
    ci_low: float
    ci_high: float
    p_effect: float
    p_equiv: float
    spend: float
    q_effect: float
    q_equiv: float
    holm_effect: float
    holm_equiv: float
    alpha: float
    margin: float  # nan: none
    decision: str
    sign: int

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


def write_looks(run_dir: str | Path, rows: list[LookRow]) -> None:
    with atomic_path(Path(run_dir) / LOOKS_FILE) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(LookRow.columns())
            for r in rows:
                writer.writerow([_cell(v) for v in dataclasses.astuple(r)])


def _cell(v):
    return "" if isinstance(v, float) and math.isnan(v) else (f"{v:.6g}" if isinstance(v, float) else v)


def read_looks(run_dir: str | Path) -> list[LookRow]:
    """The rows of ``looks.csv`` (a file of other columns: ValueError naming it)."""
    path = Path(run_dir) / LOOKS_FILE
    with open(path, newline="") as f:
        reader = csv.reader(f)
        head = next(reader, [])
        if head != LookRow.columns():
            raise ValueError(f"{path}: expected the columns {LookRow.columns()}, found {head}")
        types = [f.type for f in dataclasses.fields(LookRow)]
        out = []
        for line in reader:
            out.append(LookRow(*(_parse(v, t) for v, t in zip(line, types))))
        return out


def _parse(v: str, kind: str):
    if kind == "bool":
        return v == "True"
    if kind == "int":
        return int(v)
    if kind == "float":
        return float(v) if v != "" else math.nan
    return v
