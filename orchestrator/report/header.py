"""The report's header: what ran, where, with what code, and how the trials ended (from meta.json).

Paths are shown relative to the run folder (its own ``optuna.db``, a SQLite storage beside it), never
as the absolute paths of the machine that ran it: a report handed to someone else stays true, and
says nothing of that machine's folders. A database server's URL is shown without its password.

Example:
    >>> html = header_table(load_run("runs/ablation_dims-smoke"), {"finished": 10, "failed": 0})
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from ..run_folder.layout import OPTUNA_DB, held
from .data import RunData
from .html import table


def header_table(run: RunData, counts: dict[str, int]) -> str:
    m = run.meta
    if m is None:
        return table(["", ""], [["study", run.name], ["run folder", _folder(run.run_dir)],
                                ["meta.json", "missing: where, when and with what code this ran is unknown"]])
    last = m.sessions[-1] if m.sessions else None
    finished = last.finished if last else None
    if finished and last.interrupted:
        finished = f"{finished} (interrupted: not every planned trial ran)"
    ray = (last.ray if last else None) or {}
    trials = ", ".join(f"{v} {k}" for k, v in counts.items()) + f" (of {m.planned_trials} planned)"
    if run.kind == "ablation" and run.params:
        kind = f"ablation of {run.params[0]}"
    elif run.kind == "comparison":
        kind = f"comparison of {', '.join(m.arms)} on {', '.join(m.datasets)}"
    else:
        kind = f"search ({m.sampler} sampler)"
    rows = [
        ["study", m.study + (f" — {m.description}" if m.description else "")],
        ["preset", f"{m.preset} (model budget {m.budget})"],
        ["model", ", ".join(m.models)],
        ["kind", kind],
        ["objectives", ", ".join(f"{s} ({d})" for s, d in run.objectives) or "unknown"],
        ["trials", trials],
        ["started", m.started],
        ["finished", finished or "not recorded (still running, or the process was killed)"],
        ["host", m.host or "unknown"],
        ["hardware", "; ".join(x for x in (m.platform, f"GPU: {_flat(m.gpus) if m.gpus else 'none (CPU only)'}",
                                          f"Ray: {ray.get('nodes')} node(s), {ray.get('gpus_per_trial')} GPU per "
                                          f"trial" if ray else "") if x)],
        ["python", m.python or "unknown"],
        ["packages", _flat(m.packages) or "unknown"],
        ["code revision", _git(m.git)],
        ["score protocols", f"final scores: {m.final_protocol}; in-training scores: {m.eval_protocol} "
                            "(never compare scores of different protocols)"],
        ["sessions", "; ".join(f"{s.started} → {s.finished or 'unfinished'}" + (f" on {s.cpu}" if s.cpu else "")
                              for s in m.sessions) or "not recorded"],
        ["run folder", _folder(run.run_dir)],
        ["optuna", f"{storage_shown(m.storage, run.run_dir)} (study {m.optuna_study})"],
        ["report built", dt.datetime.now().astimezone().isoformat(timespec="seconds")],
    ]
    return table(["", ""], rows)


def _folder(run_dir: Path) -> str:
    return f"{run_dir.resolve().name} (paths below are relative to it)"


def storage_shown(url: str, run_dir: Path) -> str:
    """The Optuna storage ``url`` as the header shows it: the run folder's own SQLite file as
    ``sqlite: optuna.db``, another SQLite file by its path relative to the run folder, a server's URL
    without its password.

    >>> storage_shown("sqlite:////home/me/runs/x-smoke/optuna.db", Path("runs/x-smoke"))  # doctest: +SKIP
    'sqlite: optuna.db (in the run folder)'
    """
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.name == OPTUNA_DB and held(run_dir, run_dir / OPTUNA_DB):  # where it ran: this folder's own
            return f"sqlite: {OPTUNA_DB} (in the run folder)"
        rel = os.path.relpath(path, run_dir.resolve()) if path.is_absolute() else str(path)
        return f"sqlite: {rel} (relative to the run folder)"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL SQLAlchemy reads: shown as recorded
        return url


def _git(g: dict) -> str:
    if not g.get("rev"):
        return "unknown (not a git checkout)"
    return f"{g['rev']}" + (" with uncommitted changes" if g.get("dirty") else "")


def _flat(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_flat(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "; ".join(_flat(x) for x in v)
    return str(v)
