"""The numbers the report prints: configurations over seeds, the leaderboard, the ablation tests.

Example:
    >>> mean_ci([1.0, 2.0, 3.0])          # mean and half-width of the 95% t-interval
    (2.0, 2.484...)
    >>> welch([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]).p < 0.01
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..run_folder.layout import Status
from ..verdicts.comparisons import control_mask, is_number, same_value
from .data import RunData, grid_rows
from ..run_folder.tables import config_text, mean_std, without_rounding_noise


def config_label(row: pd.Series | dict, params: list[str]) -> str:
    return config_text(row, params) if params else "(single configuration)"


def with_config(df: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """A copy of ``df`` with a `config` column naming each row's parameter setting."""
    df = df.copy()
    df["config"] = [config_label(r, params) for _, r in df.iterrows()] if len(df) else []
    return df


def mean_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval (nan with fewer than 2 values)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) < 2:
        return float(x.mean()), math.nan
    mean = float(x.mean())
    sd = without_rounding_noise(float(x.std(ddof=1)), mean)
    return mean, float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * sd / math.sqrt(len(x)))


def leaderboard(run: RunData) -> pd.DataFrame:
    """One row per configuration, ranked by the first objective's mean over seeds.

    Columns: rank, config, the parameters, seeds, trials, and `<score> mean` / `<score> std`.
    """
    df = with_config(run.finished, run.params)
    if df.empty:
        return pd.DataFrame()
    rows = []
    for label, group in df.groupby("config", sort=False):
        row = {"config": label, **{p: group[p].iloc[0] for p in run.params}, "seeds": len(group),
               "trials": ", ".join(str(int(t)) for t in group["trial"])}
        for s in run.scores:
            row[f"{s} mean"], row[f"{s} std"] = mean_std(group[s])
        rows.append(row)
    board = pd.DataFrame(rows)
    if run.objectives:
        score, direction = run.objectives[0]
        board = board.sort_values(f"{score} mean", ascending=(direction == "minimize"), na_position="last")
    board.insert(0, "rank", range(1, len(board) + 1))
    return board.reset_index(drop=True)


def best_trial(run: RunData) -> int | None:
    """The trial with the best objective inside the best configuration (the report's "best model")."""
    board = leaderboard(run)
    if board.empty or not run.objectives:
        return None
    score, direction = run.objectives[0]
    df = with_config(run.finished, run.params)
    group = df[df["config"] == board["config"].iloc[0]].dropna(subset=[score])
    if group.empty:
        return None
    idx = group[score].idxmin() if direction == "minimize" else group[score].idxmax()
    return int(group.loc[idx, "trial"])


@dataclass
class Comparison:
    setting: object
    score: str
    n: int
    n_default: int
    diff: float = math.nan  # mean(setting) - mean(default)
    p: float = math.nan  # Welch's t-test, two-sided
    p_holm: float = math.nan  # Holm-adjusted across the settings of this score
    note: str = ""  # "n too small", "no variance"


def welch(a, b) -> Comparison:
    """Welch's two-sided t-test of ``a`` against ``b`` (the default setting)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    c = Comparison(setting=None, score="", n=len(a), n_default=len(b))
    if len(a) == 0 or len(b) == 0:
        c.note = "no finished trial"
        return c
    c.diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        c.note = "n too small"
        return c
    if (without_rounding_noise(float(a.std(ddof=1)), float(a.mean())) == 0
            and without_rounding_noise(float(b.std(ddof=1)), float(b.mean())) == 0):
        c.note = "no variance"
        return c
    c.p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return c


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment; nan entries are left out of the family and stay nan."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    order = sorted(idx, key=lambda i: pvalues[i])
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * pvalues[i]))
        out[i] = running
    return out


def ablation_settings(run: RunData) -> list:
    """The ablated parameter's values on the grid (a control's trials left out)."""
    param = run.params[0]
    values = list(pd.unique(grid_rows(run, run.results)[param].dropna()))
    return sorted(values, key=lambda v: (0, float(v), "") if is_number(v) else (1, 0.0, str(v)))


def control_rows(run: RunData, df: pd.DataFrame) -> list[tuple[str, dict, pd.DataFrame]]:
    """Each control of the study: its label (the values the grid lacks), its point and its trials in ``df``."""
    controls = run.meta.controls if run.meta is not None else []
    grid = grid_rows(run, df)
    out = []
    for point in controls:
        own = [f"{k}={v}" for k, v in point.items()
               if k in grid and not any(same_value(v, g) for g in pd.unique(grid[k].dropna()))]
        label = ", ".join(own or [f"{k}={v}" for k, v in point.items()]) + " (control)"
        out.append((label, point, df[control_mask(df, point)]))
    return out


def ablation_default(run: RunData) -> tuple[object, str]:
    """The setting every other is tested against, and a sentence saying where it comes from: the
    model Config's default under the study's budget (meta.json ``defaults``), when it was tried."""
    param = run.params[0]
    settings = ablation_settings(run)
    meta = run.meta
    if meta is not None and param in meta.defaults:
        value = meta.defaults[param]
        where = f"the {', '.join(meta.models)} model's Config default under its {meta.budget!r} preset"
        found = _member(value, settings)
        if found is not None:
            return found, f"{where} ({param}={value})"
        why = f"{where}, {param}={value}, is not among the settings"
    else:
        why = f"no Config default of {param} recorded in meta.json"
    return settings[0], f"{why}; comparing against the first setting, {param}={settings[0]}"


def _member(value, settings):
    return next((s for s in settings if same_value(s, value)), None)


def ablation_tests(run: RunData, default) -> list[Comparison]:
    """Every non-default setting, and every control, against the default, for every final score."""
    param = run.params[0]
    df = grid_rows(run, run.finished)
    controls = control_rows(run, run.finished)
    out = []
    for score in run.scores:
        base = df.loc[df[param] == default, score].dropna().to_numpy()
        rows = []
        for setting in ablation_settings(run):
            if setting == default:
                continue
            c = welch(df.loc[df[param] == setting, score].dropna().to_numpy(), base)
            c.setting, c.score = setting, score
            rows.append(c)
        for label, _, trials in controls:
            c = welch(trials[score].dropna().to_numpy(), base)
            c.setting, c.score = label, score
            rows.append(c)
        for c, ph in zip(rows, holm([c.p for c in rows])):
            c.p_holm = ph
        out.extend(rows)
    return out


def trial_counts(run: RunData) -> dict[str, int]:
    """Trials by how they ended, in the report's words (finished, stopped early, failed first)."""
    states = run.results["status"] if not run.results.empty else []
    if not len(states) and run.optuna_study is not None:
        states = [t.state.name for t in run.optuna_study.get_trials(deepcopy=False)]
    out = {s.label: 0 for s in (Status.COMPLETE, Status.PRUNED, Status.FAIL)}
    for state in states:
        label = Status(state).label
        out[label] = out.get(label, 0) + 1
    return out
