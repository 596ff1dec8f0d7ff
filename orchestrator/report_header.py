"""The report's header: what ran, where, with what code, and how the trials ended.

Reads ``meta.json`` as ``python -m orchestrator.study`` writes it (study, preset, budget, model,
started, sessions[], host, gpus, platform, python, packages, git{rev, dirty}) and still shows
whatever else it holds.

Example:
    >>> html = header_table(load_run("runs/ablation_dims-smoke"), {"finished": 10, "failed": 0})
"""
from __future__ import annotations

import datetime as dt
import json

from .report_data import RunData
from .report_html import table

SHOWN = {"study", "preset", "budget", "model", "kind", "started", "finished", "sessions", "host", "gpus", "gpu",
         "platform", "python", "packages", "versions", "git", "git_revision", "cpus", "planned_trials", "source",
         "storage", "optuna_study"}


def header_table(run: RunData, counts: dict[str, int]) -> str:
    m = run.meta
    sessions = [s for s in m.get("sessions") or [] if isinstance(s, dict)]
    last = sessions[-1] if sessions else {}
    finished = m.get("finished") or last.get("finished")
    if finished and last.get("interrupted"):
        finished = f"{finished} (interrupted: not every planned trial ran)"
    gpus = m.get("gpus", m.get("gpu"))
    gpu_text = _flat(gpus) if gpus else "none (CPU only)"
    ray = last.get("ray") or {}
    planned = m.get("planned_trials")
    trials = ", ".join(f"{v} {k}" for k, v in counts.items()) + (f" (of {planned} planned)" if planned else "")
    rows = [
        ["study", f"{run.name}" + (f" — {run.study.get('description')}" if run.study.get("description") else "")],
        ["preset", f"{run.preset}" + (f" (model budget {m.get('budget') or run.study.get('budget')})"
                                      if m.get("budget") or run.study.get("budget") else "")],
        ["model", m.get("model") or run.study.get("model") or "unknown"],
        ["kind", f"ablation of {run.params[0]}" if run.kind == "ablation" and run.params else
                 f"comparison of {', '.join(run.study.get('arms') or []) or 'several models'} on "
                 f"{', '.join(run.study.get('datasets') or []) or 'one dataset'}" if run.kind == "comparison" else
                 f"search ({_sampler(run)} sampler)"],
        ["objectives", ", ".join(f"{s} ({d})" for s, d in run.objectives) or "unknown"],
        ["trials", trials],
        ["started", m.get("started") or "unknown"],
        ["finished", finished or "not recorded (still running, or the process was killed)"],
        ["host", m.get("host") or last.get("host") or "unknown"],
        ["hardware", "; ".join(x for x in (str(m.get("platform") or ""), f"GPU: {gpu_text}",
                                          f"Ray: {ray.get('nodes')} node(s), {ray.get('gpus_per_trial')} GPU per "
                                          f"trial" if ray else "") if x)],
        ["python", m.get("python") or "unknown"],
        ["packages", _flat(m.get("packages") or m.get("versions") or "unknown")],
        ["code revision", _git(m.get("git") or m.get("git_revision"))],
        ["score protocols", _protocol(run)],
        ["sessions", "; ".join(f"{s.get('started')} → {s.get('finished', 'unfinished')}" for s in sessions)
         or "not recorded"],
        ["run folder", str(run.run_dir.resolve())],
        ["report built", dt.datetime.now().astimezone().isoformat(timespec="seconds")],
    ]
    rows += [[k, _flat(v)] for k, v in m.items() if k not in SHOWN]
    return table(["", ""], rows)


def _git(g) -> str:
    if isinstance(g, dict):
        if not g.get("rev"):
            return "unknown (not a git checkout)"
        return f"{g['rev']}" + (" with uncommitted changes" if g.get("dirty") else "")
    return str(g or "unknown")


def _flat(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_flat(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "; ".join(_flat(x) for x in v)
    return str(v)


def _sampler(run: RunData) -> str:
    search = run.study.get("search")
    return str(search.get("sampler", "unnamed")) if isinstance(search, dict) else "unnamed"


def _protocol(run: RunData) -> str:
    """Final and in-training protocols: results.csv's final_protocol, else the first trial's config.json."""
    if "final_protocol" in run.results:
        finals = sorted(str(p) for p in run.results["final_protocol"].dropna().unique())
        if len(finals) > 1:
            return f"MIXED final-score protocols {finals}: the final scores of these trials are not comparable"
    for path in sorted((run.run_dir / "trials").glob("*/config.json"))[:3] + sorted(
            (run.run_dir / "trials").glob("*/trial.json"))[:3]:
        try:
            cfg = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        cfg = cfg.get("config", cfg)
        if "final_protocol" in cfg:
            return (f"final scores: {cfg['final_protocol']}; in-training scores: {cfg.get('eval_protocol', '?')} "
                    "(never compare scores of different protocols)")
    return "unknown (no trials/*/config.json)"
