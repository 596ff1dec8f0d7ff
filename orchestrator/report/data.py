"""Read a run folder into one plain object the report draws from, through :mod:`orchestrator.run_folder.layout`.

Nothing here draws; everything here tolerates a partial folder (a study that failed early, or
one still running) and records what is missing in ``RunData.problems`` instead of raising: a file
missing, unreadable or linking out of the folder, ``results.csv`` rows that are not a trial's
(a trial number or seed that is no integer, an unknown status: left out), score cells that are no
number (left empty), parameter values longer than :data:`MAX_VALUE` characters (shown cut).

The Optuna storage read is the folder's own ``optuna.db``, or the ``storage`` the caller names
(the study command names the one it ran on); never the one ``meta.json`` names, which a run folder
someone hands you could point at any database of yours.

Example:
    >>> run = load_run("runs/ablation_dims-smoke")
    >>> run.kind, run.params, run.objectives
    ('ablation', ['n_compare_dims'], [('mig', 'maximize')])
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from did_core.metrics import directions

from ..run_folder.tables import as_written
from ..verdicts.comparisons import control_mask
from ..run_folder.layout import (held, CURVE_COLUMNS, CURVES_FILE, LEAD_COLUMNS, META_FILE, OPTUNA_DB, PARAM_PREFIX,
                          RESULTS_FILE, STUDY_FILE, TRAIL_COLUMNS, TRIALS_DIR, RunMeta, Status, TrialRecord,
                          is_in_training)

MAX_VALUE = 100  # characters of a parameter value shown; a longer one is cut (the page would carry it ~75 times)
LINKS_OUT = "links out of the run folder; a report embeds only what the folder holds"


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


def load_run(run_dir: str | Path, storage: str | None = None) -> RunData:
    """The run folder ``run_dir``; ``storage``: the Optuna storage to read when the folder holds no
    ``optuna.db`` of its own (a study run with ``--storage``)."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ReportError(f"run folder {run_dir} does not exist (expected what `python -m orchestrator.study` writes)")
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is a file, not a run folder")
    run = RunData(run_dir=run_dir)
    if _own(run, STUDY_FILE, "missing, so the report cannot say how the study was defined"):
        run.study_text = (run_dir / STUDY_FILE).read_text(errors="replace")
    _read_meta(run)
    _read_results(run)
    _read_curves(run)
    if not run.curves.empty:
        run.curves = join_resumed_curves(run.curves, _resumed(run))
    _read_optuna(run, storage)
    return run


def _own(run: RunData, name: str, missing: str | None) -> bool:
    """Whether the folder holds ``name`` itself; if not, the problem noted (``missing``: why it may
    be absent; None: say nothing of an absent file)."""
    path = run.run_dir / name
    if held(run.run_dir, path):
        return True
    if path.exists() or path.is_symlink():
        run.problems.append(f"{name}: {LINKS_OUT}" if path.is_symlink() or path.is_file() else f"{name}: not a file")
    elif missing is not None:
        run.problems.append(f"{name}: {missing}")
    return False


def _read_meta(run: RunData) -> None:
    if not _own(run, META_FILE, "missing, so what ran, where and how is unknown"):
        return
    try:
        run.meta = RunMeta.read(run.run_dir)
    except (OSError, ValueError, TypeError) as e:
        run.problems.append(f"{META_FILE}: unreadable ({e})")


def _read_csv(run: RunData, name: str, missing: str) -> pd.DataFrame | None:
    """``run_dir/name`` as a table, or None with the problem noted (``missing`` says why it may be absent).
    A line a crash cut short (too many fields) is left out and said."""
    if not _own(run, name, missing):
        return None
    try:
        with warnings.catch_warnings(record=True) as bad:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            df = pd.read_csv(run.run_dir / name, on_bad_lines="warn")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, UnicodeDecodeError, ValueError) as e:
        run.problems.append(f"{name}: unreadable ({type(e).__name__}: {e})")
        return None
    skipped = sum(str(w.message).count("Skipping line") for w in bad if issubclass(w.category, pd.errors.ParserWarning))
    if skipped:
        run.problems.append(f"{name}: {skipped} malformed line(s) left out (a line cut short by a crash?)")
    return df


def _read_results(run: RunData) -> None:
    df = _read_csv(run, RESULTS_FILE, "missing (no trial has reported yet)")
    if df is None:
        return
    missing = [c for c in LEAD_COLUMNS + ["error"] if c not in df.columns]
    if missing:
        run.problems.append(f"{RESULTS_FILE}: not written by this version of the orchestrator (no {missing})")
        return
    params = [c[len(PARAM_PREFIX):] for c in df.columns if c.startswith(PARAM_PREFIX)]
    df = df.rename(columns={PARAM_PREFIX + p: p for p in params}).map(as_written)
    scores = [c for c in df.columns if c not in LEAD_COLUMNS + TRAIL_COLUMNS and c not in params]
    df = _trial_rows(run, df, params, scores)
    df["error"] = ["" if pd.isna(e) else str(e) for e in df["error"]]
    run.results = df
    run.scores = [c for c in scores if not is_in_training(c) and pd.api.types.is_numeric_dtype(df[c])]
    run.fast_scores = [c for c in scores if is_in_training(c)]
    run.params = [p for p in params if df[p].nunique(dropna=True) > 1]
    grid = grid_rows(run, df)  # the parameter the grid varies comes first, not one only a control sets
    run.params.sort(key=lambda p: grid[p].nunique(dropna=True) <= 1)
    if run.kind == "ablation" and not run.params and params and not df.empty:
        run.params = params[:1]
    objectives = run.meta.objectives if run.meta else []
    if not objectives and "mig" in run.scores:
        objectives = [("mig", "maximize")]
    run.objectives = [(m, d) for m, d in objectives if m in df.columns] or (
        [(run.scores[0], direction(run.scores[0]))] if run.scores else [])


def _trial_rows(run: RunData, df: pd.DataFrame, params: list[str], scores: list[str]) -> pd.DataFrame:
    """The rows of ``df`` that are a trial's (an integer trial number and seed, a known status),
    each score a number or empty, each parameter value at most :data:`MAX_VALUE` characters; what
    was changed is said in ``run.problems``."""
    trial, seed = pd.to_numeric(df["trial"], errors="coerce"), pd.to_numeric(df["seed"], errors="coerce")
    keep = (trial.notna() & (trial % 1 == 0) & ((seed % 1 == 0) | df["seed"].isna())
            & df["status"].isin([s.value for s in Status]))
    if not keep.all():
        shown = ", ".join(f"trial {t!r} (seed {sd!r}, status {st!r})" for t, sd, st in
                          df.loc[~keep, ["trial", "seed", "status"]].head(3).itertuples(index=False))
        run.problems.append(f"{RESULTS_FILE}: {int((~keep).sum())} row(s) left out, not a trial's: a trial number or "
                            f"seed that is no integer, or an unknown status ({shown})")
    df = df[keep].assign(trial=trial[keep].astype(int), seed=seed[keep].astype("Int64"))
    for column in scores:
        numbers = pd.to_numeric(df[column], errors="coerce")
        wrong = int((numbers.isna() & df[column].notna()).sum())
        if wrong:
            run.problems.append(f"{RESULTS_FILE}: column {column}: {wrong} cell(s) that are no number left empty")
        df[column] = numbers
    cut = []
    for p in params:
        long = [isinstance(v, str) and len(v) > MAX_VALUE for v in df[p]]
        if any(long):
            cut += [f"{p} of trial {t}" for t in df.loc[long, "trial"]]
            df[p] = [shortened(v) if is_long else v for v, is_long in zip(df[p], long)]
    if cut:
        run.problems.append(f"{RESULTS_FILE}: {len(cut)} parameter value(s) longer than {MAX_VALUE} characters, "
                            f"shown cut ({', '.join(cut[:3])}{', ...' if len(cut) > 3 else ''})")
    return df


def shortened(value: str) -> str:
    """The first characters of a long value, its length and a hash (two long values stay two)."""
    digest = hashlib.sha256(value.encode(errors="replace")).hexdigest()[:8]
    return f"{value[:MAX_VALUE - 40]}… ({len(value):,} characters, #{digest})"


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


def _resumed(run: RunData) -> dict[int, int]:
    """``{trial: the interrupted trial it continued}``, from ``results.csv`` and, for trials that were
    themselves interrupted (not in it), their ``trial.json``; an unreadable record is skipped."""
    pairs = {}
    for path in sorted((run.run_dir / TRIALS_DIR).glob("*/"), key=lambda p: p.name):
        try:
            record = TrialRecord.read(path)
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if record.resumed_from is not None:
            pairs[int(record.number)] = int(record.resumed_from)
    if "resumed_from" in run.results.columns:
        done = run.results.dropna(subset=["resumed_from"])
        pairs.update(zip(done["trial"].astype(int), done["resumed_from"].astype(int)))
    return pairs


def join_resumed_curves(curves: pd.DataFrame, resumed: dict[int, int]) -> pd.DataFrame:
    """The curves with each resumed trial drawn as one line: a trial that continued an interrupted
    one (``resumed``: ``{trial: the trial it continued}``) takes over the interrupted trial's points
    before its own first step (the steps its checkpoint held); the interrupted trial's points from
    that step on were computed after the checkpoint, lost and computed again, and are left out (all
    of them where there was no checkpoint). A chain of interruptions is followed in trial order.
    ``curves.csv`` itself keeps every point.

    Example: trial 2 continued trial 0 from its step-2 checkpoint; trial 0 had logged steps 1-3 ::

        >>> c = pd.DataFrame({"trial": [0, 0, 0, 2], "step": [1, 2, 3, 3], "name": "loss/x", "value": 1.0})
        >>> join_resumed_curves(c, {2: 0})[["trial", "step"]].values.tolist()
        [[2, 1], [2, 2], [2, 3]]
    """
    out = curves
    for new, old in sorted(resumed.items()):
        own = out["trial"] == new
        if not own.any():
            continue
        previous = out["trial"] == old
        out = out[~(previous & (out["step"] >= out.loc[own, "step"].min()))].copy()
        out.loc[out["trial"] == old, "trial"] = new
    return out.sort_values(["trial", "step"], kind="stable").reset_index(drop=True)


def _read_optuna(run: RunData, storage: str | None) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if run.meta is None:
        run.problems.append(f"{OPTUNA_DB}: not read, since without {META_FILE} the Optuna study's name is unknown")
        return
    path = run.run_dir / OPTUNA_DB
    if _own(run, OPTUNA_DB, None):
        url = f"sqlite:///{path.resolve()}"
    elif path.exists() or path.is_symlink():
        return  # a link out of the folder: said by _own
    elif storage:
        url = storage
    else:
        run.problems.append(f"{OPTUNA_DB}: missing, so there is no search history" if run.meta.storage.endswith(
            "/" + OPTUNA_DB) else f"the Optuna storage {run.meta.storage} that {META_FILE} names is not read: a "
                                  "report reads no database the run folder does not hold unless it is given one "
                                  "(--storage), so there is no search history")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run.optuna_study = optuna.load_study(study_name=run.meta.optuna_study, storage=url)
    except Exception as e:  # a corrupt or foreign database: say so, draw the rest
        run.problems.append(f"optuna storage {url}: unreadable ({type(e).__name__}: {e})")


def grid_rows(run: RunData, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` less the trials of the study's controls (meta.json ``controls``)."""
    keep = pd.Series(True, index=df.index)
    for point in run.meta.controls if run.meta is not None else []:
        keep &= ~control_mask(df, point)
    return df[keep]
