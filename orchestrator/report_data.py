"""Read a study's run folder into one plain object the report draws from.

Nothing here draws; everything here tolerates a partial folder (a study that failed early, or
one still running) and records what is missing in ``RunData.problems`` instead of raising.

Example:
    >>> run = load_run("runs/ablation_dims-smoke")
    >>> run.kind, run.params, run.objectives
    ('ablation', ['n_compare_dims'], [('mig', 'maximize')])
"""
from __future__ import annotations

import json
import math
import numbers
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

# Final-score names (docs/architecture.md); an in-training score carries a protocol prefix (`fast/mig`).
SCORE_NAMES = ["mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap",
               "modularity", "explicitness", "gaussian_tc", "factor_vae", "beta_vae"]
LOWER_IS_BETTER = {"gaussian_tc"}
# results.csv columns that are neither parameters nor scores
RESERVED = {"trial", "number", "trial_id", "seed", "status", "state", "error", "time", "duration",
            "duration_s", "time_s", "seconds", "started", "finished", "datetime_start",
            "datetime_complete", "step", "steps_done", "objective", "value", "config_id", "dir",
            "path", "trial_dir", "host", "node", "resumed_from", "images_per_sec", "final_protocol"}
PARAM_PREFIXES = ("params_", "param/", "params/", "config/")
STATUS_WORDS = {
    "finished": {"complete", "completed", "finished", "terminated", "done", "ok", "success"},
    "stopped early": {"pruned", "stopped", "early_stopped", "stopped_early", "stopped early"},
    "failed": {"fail", "failed", "error", "errored", "diverged"},
    "running": {"running", "pending", "waiting", "queued"},
}


class ReportError(RuntimeError):
    """The report cannot be built at all (the run folder does not exist)."""


@dataclass
class RunData:
    run_dir: Path
    study_text: str = ""  # study.yaml exactly as run
    study: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    results: pd.DataFrame = field(default_factory=pd.DataFrame)  # params by plain name, `status` normalised
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # trial, step, name, value
    optuna_study: Any = None
    params: list[str] = field(default_factory=list)  # parameters that vary across trials
    scores: list[str] = field(default_factory=list)  # final-score columns (no protocol prefix)
    fast_scores: list[str] = field(default_factory=list)  # prefixed in-training scores found in results.csv
    objectives: list[tuple[str, str]] = field(default_factory=list)  # (score, "maximize"|"minimize")
    kind: str = "search"  # "ablation", "search" or "comparison"
    problems: list[str] = field(default_factory=list)  # what is missing or unreadable, for the reader

    @property
    def name(self) -> str:
        return str(self.study.get("name") or self.meta.get("study") or self.run_dir.name)

    @property
    def preset(self) -> str:
        p = self.meta.get("preset") or self.study.get("preset")
        if not p and "-" in self.run_dir.name:
            p = self.run_dir.name.rsplit("-", 1)[1]
        return str(p or "?")

    @property
    def finished(self) -> pd.DataFrame:
        if self.results.empty:
            return self.results
        return self.results[self.results["status"] == "finished"]


def load_run(run_dir: str | Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ReportError(f"run folder {run_dir} does not exist (expected what `python -m orchestrator.study` writes)")
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is a file, not a run folder")
    run = RunData(run_dir=run_dir)
    _read_study(run)
    run.meta = _read_json(run, run_dir / "meta.json")
    _read_results(run)
    _read_curves(run)
    _read_optuna(run)
    _decide_kind(run)
    return run


def _read_json(run: RunData, path: Path) -> dict:
    if not path.exists():
        run.problems.append(f"{path.name}: missing")
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        run.problems.append(f"{path.name}: unreadable ({e})")
        return {}
    return data if isinstance(data, dict) else {}


def _read_study(run: RunData) -> None:
    path = run.run_dir / "study.yaml"
    if not path.exists():
        run.problems.append("study.yaml: missing, so the report cannot say how the study was defined")
        return
    run.study_text = path.read_text()
    try:
        data = yaml.safe_load(run.study_text)
    except yaml.YAMLError as e:
        run.problems.append(f"study.yaml: not valid YAML ({e})")
        return
    if not isinstance(data, dict):
        run.problems.append("study.yaml: expected a mapping at the top level")
        return
    run.study = data


def normalise_status(value: Any) -> str:
    text = str(value).strip().lower()
    text = text.split(".")[-1]  # "TrialState.COMPLETE" -> "complete"
    for word, spellings in STATUS_WORDS.items():
        if text in spellings:
            return word
    return text or "unknown"


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
    df = _read_csv(run, "results.csv", "missing (no trial has reported yet)")
    if df is None:
        return
    df = df.rename(columns={c: c[len(p):] for c in df.columns for p in PARAM_PREFIXES if c.startswith(p)})
    if "trial" not in df.columns:
        alt = next((c for c in ("number", "trial_id") if c in df.columns), None)
        if alt is None:
            run.problems.append("results.csv: no `trial` column; numbering rows from 0")
            df["trial"] = range(len(df))
        else:
            df["trial"] = df[alt]
    if "status" not in df.columns:
        df["status"] = df["state"] if "state" in df.columns else "finished"
    df["status"] = df["status"].map(normalise_status)
    if "error" not in df.columns:
        df["error"] = ""
    df["error"] = ["" if pd.isna(e) else str(e) for e in df["error"]]
    run.results = df

    space = study_space(run.study)
    run.scores = [c for c in df.columns if c in SCORE_NAMES or c in {o[0] for o in study_objectives(run.study)}]
    run.scores = [c for c in run.scores if "/" not in c and pd.api.types.is_numeric_dtype(df[c])]
    run.fast_scores = [c for c in df.columns if "/" in c and c.split("/", 1)[1] in SCORE_NAMES]
    candidates = list(space) if space else [c for c in df.columns if c not in RESERVED
                                            and c not in run.scores and c not in run.fast_scores]
    run.params = [c for c in candidates if c in df.columns and c != "seed" and df[c].nunique(dropna=True) > 1]
    missing = [p for p in space if p not in df.columns]
    if missing:
        run.problems.append(f"results.csv: no column for the study parameter(s) {missing}")
    run.objectives = study_objectives(run.study) or ([("mig", "maximize")] if "mig" in run.scores else [])
    run.objectives = [(m, d) for m, d in run.objectives if m in df.columns] or (
        [(run.scores[0], "maximize")] if run.scores else [])


def _read_curves(run: RunData) -> None:
    df = _read_csv(run, "curves.csv", "missing")
    if df is None:
        return
    need = {"trial", "step", "name", "value"}
    if not need <= set(df.columns):
        run.problems.append(f"curves.csv: expected columns {sorted(need)}, found {list(df.columns)}")
        return
    run.curves = df


def _read_optuna(run: RunData) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = run.study.get("search") or {}
    url = search.get("storage") if isinstance(search, dict) else None
    db = run.run_dir / "optuna.db"
    if db.exists():
        url = f"sqlite:///{db.resolve()}"
    if not url:
        run.problems.append("optuna.db: missing, so there is no search history")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            names = optuna.get_all_study_names(storage=url)
            wanted = [str(run.meta.get("optuna_study") or ""), f"{run.name}-{run.preset}", run.name]
            name = next((w for w in wanted if w in names), names[0] if len(names) == 1 else None)
            if name is None:
                run.problems.append(f"optuna storage {url}: {len(names)} studies and none named {run.name!r}")
                return
            run.optuna_study = optuna.load_study(study_name=name, storage=url)
    except Exception as e:  # a corrupt or foreign database: say so, draw the rest
        run.problems.append(f"optuna storage {url}: unreadable ({type(e).__name__}: {e})")


def _decide_kind(run: RunData) -> None:
    declared = str(run.study.get("kind") or run.study.get("type") or "").lower()
    search = run.study.get("search") or {}
    sampler = str(search.get("sampler") if isinstance(search, dict) else search).lower()
    swept = [p for p, v in study_space(run.study).items()
             if p != "seed" and len(grid_values(v) or [None, None]) > 1]
    if declared in ("ablation", "search", "comparison"):
        run.kind = declared
    elif sampler.startswith("grid") and len(swept) == 1:
        run.kind = "ablation"
    else:
        run.kind = "search"
    if run.kind == "ablation" and len(swept) == 1 and swept[0] not in run.params and swept[0] in run.results:
        run.params = [swept[0]] + run.params


def study_space(study: dict) -> dict[str, Any]:
    """The searched parameters and their specs, wherever the study file keeps them."""
    for holder in (study, study.get("search") if isinstance(study.get("search"), dict) else {}):
        for key in ("space", "search_space", "params", "parameters", "grid", "ablate", "ablation"):
            value = holder.get(key)
            if isinstance(value, dict) and value:
                return value
    return {}


def grid_values(spec: Any) -> list | None:
    """The finite list of values a parameter spec allows, or None for a continuous range."""
    if isinstance(spec, (list, tuple)):
        return list(spec)
    if isinstance(spec, dict):
        for key in ("values", "choices", "grid"):
            if isinstance(spec.get(key), (list, tuple)):
                return list(spec[key])
        return None
    return [spec]


def study_objectives(study: dict) -> list[tuple[str, str]]:
    """[(score, direction)] from `objective:` / `objectives:` (a name, a mapping, or a list of either)."""
    search = study.get("search") if isinstance(study.get("search"), dict) else {}
    raw = next((h[k] for h in (study, search) for k in ("objectives", "objective", "metrics", "metric")
                if h.get(k)), None)
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out = []
    directions = search.get("directions") or study.get("directions") or []
    for i, item in enumerate(items):
        if isinstance(item, dict) and len(item) == 1 and next(iter(item.values())) in ("maximize", "minimize"):
            name, direction = next(iter(item.items()))
        elif isinstance(item, dict):
            name = item.get("metric") or item.get("name") or item.get("score")
            direction = item.get("direction")
        else:
            name, direction = str(item), None
        if direction is None and i < len(directions):
            direction = directions[i]
        if direction is None:
            direction = study.get("direction") or search.get("direction")
        if direction is None:
            direction = "minimize" if name in LOWER_IS_BETTER else "maximize"
        out.append((str(name), str(direction).lower()))
    return out


def is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) and math.isfinite(x)
