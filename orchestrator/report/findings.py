"""The Findings: a run folder's decisions (:mod:`orchestrator.verdicts`), as the report's first screen
and as the text the study prints and ``python -m orchestrator.report RUN_DIR --findings`` writes.

A folder a study with a seed plan wrote carries its plan and rules in ``meta.json``; an older one,
or one run with a fixed list of seeds, is decided at one look on the seeds it holds, each objective
at alpha 0.05 with no margin unless ``meta.json`` names one.

Example:
    >>> replay = decide_run("results/did_contrast-quick")
    >>> print("\\n".join(findings_lines(load_run("results/did_contrast-quick"))))   # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..verdicts.comparisons import Trials
from ..verdicts.findings import (TrainingCheck, decision_text, interval, protocol_text, score_digits, sentence,
                                 training_check)
from ..verdicts.rounds import Replay, replay_rounds
from ..verdicts.sequential import DecisionRule, SeedPlan
from .data import RunData, direction, load_run
from .html import Raw, esc, table
from .model_parts import run_models
from .score_order import order_scores


def trials_of(run: RunData) -> Trials:
    """What the decisions read of ``run`` (every trial that ended; objectives first among the scores,
    a model's diagnostics and constant scores left out)."""
    objectives = [s for s, _ in run.objectives]
    if run.meta is not None and not (run.diagnostic_scores or run.constant_scores):
        said = list(run.problems)
        run_models(run)  # only so that a model's module registers its diagnostics, which are left out here;
        run.problems[:] = said  # a model not found is the report's to say (it may have been handed the model)
    shown = order_scores(run.scores, run.objectives, run.finished).shown if run.scores else []
    scores = objectives + [s for s in shown if s not in objectives]
    meta = run.meta
    return Trials(table=run.results, params=list(run.params), kind=run.kind,
                  defaults=dict(meta.defaults) if meta else {}, controls=list(meta.controls) if meta else [],
                  objectives=list(run.objectives), scores=scores, directions={s: direction(s) for s in scores})


def plan_of(run: RunData) -> SeedPlan:
    """The folder's seed plan (``meta.json``), else one look at every seed its trials ran with."""
    if run.meta is not None and run.meta.seed_plan:
        return SeedPlan(tuple(run.meta.seed_plan["seeds"]), tuple(run.meta.seed_plan["sizes"]))
    seeds = sorted({int(s) for s in run.results["seed"].dropna()}) if not run.results.empty else []
    return SeedPlan.fixed(seeds or [0])


def rules_of(run: RunData) -> dict[str, DecisionRule]:
    rules = run.meta.rules if run.meta is not None else {}
    return {s: DecisionRule(**rules[s]) if s in rules else DecisionRule() for s, _ in run.objectives}


def decide(run: RunData) -> Replay:
    return replay_rounds(trials_of(run), plan_of(run), rules_of(run))


def decide_run(run_dir: str | Path, storage: str | None = None) -> Replay:
    """The decisions of the run folder ``run_dir``."""
    return decide(load_run(run_dir, storage))


def training_checks(run: RunData, replay: Replay) -> list[TrainingCheck]:
    """For each objective's verdict, Δ of its in-training score (``<eval protocol>/<score>``) at each
    evaluation, over the trials of the verdict's look."""
    if run.curves.empty or run.results.empty or run.meta is None:
        return []
    keys = run.results.set_index("trial")[["config_id", "seed"]]
    out = []
    for v in replay.verdicts:
        if not v.objective or v.look is None:
            continue
        name = f"{run.meta.eval_protocol}/{v.score}"
        curve = run.curves[run.curves["name"] == name].join(keys, on="trial", how="inner")
        seeds = set(replay.plan.seeds[:v.look.seeds])
        curve = curve[curve["seed"].isin(seeds)]
        by_step = {}
        for step, at in curve.groupby("step"):
            side = lambda s: pd.to_numeric(at.loc[at["config_id"].isin(s.config_ids), "value"], errors="coerce").dropna()
            by_step[int(step)] = (side(v.comparison.setting).to_numpy(float), side(v.comparison.reference).to_numpy(float))
        check = training_check(v.comparison.label, name, by_step)
        if check.steps:
            out.append(check)
    return out


def _steps_text(run: RunData) -> str:
    return f"{run.meta.steps:,} steps a trial" if run.meta and run.meta.steps else "steps unknown"


def findings_lines(run: RunData, replay: Replay | None = None) -> list[str]:
    """The Findings as plain text: the objective's sentences, the protocol, the in-training check."""
    replay = replay or decide(run)
    if not replay.verdicts:
        return []
    d = score_digits(replay)
    lines = ["Findings:"]
    maximum = replay.plan.maximum if replay.plan.is_sequential else None
    lines += [f"  {sentence(v, d.get(v.score, 3), maximum)}" for v in replay.verdicts if v.objective]
    if replay.missing:
        lines.append(f"  (round {replay.rounds + 1} of the seed plan is still to run: the decisions above are "
                     f"those of round {replay.rounds})")
    lines.append("  " + protocol_text(replay, run.meta.final_protocol if run.meta else "?",
                                      run.meta.budget if run.meta else "?", _steps_text(run)))
    checks = training_checks(run, replay)
    if checks:
        lines.append(f"  In training ({run.meta.eval_protocol} protocol, 95% intervals, descriptive):")
        lines += [f"    {c.text(d.get(c.score.split('/', 1)[-1], 3))}" for c in checks]
    return lines


def findings_html(run: RunData) -> str:
    """The Findings block: the answer first, then the other scores' decisions in a table."""
    try:
        replay = decide(run)
    except Exception as e:  # the report is still built; what failed is said
        return f'<div class="note">Findings could not be computed ({esc(type(e).__name__)}: {esc(str(e))}).</div>'
    if not replay.verdicts:
        return ""
    d = score_digits(replay)
    items = "".join(f'<li class="finding {esc(v.decision)}">{_sentence_html(v, d, replay)}</li>'
                    for v in replay.verdicts if v.objective)
    pending = (f'<p class="note">Round {replay.rounds + 1} of the seed plan is still to run: these are the decisions '
               f"of round {replay.rounds}.</p>" if replay.missing else "")
    proto = esc(protocol_text(replay, run.meta.final_protocol if run.meta else "?", run.meta.budget if run.meta else "?",
                              _steps_text(run)))
    html = (f'<section id="findings"><h2>Findings</h2><ul class="findings">{items}</ul>{pending}'
            f'<p class="muted">{proto}</p>{_others_table(replay, d)}{_training_html(run, replay, d)}</section>')
    return html


def _sentence_html(v, d, replay) -> str:
    word = esc(decision_text(v, replay.plan.maximum if replay.plan.is_sequential else None))
    return (f"{esc(v.comparison.label)}: {esc(v.score)} <span class=\"num\">{esc(interval(v, d.get(v.score, 3)))}"
            f"</span>, <b>{word}</b>")


def _others_table(replay: Replay, d: dict[str, int]) -> str:
    others = [v for v in replay.verdicts if not v.objective]
    if not others:
        return ""
    scores = list(dict.fromkeys(v.score for v in others))
    comparisons = list(dict.fromkeys(v.comparison.label for v in others))
    cell = {(v.comparison.label, v.score): v for v in others}
    rows = []
    for c in comparisons:
        row = [c]
        for s in scores:
            v = cell.get((c, s))
            row.append(Raw(f'<span class="num">{esc(interval(v, d.get(s, 3)))}</span><br>{esc(v.decision)}') if v else "–")
        rows.append(row)
    return ('<p class="muted">The other scores, over the same seeds (alpha as the first objective, no margin; '
            "Δ [95% interval], decision):</p>" + table(["comparison", *scores], rows, cls="findings-table"))


def _training_html(run: RunData, replay: Replay, d: dict[str, int]) -> str:
    checks = training_checks(run, replay)
    if not checks:
        return ""
    steps = sorted({s for c in checks for s in c.steps})[-4:]  # the last four evaluations
    rows = []
    for c in checks:
        dd = d.get(c.score.split("/", 1)[-1], 3)
        at = dict(zip(c.steps, zip(c.diffs, c.lows, c.highs)))
        cells = [f"{at[s][0]:+.{dd}f} [{at[s][1]:.{dd}f}, {at[s][2]:.{dd}f}]" if s in at else "–" for s in steps]
        flag = Raw(f'<b class="bad-text">{esc(c.change_text())}</b>') if c.flips else "held"
        rows.append([c.comparison, *cells, flag])
    return (f'<p class="muted">In training ({esc(run.meta.eval_protocol)} protocol, not the final scores): Δ of '
            f"{esc(checks[0].score)} [95% interval] at the last evaluations, over the verdict's seeds; descriptive, "
            "no multiplicity adjustment. Flagged where the interval's side of 0 changes between the last two.</p>"
            + table(["comparison", *[f"step {s:,}" for s in steps], "last two evaluations"], rows, cls="findings-table"))


def fold(html: str, title: str) -> str:
    return f"<details><summary>{esc(title)}</summary>{html}</details>"
