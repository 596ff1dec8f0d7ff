"""The study's tables: ``results.csv`` (one row per trial) and ``curves.csv`` (one row per value).

``results.csv`` is rebuilt from the Optuna storage each time a trial finishes, so it always
holds every finished trial and nothing twice (a trial interrupted and run again appears once,
under its new number). Its columns and ``curves.csv``'s are named in :mod:`orchestrator.run_folder.layout`.
A text cell that a spreadsheet would read as a formula (it begins with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) is written with a ``'`` in front, as OWASP advises against CSV injection
(so is one that begins with ``'``, so that :func:`load_results` gives every text back as it was);
numbers are written as numbers, a negative one too.

Example:
    >>> df = load_results("runs/ablation_dims-smoke")
    >>> best_configurations(df, [("mig", "maximize")]).iloc[0]["mig_mean"]  # doctest: +SKIP
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from did_core.atomic import atomic_path

from .layout import (CURVE_COLUMNS, CURVES_FILE, LEAD_COLUMNS, PARAM_PREFIX, RESULTS_FILE, TRAIL_COLUMNS,
                         Status, is_in_training, param_column)

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula
QUOTE = "'"
OWN_COLUMNS = frozenset(LEAD_COLUMNS + TRAIL_COLUMNS)
INTEGER_COLUMNS = ("trial", "seed", "step", "resumed_from")  # integers, empty where unknown (never 3.0)
INTERRUPTED = "interrupted"  # user attr of a trial whose process died; its configuration was re-queued
FINISHED_STATES = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
TABLE1_SCORES = ["mig", "dci_disentanglement", "sap"]  # the scores of a comparison's table (the paper's Table 1)


def results_table(study: optuna.Study) -> pd.DataFrame:
    """One row per finished trial of the Optuna ``study`` (interrupted attempts left out)."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=FINISHED_STATES):
        a = t.user_attrs
        if a.get(INTERRUPTED):
            continue
        row: dict[str, Any] = {"trial": t.number, "config_id": a.get("config_id"), "seed": a.get("seed"),
                               "status": t.state.name}
        row.update({param_column(k): v for k, v in t.params.items()})
        # a score never takes a column of the table's own (the metric registry refuses such names;
        # a model's final event is checked here)
        row.update({k: v for k, v in {**(a.get("scores") or {}), **(a.get("last_scores") or {})}.items()
                    if k not in OWN_COLUMNS and not k.startswith(PARAM_PREFIX)})
        run = a.get("run") or {}
        duration = run.get("duration_s")
        if duration is None and t.datetime_start and t.datetime_complete:
            duration = (t.datetime_complete - t.datetime_start).total_seconds()
        # when the trainable started (the Optuna start is when the trial was handed to Ray)
        started = dt.datetime.fromtimestamp(run["started_at"]) if run.get("started_at") else t.datetime_start
        row.update({
            "step": run.get("step"), "final_protocol": run.get("final_protocol"), "duration_s": duration,
            "node": run.get("node"), "host": run.get("host"),
            "started": started.isoformat(timespec="seconds") if started else None,
            "finished": t.datetime_complete.isoformat(timespec="seconds") if t.datetime_complete else None,
            "resumed_from": a.get("resumed_from"), "error": a.get("error"),
        })
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=LEAD_COLUMNS + TRAIL_COLUMNS)
    lead = {param_column("method"): 0, param_column("dataset"): 1}  # a comparison's arm and dataset come first
    first = LEAD_COLUMNS + sorted((c for c in df if c.startswith(PARAM_PREFIX)), key=lambda c: (lead.get(c, 2), c))
    scores = [c for c in df if c not in first and c not in TRAIL_COLUMNS]
    scores = sorted(c for c in scores if not is_in_training(c)) + sorted(c for c in scores if is_in_training(c))
    df = df[first + scores + TRAIL_COLUMNS].sort_values("trial").reset_index(drop=True)
    for c in INTEGER_COLUMNS:
        if pd.api.types.is_numeric_dtype(df[c]) or df[c].isna().all():
            df[c] = df[c].astype("Int64")  # an empty cell would make the column float otherwise
    return df


def write_results(run_dir: str | Path, study: optuna.Study) -> pd.DataFrame:
    """Rewrite ``run_dir/results.csv`` atomically (a reader never sees half a file), every text
    cell safe to open in a spreadsheet (:func:`spreadsheet_safe`)."""
    df = results_table(study)
    write_csv(Path(run_dir) / RESULTS_FILE, df)
    return df


def write_csv(path: str | Path, df: pd.DataFrame) -> Path:
    """The one writer of every CSV table a run folder or its export holds (``results.csv``,
    ``selection.csv``, ``leaderboard.csv``, the Table 1 CSVs): written whole or not at all, every
    text cell safe to open in a spreadsheet (:func:`spreadsheet_safe`; read back with :func:`as_written`)."""
    with atomic_path(Path(path)) as tmp:
        df.map(spreadsheet_safe).to_csv(tmp, index=False)
    return Path(path)


def spreadsheet_safe(value: Any) -> Any:
    """A text that a spreadsheet would take for a formula (``=cmd|...``), or that begins with a
    quote, with a quote in front; anything else (a number, a negative one too) as it is."""
    return QUOTE + value if isinstance(value, str) and value.startswith((*FORMULA_START, QUOTE)) else value


def as_written(value: Any) -> Any:
    """The text :func:`spreadsheet_safe` was given back (``'=x`` -> ``=x``)."""
    return value[1:] if isinstance(value, str) and value.startswith(QUOTE) else value


class CurveWriter:
    """Appends ``trial, step, name, value`` rows to ``curves.csv``; each write opens, appends and
    closes the file, so nothing is lost when the process is killed (and the writer pickles). A
    line a crash (or a full disk) cut short is dropped when the writer opens the file, so the next
    rows never run on from it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.exists():
            drop_partial_line(self.path)
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.path.write_text(",".join(CURVE_COLUMNS) + "\n")

    def write(self, trial: int, step: int, values: Iterable[tuple[str, float]]) -> None:
        rows = [(trial, step, name, value) for name, value in values]
        if rows:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(rows)
            with open(self.path, "a", newline="") as f:
                f.write(text.getvalue())  # one write of whole lines


def drop_partial_line(path: Path) -> None:
    """Cut the file after its last newline (only the last line can be partial; a file whose header
    was cut is emptied)."""
    with open(path, "rb+") as f:
        end = pos = f.seek(0, io.SEEK_END)
        while pos > 0:
            start = max(0, pos - 4096)  # read back from the end, a block at a time
            f.seek(start)
            chunk = f.read(pos - start)
            if pos == end and chunk.endswith(b"\n"):
                return  # whole
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                f.truncate(start + cut + 1)
                return
            pos = start
        f.truncate(0)


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """``results.csv`` as written: every text cell as the trial had it (:func:`as_written`)."""
    return read_csv(Path(run_dir) / RESULTS_FILE)


def read_csv(path: str | Path, **kw) -> pd.DataFrame:
    """A table :func:`write_csv` wrote, every text cell as it was given."""
    return pd.read_csv(path, **kw).map(as_written)


def load_curves(run_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / CURVES_FILE)


def best_configurations(df: pd.DataFrame, objectives: list[tuple[str, str]]) -> pd.DataFrame:
    """Completed trials grouped by configuration (over seeds): ``<score>_mean``, ``<score>_std``,
    ``n_seeds``, the parameters; best first by the first objective. With several objectives a
    ``pareto`` column marks the configurations no other one beats on every objective."""
    done = df[df["status"] == Status.COMPLETE.value]
    metrics = [m for m, _ in objectives if m in done]
    if done.empty or not metrics:
        return pd.DataFrame()
    params = [c for c in done if c.startswith(PARAM_PREFIX)]
    groups = done.groupby("config_id", sort=False)
    table = groups[params].first() if params else pd.DataFrame(index=groups.size().index)
    table["n_seeds"] = groups.size()
    for m in metrics:
        table[f"{m}_mean"] = groups[m].mean()
        table[f"{m}_std"] = groups[m].std(ddof=1)
    sign = {m: (1 if d == "maximize" else -1) for m, d in objectives if m in metrics}
    if len(metrics) > 1:
        vals = [[sign[m] * r[f"{m}_mean"] for m in metrics] for _, r in table.iterrows()]
        table["pareto"] = [not any(all(o >= v for o, v in zip(other, mine)) and other != mine for other in vals)
                           for mine in vals]
    first = metrics[0]
    table = table.sort_values(f"{first}_mean", ascending=sign[first] < 0)
    return table.reset_index()


def comparison_table(df: pd.DataFrame, objective: tuple[str, str], scores: list[str], params: list[str],
                     select: str = "best") -> pd.DataFrame:
    """Table 1 of a comparison: one row per (method, dataset) of the completed trials in ``df``,
    whose columns are ``method``, ``dataset``, the arms' parameters ``params`` and the scores.

    ``select="best"``: each method's configuration with the best mean ``objective`` over its seeds
    on that dataset (the way papers report a method; optimistic for the objective itself, which
    picks it); ``select="all"``: every configuration and seed of the method pooled.
    Columns: method, dataset, configuration, n (trials), ``<score>_mean``, ``<score>_std``.

    Example:
        >>> comparison_table(df, ("mig", "maximize"), ["mig", "sap"], ["beta"]).iloc[0]["mig_mean"]  # doctest: +SKIP
    """
    scores = [s for s in scores if s in df]
    rows = []
    for method, dataset, label, group in (selected_trials(df, objective, params, select) if scores else []):
        row = {"method": method, "dataset": dataset, "configuration": label, "n": len(group)}
        for s in scores:
            row[f"{s}_mean"], row[f"{s}_std"] = mean_std(group[s])
        rows.append(row)
    return pd.DataFrame(rows)


def selected_trials(df: pd.DataFrame, objective: tuple[str, str], params: list[str],
                    select: str = "best") -> Iterable[tuple[Any, Any, str, pd.DataFrame]]:
    """The completed trials Table 1 reports for each (method, dataset): ``(method, dataset, label,
    trials)``, where ``select`` picks them as :func:`comparison_table` describes."""
    metric, direction = objective
    done = df[df["status"] == Status.COMPLETE.value] if "status" in df else df
    if done.empty or metric not in done:
        return
    params = [p for p in params if p in done and p not in ("method", "dataset")]
    for (method, dataset), group in done.groupby(["method", "dataset"], sort=False):
        group = group.assign(configuration=[config_text(r, params) for _, r in group.iterrows()])
        if select == "best":
            means = group.groupby("configuration", sort=False)[metric].mean().dropna()
            if means.empty:
                continue
            best = means.idxmin() if direction == "minimize" else means.idxmax()
            yield method, dataset, best, group[group["configuration"] == best]
        else:
            yield method, dataset, f"all {group['configuration'].nunique()} configuration(s)", group


def mean_std(values: pd.Series) -> tuple[float, float]:
    """Mean and sample standard deviation of the non-empty values (nan where too few)."""
    values = values.dropna()
    mean = values.mean() if len(values) else math.nan
    return mean, (without_rounding_noise(values.std(ddof=1), mean) if len(values) > 1 else math.nan)


def without_rounding_noise(spread: float, centre: float) -> float:
    """A spread within floating-point rounding of ``centre`` as 0: the standard deviation of three
    equal 0.2s comes out as 3.4e-17, which a report would print and a figure's axis would zoom into."""
    return 0.0 if abs(spread) <= 8 * np.finfo(float).eps * abs(centre) else spread


def config_text(row: pd.Series | dict, params: list[str]) -> str:
    """``beta=4, gamma=10``: a row's values of ``params``, empty ones left out."""
    items = [(p, row[p]) for p in params if not is_missing(row[p])]
    return ", ".join(f"{p}={_fmt(v)}" for p, v in items) or "(its defaults)"


def is_missing(v: Any) -> bool:
    """An empty cell: a comparison's row leaves the parameters of the other arms empty."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def format_params(row: pd.Series | dict) -> str:
    """``name=value, ...`` of a row's ``params_`` columns; a comparison's method and dataset first,
    parameters another arm owns (empty here) left out."""
    items = [(k[len(PARAM_PREFIX):], v) for k, v in dict(row).items() if str(k).startswith(PARAM_PREFIX)
             and not is_missing(v)]
    items.sort(key=lambda kv: ("method", "dataset").index(kv[0]) if kv[0] in ("method", "dataset") else 2)
    return ", ".join(f"{k}={_fmt(v)}" for k, v in items) or "(no searched parameters)"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)
