"""What a run compares, from its trials: the typed input of the decisions (:class:`Trials`) and the
comparisons an ablation and a comparison study make.

- An **ablation** compares each setting of its ablated parameter, and each control, with the
  default setting (the model Config's default under the study's budget), for every score.
- A **comparison** (several methods) compares, on each dataset and for each score, every method at
  its selected configuration (the best mean of the first objective) with the column's leader (the
  best mean of that score among them), as the report's Table 1 tests do. In a study with a seed
  plan both choices are made at the first look, on its seeds, and kept: later rounds add seeds to
  those configurations only.

Example:
    >>> trials = Trials(table, params=["lambda_h"], kind="ablation", defaults={"lambda_h": 1.34})
    >>> [c.label for c in comparisons_of(trials, "mig")]          # doctest: +SKIP
    ['lambda_h=0.0 against lambda_h=1.34', 'lambda_h=4.0 against lambda_h=1.34']
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

METHOD, DATASET = "method", "dataset"
COMPLETE = "COMPLETE"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the configurations whose trials it pools."""

    label: str
    config_ids: tuple[Any, ...]


@dataclass(frozen=True)
class Comparison:
    """A setting against its reference; ``family``: a comparison study's dataset ("" in an ablation)."""

    setting: Side
    reference: Side
    family: str = ""

    @property
    def label(self) -> str:
        where = f"{self.family}: " if self.family else ""
        return f"{where}{self.setting.label} against {self.reference.label}"


@dataclass
class Trials:
    """What the decisions read of a run: one row per trial that ended (columns ``trial``,
    ``config_id``, ``seed``, ``status``, the parameters by plain name, the final scores)."""

    table: pd.DataFrame
    params: list[str]  # the parameters that vary, the ablated one first (as the report orders them)
    kind: str = "ablation"
    defaults: dict[str, Any] = field(default_factory=dict)  # each parameter's Config default
    controls: list[dict[str, Any]] = field(default_factory=list)
    objectives: list[tuple[str, str]] = field(default_factory=list)  # (score, maximize | minimize)
    scores: list[str] = field(default_factory=list)  # the final scores, objectives first
    directions: dict[str, str] = field(default_factory=dict)  # score -> maximize | minimize

    @property
    def finished(self) -> pd.DataFrame:
        return self.table[self.table["status"] == COMPLETE]

    def values(self, side: Side, score: str, seeds) -> np.ndarray:
        """The finite values of ``score`` of ``side``'s finished trials whose seed is in ``seeds``."""
        done = self.finished
        rows = done[done["config_id"].isin(side.config_ids) & done["seed"].isin(list(seeds))]
        x = pd.to_numeric(rows[score], errors="coerce").to_numpy(dtype=float) if score in rows else np.array([])
        return x[np.isfinite(x)]


def same_value(a, b) -> bool:
    """Equal as written in results.csv (``3`` and ``3.0`` are one setting)."""
    return a == b or (is_number(a) and is_number(b) and float(a) == float(b)) or str(a) == str(b)


def is_number(x) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) and math.isfinite(x)


def _text(v) -> str:
    return f"{v:g}" if is_number(v) and not isinstance(v, numbers.Integral) else str(v)


def comparisons_of(trials: Trials, score: str, first_seeds=None) -> list[Comparison]:
    """The comparisons of ``score`` in this run (``first_seeds``: the seeds a comparison study's
    selections are made on; default every seed)."""
    if trials.table.empty:
        return []
    if trials.kind == "comparison":
        return _arm_comparisons(trials, score, first_seeds)
    if trials.kind == "ablation":
        return _ablation_comparisons(trials)
    return []


def control_mask(df: pd.DataFrame, point: dict[str, Any]) -> pd.Series:
    """The rows of ``df`` whose parameters are ``point``'s (a control of the study)."""
    mask = pd.Series(True, index=df.index)
    for name, value in point.items():
        if name in df:
            mask &= df[name].map(lambda v, value=value: same_value(v, value))
    return mask


def _ids(rows: pd.DataFrame) -> tuple:
    return tuple(sorted(pd.unique(rows["config_id"].dropna()), key=str))


def _ablation_comparisons(trials: Trials) -> list[Comparison]:
    df = trials.table
    if not trials.params:
        return []
    param = trials.params[0]
    grid = df
    for point in trials.controls:
        grid = grid[~control_mask(grid, point)]
    settings = sorted(pd.unique(grid[param].dropna()), key=lambda v: (0, float(v), "") if is_number(v) else (1, 0, str(v)))
    if not settings:
        return []
    default = next((s for s in settings if param in trials.defaults and same_value(s, trials.defaults[param])),
                   settings[0])
    side = lambda v: Side(f"{param}={_text(v)}", _ids(grid[grid[param].map(lambda x: same_value(x, v))]))
    reference = side(default)
    out = [Comparison(side(s), reference) for s in settings if not same_value(s, default)]
    for point in trials.controls:
        own = [f"{k}={_text(v)}" for k, v in point.items()
               if k in grid and not any(same_value(v, g) for g in pd.unique(grid[k].dropna()))]
        label = ", ".join(own or [f"{k}={_text(v)}" for k, v in point.items()]) + " (control)"
        rows = df[control_mask(df, point)]
        if not rows.empty:
            out.append(Comparison(Side(label, _ids(rows)), reference))
    return [c for c in out if c.setting.config_ids and c.reference.config_ids]


def _arm_comparisons(trials: Trials, score: str, first_seeds) -> list[Comparison]:
    objective, obj_dir = trials.objectives[0] if trials.objectives else (score, "maximize")
    done = trials.finished
    if first_seeds is not None:
        done = done[done["seed"].isin(list(first_seeds))]
    params = [p for p in trials.params if p not in (METHOD, DATASET)]
    out = []
    for dataset, here in done.groupby(DATASET, sort=False):
        picked = []
        for method, group in here.groupby(METHOD, sort=False):
            means = group.groupby("config_id", sort=False)[objective].mean().dropna()
            if means.empty:
                continue
            cid = means.idxmin() if obj_dir == "minimize" else means.idxmax()
            row = group[group["config_id"] == cid].iloc[0]
            shown = ", ".join(f"{p}={_text(row[p])}" for p in params if p in row and pd.notna(row[p]))
            mean = pd.to_numeric(group.loc[group["config_id"] == cid, score], errors="coerce").mean()
            picked.append((Side(f"{method}" + (f" ({shown})" if shown else ""), (cid,)), mean))
        picked = [(s, m) for s, m in picked if np.isfinite(m)]
        if len(picked) < 2:
            continue
        pick = min if trials.directions.get(score, "maximize") == "minimize" else max
        leader = pick(picked, key=lambda sm: sm[1])[0]
        out += [Comparison(side, leader, str(dataset)) for side, _ in picked if side != leader]
    return out
