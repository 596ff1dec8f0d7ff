"""Read a run folder into one plain object the report draws from, through :mod:`orchestrator.run_folder`.

Nothing here draws; everything here tolerates a partial folder (a study that failed early, or
one still running) and records what is missing in ``RunData.problems`` instead of raising.

Example:
    >>> run = load_run("runs/ablation_dims-smoke")
    >>> run.kind, run.params, run.objectives
    ('ablation', ['n_compare_dims'], [('mig', 'maximize')])
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from did_core.metrics import directions

from ..run_folder import (held, CURVE_COLUMNS, CURVES_FILE, LEAD_COLUMNS, META_FILE, OPTUNA_DB, PARAM_PREFIX,
                          RESULTS_FILE, STUDY_FILE, TRAIL_COLUMNS, RunMeta, Status, is_in_training)


class ReportError(RuntimeError):
    """The report cannot be built at all (the run folder does not exist)."""


@dataclass
class RunData:
    run_dir: Path
    study_text: str = ""  # study.yaml exactly as run (shown, never parsed: meta.json says what ran)
    meta: RunMeta | None = None
    results: pd.DataFrame = field(default_factory=pd.DataFrame)  # parameters by plain name
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # trial, step, name, value
    optuna_study: Any = None
    params: list[str] = field(default_factory=list)  # parameters that vary across trials
    scores: list[str] = field(default_factory=list)  # final-score columns (of meta.final_protocol)
    fast_scores: list[str] = field(default_factory=list)  # in-training score columns (<protocol>/<score>)
    diagnostic_scores: list[str] = field(default_factory=list)  # a model's checks (its own section shows them)
    constant_scores: dict[str, float] = field(default_factory=dict)  # equal in every finished trial: named once
    objectives: list[tuple[str, str]] = field(default_factory=list)  # (score, "maximize"|"minimize")
    problems: list[str] = field(default_factory=list)  # what is missing or unreadable, for the reader

    @property
    def name(self) -> str:
        return self.meta.study if self.meta else self.run_dir.name

    @property
    def preset(self) -> str:
        return self.meta.preset if self.meta else "?"

    @property
    def kind(self) -> str:
        return self.meta.kind if self.meta else "search"

    @property
    def finished(self) -> pd.DataFrame:
        if self.results.empty:
            return self.results
        return self.results[self.results["status"] == Status.COMPLETE.value]


def load_run(run_dir: str | Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ReportError(f"run folder {run_dir} does not exist (expected what `python -m orchestrator.study` writes)")
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is a file, not a run folder")
    run = RunData(run_dir=run_dir)
    path = run_dir / STUDY_FILE
    if path.exists() and not held(run_dir, path):
        run.problems.append(f"{STUDY_FILE}: links out of the run folder; a report embeds only what the folder holds")
    elif path.exists():
        run.study_text = path.read_text(errors="replace")
    else:
        run.problems.append(f"{STUDY_FILE}: missing, so the report cannot say how the study was defined")
    _read_meta(run)
    _read_results(run)
    _read_curves(run)
    _read_optuna(run)
    return run


def _read_meta(run: RunData) -> None:
    if not (run.run_dir / META_FILE).exists():
        run.problems.append(f"{META_FILE}: missing")
        return
    try:
        run.meta = RunMeta.read(run.run_dir)
    except (OSError, ValueError, TypeError) as e:
        run.problems.append(f"{META_FILE}: unreadable ({e})")


def _read_csv(run: RunData, name: str, missing: str) -> pd.DataFrame | None:
    """``run_dir/name`` as a table, or None with the problem noted (``missing`` says why it may be absent)."""
    path = run.run_dir / name
    if not path.exists():
        run.problems.append(f"{name}: {missing}")
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError) as e:
        run.problems.append(f"{name}: unreadable ({e})")
        return None


def _read_results(run: RunData) -> None:
    df = _read_csv(run, RESULTS_FILE, "missing (no trial has reported yet)")
    if df is None:
        return
    missing = [c for c in LEAD_COLUMNS + ["error"] if c not in df.columns]
    if missing:
        run.problems.append(f"{RESULTS_FILE}: not written by this version of the orchestrator (no {missing})")
        return
    params = [c[len(PARAM_PREFIX):] for c in df.columns if c.startswith(PARAM_PREFIX)]
    df = df.rename(columns={PARAM_PREFIX + p: p for p in params})
    df["error"] = ["" if pd.isna(e) else str(e) for e in df["error"]]
    run.results = df
    scores = [c for c in df.columns if c not in LEAD_COLUMNS + TRAIL_COLUMNS and c not in params]
    run.scores = [c for c in scores if not is_in_training(c) and pd.api.types.is_numeric_dtype(df[c])]
    run.fast_scores = [c for c in scores if is_in_training(c)]
    run.params = [p for p in params if df[p].nunique(dropna=True) > 1]
    if run.kind == "ablation" and not run.params and params:
        run.params = params[:1]
    objectives = run.meta.objectives if run.meta else []
    if not objectives and "mig" in run.scores:
        objectives = [("mig", "maximize")]
    run.objectives = [(m, d) for m, d in objectives if m in df.columns] or (
        [(run.scores[0], direction(run.scores[0]))] if run.scores else [])


def direction(score: str) -> str:
    """A registered score's direction (``gaussian_tc``: minimize); maximize for any other."""
    return directions().get(score, "maximize")


def _read_curves(run: RunData) -> None:
    df = _read_csv(run, CURVES_FILE, "missing")
    if df is None:
        return
    if not set(CURVE_COLUMNS) <= set(df.columns):
        run.problems.append(f"{CURVES_FILE}: expected columns {CURVE_COLUMNS}, found {list(df.columns)}")
        return
    run.curves = df


def _read_optuna(run: RunData) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if run.meta is None:
        run.problems.append(f"{OPTUNA_DB}: not read, since without {META_FILE} the Optuna study's name is unknown")
        return
    db = run.run_dir / OPTUNA_DB
    url = f"sqlite:///{db.resolve()}" if db.exists() else (run.meta.storage if run.meta else None)
    if not url or (url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists()):
        run.problems.append(f"{OPTUNA_DB}: missing, so there is no search history")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run.optuna_study = optuna.load_study(study_name=run.meta.optuna_study, storage=url)
    except Exception as e:  # a corrupt or foreign database: say so, draw the rest
        run.problems.append(f"optuna storage {url}: unreadable ({type(e).__name__}: {e})")


def is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) and math.isfinite(x)
