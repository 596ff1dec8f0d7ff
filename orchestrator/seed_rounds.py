"""A study's rounds of seeds, driven from its run folder: after each round the trials are replayed
(:func:`orchestrator.verdicts.rounds.replay_rounds`), every look is written to ``looks.csv``, and
the trials the next round needs are enqueued in the Optuna storage. Each step is a function of the
trials that ended, so a driver killed anywhere and started again enqueues exactly what is missing:
never a trial twice, and a trial it killed continues from its checkpoint.

Example:
    >>> todo = next_round(study, ostudy, run_dir, url, meta, log=print)     # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from .plan import Study
from .results import INTERRUPTED
from .run_folder import RunMeta
from .search import recover, remaining_trials
from .verdicts.looks import write_looks
from .verdicts.rounds import Replay


def replay_folder(run_dir: Path, url: str) -> Replay:
    """The run folder's rounds as its trials stand (``results.csv`` written just before)."""
    from .report.data import load_run
    from .report.findings import decide

    return decide(load_run(run_dir, storage=url))


def next_round(study: Study, ostudy: optuna.Study, run_dir: Path, url: str, meta: RunMeta, log) -> int:
    """Write the looks so far, enqueue what the next round needs, and return the trials to run
    (0: every comparison decided, or the plan spent)."""
    replay = replay_folder(run_dir, url)
    write_looks(run_dir, replay.looks)
    recover(ostudy, study, wanted=replay.missing)
    todo = remaining_trials(ostudy, study)
    meta.planned_trials = planned(ostudy)
    meta.write(run_dir)
    if todo:
        open_ = sorted({v.comparison.label for v in replay.verdicts if v.objective and v.decision == "undecided"})
        n = study.plan.sizes[min(replay.rounds, len(study.plan.sizes) - 1)]
        log(f"round {replay.rounds + 1} of the seed plan: {todo} trial(s) to run, {n} seeds a side for the "
            f"undecided comparison(s): {'; '.join(open_) or '(the first round)'}")
    return todo


def planned(ostudy: optuna.Study) -> int:
    """Trials asked for so far: those that ended (not counting interrupted attempts) and those waiting."""
    return sum(1 for t in ostudy.get_trials(deepcopy=False)
               if t.state == TrialState.WAITING or t.state == TrialState.RUNNING
               or (t.state.is_finished() and not t.user_attrs.get(INTERRUPTED)))
