"""Run a study: ``python -m orchestrator.study NAME|PATH [options]``.

    python -m orchestrator.study --list
    python -m orchestrator.study ablation_dims --preset smoke
    python -m orchestrator.study loss_weights --preset paper --address auto --max-concurrent 8
    python -m orchestrator.study studies/my.yaml --out runs/my --dashboard

The run folder (default ``runs/<study>-<preset>``) gets ``study.yaml`` (the study as run, preset
applied), ``meta.json``, ``optuna.db``, ``results.csv``, ``curves.csv``, ``trials/<number>/``, the label-free scores
``selection.csv`` (``--no-select`` skips them) and, when the report module is there, ``report.html``. Running the same command again continues the
study: finished trials are kept, unfinished ones run; ``--fresh`` starts over.

Example (Python):
    >>> run = run_study("ablation_dims", preset="smoke")          # doctest: +SKIP
    >>> run.results[["n_compare_dims", "mig"]]                      # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy.exc
import yaml

from did_core.atomic import atomic_path
from did_core.models import ModelSpec
from did_core.plugins import PluginError

from .run_folder.environment import capture
from .run_folder.tables import best_configurations, write_results
from .running.progress import restore_terminal, say
from .report.summary import summary_lines
from .study_file.plan import Study, study_as_dict
from .study_file.resolve import load_study
from .study_file import StudyError
from .study_file.listing import list_everything
from .run_folder.locks import lock_run_folder, lock_storage
from .running.local_ray import check_fits, living_nodes, ray_session, stop_leftovers
from .running.tuning import run_tune
from .run_folder.setup import empty_for_fresh, make_folder, refuse_links, unmake
from .run_folder.layout import LOCK_FILE, STUDY_FILE, RunMeta, Session, meta_of_same_study
from .run_folder.no_space import NoSpace, no_space
from .run_folder.reach import check_shared
from .run_folder.remote import RunStorage
from .running.rounds import next_round
from .running.search import in_memory, open_study, recover, remaining_trials, storage_url
from .running.trackers import TRACKERS, chosen_trackers, summary_lines as tracker_lines



@dataclass
class StudyRun:
    """What :func:`run_study` returns."""

    study: Study
    run_dir: Path
    storage: str
    results: pd.DataFrame
    best: pd.DataFrame  # best_configurations(results)
    interrupted: bool  # the session ended before every planned trial finished
    wall_s: float


def run_study(name_or_path: str | Path, preset: str = "smoke", out: str | Path | None = None,
              address: str | None = None, max_concurrent: int | None = None, dashboard: bool = False,
              fresh: bool = False, storage: str | None = None, model: ModelSpec | None = None,
              report: bool = True, log=say, cache: str | Path | None = None, select: bool = True,
              trackers: list[str] | tuple[str, ...] = (), tracking_uri: str | None = None,
              rounds: int | None = None) -> StudyRun:
    """Run (or continue) a study and return its tables. ``model`` replaces the registry lookup of
    the study's model (tests and benchmarks inject a toy model this way); ``report=False`` skips
    report.html, ``select=False`` the label-free scores (selection.csv, :mod:`orchestrator.select`).
    Every refusal (:class:`StudyError`) comes before the run folder is written to.
    ``out`` may be a storage URI (``s3://bucket/prefix``, :mod:`orchestrator.run_folder.remote`); the driver
    then keeps its files in the local folder ``cache`` (default ``runs/cache/<scheme>/<path>``).
    ``trackers`` (``tensorboard``, ``mlflow``) add to the study file's; ``tracking_uri``: MLflow's store
    (default ``sqlite:///RUN_DIR/mlflow.db``; :mod:`orchestrator.running.trackers`). ``rounds``: a seed
    plan's rounds to run in this session at most (a round a killed session left counts); the next
    round is queued, and the same command continues it (a CPU budget spent round by round)."""
    t0 = time.time()
    study = load_study(name_or_path, preset, model=model)
    study.trackers, study.tracking_uri = list(chosen_trackers(study.trackers, trackers)), tracking_uri
    if storage:
        study.storage = storage
    if study.storage and in_memory(study.storage):
        raise StudyError(f"{'--storage' if storage else study.source + ': search.storage'} {study.storage}: an "
                         "in-memory database keeps nothing once the command ends, so a rerun would train every "
                         "trial again; give a file (sqlite:///path/optuna.db) or a database server")
    remote = RunStorage.parse(out)
    run_dir = run_folder_of(study, out, cache)
    if address is None:
        check_fits(study, [{"CPU": os.cpu_count() or 1}], "this machine")
    with contextlib.ExitStack() as joined:
        if address:  # joined first: a study the cluster cannot hold is refused before anything is written
            joined.enter_context(ray_session(run_dir, address, dashboard, log))
            check_fits(study, living_nodes(), f"the largest node of the Ray cluster at {address}")
        return _in_run_folder(study, run_dir, remote, address, max_concurrent, dashboard, fresh, model,
                              (report, select), log, t0, rounds)


def _in_run_folder(study, run_dir, remote, address, max_concurrent, dashboard, fresh, model, outputs, log,
                   t0, rounds=None) -> StudyRun:
    if fresh:
        empty_for_fresh(run_dir)
    refuse_links(run_dir)  # a run folder handed over could link study.yaml, trials/<n>, ... to anything
    made = make_folder(run_dir)
    try:
        with lock_run_folder(run_dir):
            _stop_leftovers(run_dir, log)
            if remote is not None:
                remote.open(run_dir, fresh, log)  # reachable; emptied for --fresh, else copied into an empty cache
            elif address:
                check_shared(run_dir, address)  # a local --out on a cluster: refused unless every node sees it
            with lock_storage(storage_url(study, run_dir), study.run_name):
                return _run(study, run_dir, remote, address, max_concurrent, dashboard, fresh, model, outputs, log, t0,
                            rounds)
    except Exception as e:
        refusal = e if isinstance(e, StudyError) else no_space(e, str(run_dir))
        if refusal is None:
            raise
        unmake(run_dir, made)  # refused before any trial ran: leave no folder behind
        if refusal is e:
            raise
        raise refusal from None


def run_folder_of(study: Study, out: str | Path | None, cache: str | Path | None = None) -> Path:
    """The local run folder: ``--out``, or ``runs/<study>-<preset>``; for an ``--out`` URI, the
    driver's copy of it (``cache``, default ``runs/cache/<scheme>/<path>``). A file there is refused."""
    remote = RunStorage.parse(out)
    if remote is not None:
        out = cache or remote.default_cache()
    elif cache is not None:
        raise StudyError("--cache: only for an --out storage URI (s3://...); a local --out is its own folder")
    run_dir = Path(out or Path("runs") / study.run_name).resolve()
    if run_dir.exists() and not run_dir.is_dir():
        raise StudyError(f"--out {run_dir}: a file, not a folder")
    return run_dir


def cleanup(run_dir: Path, log=say) -> list[int]:
    """``--cleanup``: stop what a dead driver of ``run_dir`` left running (refused while a driver runs)."""
    if not (run_dir / LOCK_FILE).exists():
        raise StudyError(f"{run_dir}: not a run folder (no {LOCK_FILE})")
    with lock_run_folder(run_dir):
        return _stop_leftovers(run_dir, log) or []


def _stop_leftovers(run_dir: Path, log) -> list[int]:
    stopped = stop_leftovers(run_dir)
    if stopped:
        log(f"stopped {len(stopped)} process(es) a dead driver of this run folder left running: {stopped}")
    return stopped


def _run(study, run_dir, remote, address, max_concurrent, dashboard, fresh, model, outputs, log, t0,
         rounds=None) -> StudyRun:
    report, select = outputs
    url = storage_url(study, run_dir)
    meta = _check_meta(run_dir, study, url, fresh, log)  # another study into this folder is refused
    try:
        ostudy = open_study(study, run_dir, fresh=fresh)  # a different version of the study is refused
    except (ImportError, sqlalchemy.exc.SQLAlchemyError) as e:
        raise no_space(e, url) or StudyError(f"storage {url}: Optuna cannot open it ({type(e).__name__}: {e})") from None
    # written only now that nothing refuses the run: the folder's study.yaml is what its results used
    with atomic_path(run_dir / STUDY_FILE) as tmp:
        tmp.write_text(f"# {study.name} as run with preset {study.preset!r} (from {study.source})\n"
                       + yaml.safe_dump(study_as_dict(study), sort_keys=False))
    for old, _ in recover(ostudy, study):
        log(f"trial {old} was interrupted by the previous run; its configuration is queued again")
    done_before = len(write_results(run_dir, ostudy))
    meta = _start_meta(run_dir, study, url, meta)
    if study.sequential and done_before:  # the replay enqueues what the plan lacks: the trials of this round a
        next_round(study, ostudy, run_dir, url, meta, _decide, log=lambda *a: None)  # killed driver interrupted
        # (recover alone requeues only the first round's seeds), or the next round it had decided but not
        # enqueued; a round still waiting runs first: the next round is asked for once all of this one has ended
    todo = remaining_trials(ostudy, study)
    if remote is not None:
        remote.push_run(run_dir)  # trials check that the run folder is the driver's: meta.json is there
    log(f"study {study.name!r}, preset {study.preset!r} (model {', '.join(study.models)}, budget {study.budget!r}, "
        f"{study.steps_text}): {_planned_text(study, meta)}, {done_before} already finished, "
        f"{todo} to run\nrun folder: {remote.shown + ' (local cache ' + str(run_dir) + ')' if remote else run_dir}")

    rounds_left = rounds if study.sequential and rounds is not None else math.inf
    while todo > 0 and rounds_left > 0:  # one Tune session per round of the seed plan (a fixed plan: one session)
        rounds_left -= 1
        try:
            run_tune(study, ostudy, run_dir, remote, todo, address, max_concurrent, dashboard, model, meta, log)
        except Exception as e:  # Ray Tune wraps what failed: a full disk is said in one line
            full = no_space(e, str(run_dir))
            if full is None:
                raise
            raise full from None
        finally:
            if remote is not None:
                remote.pull_trials(run_dir)  # the trials' scores and traversals, for the tables and the report
        recover(ostudy, study)  # trials a Ctrl-C stopped: marked interrupted and queued again
        if remaining_trials(ostudy, study) > 0 or not study.sequential:
            break
        write_results(run_dir, ostudy)
        todo = next_round(study, ostudy, run_dir, url, meta, _decide, log)
    interrupted = remaining_trials(ostudy, study) > 0

    df = write_results(run_dir, ostudy)
    meta.sessions[-1].finished, meta.sessions[-1].interrupted = _now(), interrupted
    meta.write(run_dir)
    objectives = [(o.metric, o.direction) for o in study.objectives]
    best = best_configurations(df, objectives)
    if select and not interrupted:
        _select(run_dir, remote, model, log)
    # the run folder read once: for the report and for the summary's ablation tests
    run_data = _read_run(run_dir, url, log, report) if report or study.kind in ("ablation", "comparison") else None
    if report and run_data is not None:
        _build_report(run_data, log, [model] if model else None)
    if remote is not None:
        remote.push_run(run_dir)
    log("\n".join(summary_lines(study, run_dir, url, df, best, interrupted, meta.planned_trials, run_data,
                               tracker_lines(study, run_dir))))
    return StudyRun(study=study, run_dir=run_dir, storage=url, results=df, best=best,
                    interrupted=interrupted, wall_s=time.time() - t0)


def _check_meta(run_dir: Path, study: Study, url: str, fresh: bool, log) -> RunMeta | None:
    """The folder's meta.json (another study's folder is refused); a study that now plans more (or
    fewer) trials, e.g. more seeds, is said."""
    meta = None if fresh else meta_of_same_study(run_dir, study.run_name, url, own_storage=not study.storage)
    if meta is not None and not study.sequential and meta.planned_trials != study.planned_trials:
        log(f"the study now plans {study.planned_trials} trials (this run folder planned {meta.planned_trials}, "
            "e.g. another number of seeds): finished trials are kept, the plan is "
            + ("extended" if study.planned_trials > meta.planned_trials else "reduced"))
        meta.planned_trials = study.planned_trials
    return meta


def _decide(run_dir: Path, url: str):
    """The run folder's rounds as its trials stand (the report reads the folder; verdicts decide)."""
    from .report.findings import decide_run

    return decide_run(run_dir, storage=url)


def _planned_text(study: Study, meta: RunMeta) -> str:
    if not study.sequential:
        return f"{study.planned_trials} trials planned"
    most = study.n_configs * study.plan.maximum
    return (f"{meta.planned_trials} trials planned so far (seed plan: looks at "
            f"{', '.join(map(str, study.plan.sizes))} seeds a side; at most {most} trials)")


def _read_run(run_dir: Path, storage: str, log, for_report: bool):
    """The run folder as the report reads it (``report.data.RunData``; the storage this command ran on,
    wherever it is), or None where the report's modules are missing or the folder cannot be read
    (said when the report was asked for)."""
    try:
        from .report.data import load_run
    except ImportError:
        return None
    try:
        return load_run(run_dir, storage=storage)
    except Exception as e:  # the study's results are written; a report problem must not hide them
        if for_report:
            log(f"report: could not be built ({type(e).__name__}: {e})")
        return None


def _build_report(run_data, log, models: list[ModelSpec] | None) -> None:
    from .report import write_report

    try:
        write_report(run_data, models=models)
    except Exception as e:  # the study's results are written; a report problem must not hide them
        log(f"report: could not be built ({type(e).__name__}: {e})")


def _select(run_dir: Path, remote, model: ModelSpec | None, log) -> None:
    """The label-free scores of the finished study (selection.csv); a problem is said, never raised."""
    from .select import select_run

    try:
        select_run(run_dir, remote=remote, models={model.name: model} if model else None, log=log)
    except Exception as e:  # the study's results are written; the selection must not hide them
        log(f"selection: could not be computed ({type(e).__name__}: {e}); run python -m orchestrator.select {run_dir}")


def _start_meta(run_dir: Path, study: Study, url: str, meta: RunMeta | None) -> RunMeta:
    if meta is None:
        meta = RunMeta(study=study.name, preset=study.preset, budget=study.budget, models=study.models,
                       kind=study.kind, source=study.source, storage=url, optuna_study=study.run_name,
                       steps=study.steps, eval_protocol=study.eval_protocol, final_protocol=study.final_protocol,
                       planned_trials=study.planned_trials, started=_now(),
                       objectives=[(o.metric, o.direction) for o in study.objectives], description=study.description,
                       arms=[a.label for a in study.arms] if study.comparison else [], datasets=list(study.datasets),
                       sampler=study.sampler, defaults=study.defaults(), controls=study.controls)
    meta.seed_plan = {"seeds": list(study.plan.seeds), "sizes": list(study.plan.sizes)} if study.sequential else {}
    meta.rules = {o.metric: {"alpha": o.alpha, "margin": o.margin} for o in study.objectives}
    env = capture()
    meta.host, meta.gpus, meta.packages, meta.git = env["host"], env["gpus"], env["packages"], env["git"]
    meta.python, meta.platform = env["python"], env["platform"]
    meta.sessions.append(Session(started=_now(), command=list(sys.argv), host=env["host"], git=env["git"],
                                 cpu=env["cpu"]))
    meta.write(run_dir)
    return meta


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m orchestrator.study", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", nargs="?", help="a built-in study name (see --list) or a path to a study file")
    ap.add_argument("--list", action="store_true", help="list the built-in studies and the registered models, "
                                                        "datasets and metrics (plugins included), then exit")
    ap.add_argument("--preset", default="smoke", help="budget preset: smoke, quick, paper, or one the study defines")
    ap.add_argument("--out", help="run folder (default runs/<study>-<preset>): a path, or a storage URI every "
                                  "node reaches (s3://bucket/prefix; see docs/cluster.md)")
    ap.add_argument("--cache", help="with an --out URI: the driver's local copy of the run folder "
                                    "(default runs/cache/<scheme>/<bucket>/<prefix>)")
    ap.add_argument("--address", help="join this Ray cluster (e.g. auto, or HEAD_IP:6379) instead of starting one")
    ap.add_argument("--max-concurrent", type=int, help="at most this many trials at once")
    ap.add_argument("--dashboard", action="store_true", help="start the Ray dashboard on 127.0.0.1")
    ap.add_argument("--fresh", action="store_true", help="delete what an earlier run left and start over")
    ap.add_argument("--storage", help="Optuna storage URL (default sqlite:///RUN_DIR/optuna.db)")
    ap.add_argument("--no-select", action="store_true",
                    help="skip the label-free scores at the end (UDR, ModelCentrality: python -m orchestrator.select)")
    ap.add_argument("--cleanup", action="store_true",
                    help="stop what a dead driver of the run folder left running (Ray's agents), then exit")
    ap.add_argument("--tracker", action="append", default=[], choices=TRACKERS,
                    help="also write each trial's config, curves and scores to this tracker, offline (repeat for "
                         "several; docs/running.md): tensorboard (RUN_DIR/tensorboard), mlflow (RUN_DIR/mlflow.db)")
    ap.add_argument("--tracking-uri", help="MLflow's tracking URI (default sqlite:///RUN_DIR/mlflow.db)")
    ap.add_argument("--rounds", type=int, help="a seed plan: run at most this many rounds now, then stop with the "
                                               "next round queued (the same command continues it)")
    args = ap.parse_args(argv)
    if args.list:
        return 0 if list_everything() else 2
    if not args.study:
        ap.error("name a study (or use --list)")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        ap.error("--max-concurrent must be >= 1")
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be >= 1")
    try:
        if args.cleanup:
            run_dir = run_folder_of(load_study(args.study, args.preset), args.out, args.cache)
            print(f"{run_dir}: stopped {len(cleanup(run_dir, log=lambda *a: None))} leftover process(es)")
            return 0
        run = run_study(args.study, preset=args.preset, out=args.out, address=args.address,
                        max_concurrent=args.max_concurrent, dashboard=args.dashboard, fresh=args.fresh,
                        storage=args.storage, cache=args.cache, select=not args.no_select, trackers=args.tracker,
                        tracking_uri=args.tracking_uri, rounds=args.rounds)
    except NoSpace as e:  # not bad input: the study is interrupted, and continues when rerun
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (StudyError, PluginError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to continue the study", file=sys.stderr)
        return 130
    finally:
        restore_terminal()  # the live block's cursor, whatever ended the command (a second Ctrl-C too)
    return 1 if run.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
