"""A study's rounds of seeds, driven from its run folder: after each round the trials are replayed
(:func:`orchestrator.verdicts.rounds.replay_rounds`), every look is written to ``looks.csv``, and
the trials the next round needs are enqueued in the Optuna storage. Each step is a function of the
trials that ended, so a driver killed anywhere and started again enqueues exactly what is missing:
never a trial twice, and a trial it killed continues from its checkpoint.

``decide`` reads the folder's decisions (the study command hands in
:func:`orchestrator.report.findings.decide_run`: reading a run folder is the report's, a room above).

Example:
    >>> todo = next_round(study, ostudy, run_dir, url, meta, decide_run, log=print)     # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import optuna
from optuna.trial import TrialState

from ..run_folder.layout import RunMeta
from ..run_folder.tables import INTERRUPTED
from ..study_file.plan import Study
from ..verdicts.looks import write_looks
from ..verdicts.rounds import Replay
from .search import recover, remaining_trials

Decide = Callable[[Path, str], Replay]  # (run folder, Optuna storage URL) -> its rounds as the trials stand


def next_round(study: Study, ostudy: optuna.Study, run_dir: Path, url: str, meta: RunMeta, decide: Decide,
               log) -> int:
    """Write the looks so far, enqueue what the next round needs, and return the trials to run
    (0: every comparison decided, or the plan spent)."""
    replay = decide(run_dir, url)
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
