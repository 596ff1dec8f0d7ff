"""The run folder: one module owns its layout, its file names, the columns of its tables and its
JSON records. The study writes it and the report reads it through the names and records here.

    runs/<study>-<preset>/
      study.yaml        the study as run (preset applied)
      meta.json         :class:`RunMeta`: what ran, where, when, with which code
      optuna.db         the Optuna storage (unless the study names another URL)
      results.csv       one row per finished trial (:data:`RESULT_COLUMNS`)
      curves.csv        trial, step, name, value (:data:`CURVE_COLUMNS`)
      looks.csv         every look of the study's decisions (:mod:`orchestrator.verdicts.looks`)
      selection.csv     one row per finished trial: the label-free scores (:class:`SelectionRow`)
      selection/        what ``python -m orchestrator.select`` caches: codes per trial, ModelCentrality's pairs
      trials/<number>/  trial.json (:class:`TrialRecord`), config.json, scores.json, traversal.png,
                        checkpoint.pt, error.txt, and the model's own files (PartedVAE's swap.png,
                        V3's codebook.json: the model's report parts name them, did_core.models.report)
      report.html
      export/           python -m orchestrator.report RUN_DIR --export: tables (.tex, .csv), figures (.svg, .pdf)

``results.csv``: ``trial, config_id, seed, status, params_<name>..., <score>..., <protocol>/<score>...,
step, final_protocol, duration_s, node, host, started, finished, resumed_from, error``. Final scores
go by their name (``mig``): a run folder holds the final scores of one protocol only,
``RunMeta.final_protocol`` (the study refuses a mix, see :mod:`orchestrator.running.search`); the last
in-training scores go by ``<protocol>/<score>`` (``fast/mig``). ``status`` is one of :class:`Status`.

Example:
    >>> meta = RunMeta.read("runs/ablation_dims-smoke")
    >>> meta.final_protocol, Status.COMPLETE.label
    ('fast', 'finished')
"""
from __future__ import annotations

import csv
import dataclasses
import enum
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from did_core.atomic import atomic_path

STUDY_FILE, META_FILE, OPTUNA_DB = "study.yaml", "meta.json", "optuna.db"
RESULTS_FILE, CURVES_FILE, REPORT_FILE, TRIALS_DIR = "results.csv", "curves.csv", "report.html", "trials"
from ..verdicts.looks import LOOKS_FILE  # noqa: E402  the decisions' looks (orchestrator/verdicts/looks.py)
TRIAL_FILE, ERROR_FILE, TRAVERSAL_FILE = "trial.json", "error.txt", "traversal.png"
RUN_FILES = (STUDY_FILE, META_FILE, OPTUNA_DB, RESULTS_FILE, CURVES_FILE)
LOCK_FILE, RAY_DIR = ".lock", "ray"  # the driver's lock (orchestrator.run_folder.locks); Ray Tune's own files
EXPORT_DIR = "export"  # python -m orchestrator.report RUN_DIR --export: LaTeX, CSV, SVG, PDF
SELECTION_FILE, SELECTION_DIR = "selection.csv", "selection"  # orchestrator.select: its table and its cache
TENSORBOARD_DIR, MLFLOW_DB, MLFLOW_ARTIFACTS = "tensorboard", "mlflow.db", "mlflow-artifacts"  # orchestrator.running.trackers
# every name a run folder holds: its files, SQLite's journal, and a file being written (did_core.atomic)
RUN_ENTRIES = frozenset({*RUN_FILES, LOOKS_FILE, REPORT_FILE, TRIALS_DIR, RAY_DIR, LOCK_FILE, EXPORT_DIR, SELECTION_FILE,
                         SELECTION_DIR, TENSORBOARD_DIR, MLFLOW_DB, MLFLOW_ARTIFACTS,
                         *(db + s for db in (OPTUNA_DB, MLFLOW_DB) for s in ("-journal", "-wal", "-shm"))})

PARAM_PREFIX = "params_"
LEAD_COLUMNS = ["trial", "config_id", "seed", "status"]
TRAIL_COLUMNS = ["step", "final_protocol", "duration_s", "node", "host", "started", "finished", "resumed_from", "error"]
CURVE_COLUMNS = ["trial", "step", "name", "value"]
LOSS_PREFIX = "loss/"  # a curve of a loss: loss/<name>; a score: <protocol>/<score>
THROUGHPUT = "images_per_sec"


class Status(str, enum.Enum):
    """How a trial ended: Optuna's state names, written as they are in results.csv."""

    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"
    RUNNING = "RUNNING"
    WAITING = "WAITING"

    @property
    def label(self) -> str:
        """The word the report uses."""
        return {"COMPLETE": "finished", "PRUNED": "stopped early", "FAIL": "failed"}.get(self.value, "running")


def param_column(name: str) -> str:
    return PARAM_PREFIX + name


def score_column(name: str, protocol: str | None = None) -> str:
    """``mig`` for a final score, ``fast/mig`` for an in-training one."""
    return f"{protocol}/{name}" if protocol else name


def is_in_training(column: str) -> bool:
    return "/" in column


def trial_dir(run_dir: str | Path, number: int) -> Path:
    return Path(run_dir) / TRIALS_DIR / str(number)


def not_a_run_folder(run_dir: str | Path) -> str | None:
    """Why ``run_dir`` may not be emptied as a run folder (``--fresh``), or None when it may.

    It may when it is missing, holds nothing but the lock, or holds nothing a run folder does not
    hold (a file or folder of any other name is someone's: ``--fresh`` never deletes it) and either
    a ``meta.json`` that reads as :class:`RunMeta` or, beside an unreadable one (cut short by a
    full disk), the driver's lock (no one but the study command makes a ``.lock``)."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        return f"{run_dir} is not a folder"
    names = {p.name for p in run_dir.iterdir()}
    if names <= {LOCK_FILE}:
        return None
    foreign = sorted(n for n in names if n not in RUN_ENTRIES and not n.endswith(".tmp"))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        return f"{run_dir} holds what a run folder does not ({shown})"
    try:
        RunMeta.read(run_dir)
    except (OSError, ValueError, TypeError) as e:
        if LOCK_FILE in names and META_FILE in names:
            return None
        return f"{run_dir} has no readable {META_FILE} ({type(e).__name__}: {e})"
    return None


def meta_of_same_study(run_dir: str | Path, optuna_study: str, storage: str, own_storage: bool) -> "RunMeta | None":
    """The folder's :class:`RunMeta` (None in a new folder); ``StudyError`` when the folder holds
    another Optuna study (another study name or preset) or one in another storage: a run folder
    holds one study, so two never mix their tables. ``own_storage``: the folder's own optuna.db."""
    from ..study_file import StudyError

    run_dir = Path(run_dir)
    if not (run_dir / META_FILE).exists():
        return None
    try:
        meta = RunMeta.read(run_dir)
    except (OSError, ValueError, TypeError) as e:
        why = not_a_run_folder(run_dir)
        advice = "run with --fresh to start over" if why is None else f"--fresh would refuse it ({why})"
        raise StudyError(f"{run_dir / META_FILE}: unreadable ({type(e).__name__}: {e}); {advice}, or give "
                         "another --out") from None
    own = "the folder's own optuna.db"
    theirs = own if own_storage and meta.storage.endswith("/" + OPTUNA_DB) else meta.storage
    ours = own if own_storage else storage
    if meta.optuna_study != optuna_study or theirs != ours:
        raise StudyError(f"{run_dir}: this run folder holds the Optuna study {meta.optuna_study!r} in {theirs}, not "
                         f"{optuna_study!r} in {ours}; give another --out, or --fresh to start over")
    return meta


def held(run_dir: str | Path, path: str | Path) -> bool:
    """Whether ``path`` is a file the run folder itself holds (a link out of it is not): what a
    report embeds, since a run folder handed over could link to any local file."""
    try:
        return Path(path).is_file() and Path(path).resolve().is_relative_to(Path(run_dir).resolve())
    except OSError:
        return False


def links_in(run_dir: str | Path) -> list[Path]:
    """The symbolic links anywhere inside ``run_dir`` (not followed): a run folder someone hands
    you could link ``study.yaml``, ``curves.csv`` or ``trials/<n>`` to any file or folder of yours,
    which the study command would then write to. (``run_dir`` itself may be a link: you chose it.)"""
    found = []
    for root, dirs, files in os.walk(run_dir):  # does not descend into linked folders
        found += [Path(root) / n for n in dirs + files if (Path(root) / n).is_symlink()]
    return sorted(found)


def write_json(path: Path, data: Any) -> None:
    """Whole or not at all (a reader never sees half a file)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=str))


class _Record:
    """A JSON file as a dataclass: unknown keys are refused, so a change of format is loud."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown key(s) {unknown}")
        return cls(**{**data, **cls._nested(data)})

    @classmethod
    def _nested(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The values of ``data`` that are records themselves, as records."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Session(_Record):
    """One ``python -m orchestrator.study`` process that worked on the run folder."""

    started: str
    command: list[str]
    host: str
    git: dict[str, Any]
    ray: dict[str, Any] | None = None  # address, nodes, resources, gpus_per_trial, max_concurrent
    cpu: str = ""  # the driver's processor (each trial's own: trial.json's environment)
    finished: str | None = None
    interrupted: bool | None = None


@dataclass
class RunMeta(_Record):
    """``meta.json``."""

    study: str
    preset: str
    budget: str
    models: list[str]
    kind: str  # ablation | search | comparison
    source: str  # the study file
    storage: str  # the Optuna storage URL
    optuna_study: str
    steps: int
    eval_protocol: str  # the protocol of the in-training scores (<protocol>/<score> columns)
    final_protocol: str  # the protocol of every final score in results.csv
    planned_trials: int
    started: str
    objectives: list[tuple[str, str]] = field(default_factory=list)  # (score, maximize | minimize)
    description: str = ""
    arms: list[str] = field(default_factory=list)  # a comparison's methods
    datasets: list[str] = field(default_factory=list)  # a comparison's datasets
    sampler: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)  # each searched parameter's Config default
    controls: list[dict[str, Any]] = field(default_factory=list)  # configurations run beside the grid
    seed_plan: dict[str, list[int]] = field(default_factory=dict)  # {seeds, sizes}; empty: the seeds run, one look
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # objective -> {alpha, margin}
    host: str = ""
    gpus: list[Any] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)
    git: dict[str, Any] = field(default_factory=dict)
    python: str = ""
    platform: str = ""
    sessions: list[Session] = field(default_factory=list)

    @classmethod
    def _nested(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {"sessions": [Session.from_dict(s) for s in data.get("sessions", [])],
                "objectives": [tuple(o) for o in data.get("objectives", [])]}

    @classmethod
    def read(cls, run_dir: str | Path) -> "RunMeta":
        return cls.from_dict(json.loads((Path(run_dir) / META_FILE).read_text()))

    def write(self, run_dir: str | Path) -> None:
        write_json(Path(run_dir) / META_FILE, self.to_dict())


@dataclass
class TrialRecord(_Record):
    """``trials/<number>/trial.json``: what the trial ran, written when it starts."""

    number: int
    config_id: Any
    seed: int
    params: dict[str, Any]
    model: str
    budget: str
    config: dict[str, Any]  # the model Config, every field
    resumed_from: int | None
    node: str
    host: str
    started: float
    environment: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: str | Path) -> "TrialRecord":
        return cls.from_dict(json.loads((Path(folder) / TRIAL_FILE).read_text()))

    def write(self, folder: str | Path) -> None:
        write_json(Path(folder) / TRIAL_FILE, self.to_dict())


@dataclass
class SelectionRow:
    """One row of ``selection.csv`` (:mod:`orchestrator.select`): a finished trial's label-free scores.

    ``udr_*`` is the trial's UDR among the seeds of its configuration (``udr_n`` of them; empty
    with fewer than 2), ``model_centrality`` its ModelCentrality among the ``mc_n`` models with a
    generator on its dataset; ``note`` says why a score is missing. ``protocol`` names the sizes used."""

    trial: int
    config_id: Any
    configuration: str  # the configuration's parameters as text (``beta=4, method=beta_vae``)
    seed: int
    model: str
    dataset: str
    udr_lasso: float | None = None
    udr_spearman: float | None = None
    udr_n: int = 0
    model_centrality: float | None = None
    mc_n: int = 0
    protocol: str = ""
    note: str = ""


SELECTION_COLUMNS = [f.name for f in dataclasses.fields(SelectionRow)]
SELECTION_SCORES = ("udr_lasso", "udr_spearman", "model_centrality")  # each: maximize


def write_selection(run_dir: str | Path, rows: list[SelectionRow]) -> Path:
    """Rewrite ``selection.csv`` whole or not at all (the shared, spreadsheet-safe writer of
    :func:`orchestrator.results.write_csv`); missing scores are empty cells."""
    import pandas as pd

    from .tables import write_csv  # late: results reads this module's names

    df = pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=SELECTION_COLUMNS)
    return write_csv(Path(run_dir) / SELECTION_FILE, df)


def read_selection(run_dir: str | Path):
    """``selection.csv`` as a pandas table (None when the folder has none); its columns are
    :data:`SELECTION_COLUMNS` and its score columns numbers, so a file of another format, or one
    edited by hand, is refused (ValueError naming the file and the column)."""
    import pandas as pd

    from .tables import read_csv

    path = Path(run_dir) / SELECTION_FILE
    if not path.is_file():
        return None
    df = read_csv(path, dtype={"note": str, "configuration": str, "model": str, "dataset": str, "protocol": str},
                  keep_default_na=True)
    if list(df.columns) != SELECTION_COLUMNS:
        raise ValueError(f"{path}: expected the columns {SELECTION_COLUMNS}, found {list(df.columns)}")
    for column in (*SELECTION_SCORES, "trial", "seed", "udr_n", "mc_n"):
        numbers = pd.to_numeric(df[column], errors="coerce")
        bad = df[column][numbers.isna() & df[column].notna()]
        if len(bad):
            raise ValueError(f"{path}: column {column!r} holds {str(bad.iloc[0])[:40]!r} (row {bad.index[0] + 1}), "
                             "not a number; run python -m orchestrator.select again to rewrite it")
        df[column] = numbers
    note = df["note"].astype(object)  # all empty reads back as float NaN
    return df.assign(note=note.where(note.notna(), ""))
