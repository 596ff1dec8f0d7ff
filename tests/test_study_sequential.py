"""A study with a seed plan: it adds seeds only to undecided comparisons, writes every look, stops
after the rounds it is given (``--rounds``), survives a kill -9 of its driver mid-round, and its
Findings say the decisions (real Ray, real Optuna, the toy model, whose mig = 1 - (x - 0.3)^2 plus
a noise that depends on the seed alone)."""
from __future__ import annotations

import subprocess
import sys

import optuna
import pandas as pd
import pytest
import yaml

from orchestrator import load_study
from orchestrator.report import write_report
from orchestrator.report.data import load_run
from orchestrator.report.findings import decide, findings_html, findings_lines
from orchestrator.verdicts.looks import LookRow, read_looks

from test_orchestrator_interrupt import ROOT, finished_rows, kill_after_finished_rows, start, stop_group

# x = 0.5 is the toy Config's default, the reference. x = 0.9 is far below it (Δ mig -0.32): an effect
# at the first look; x = 0.505 differs by 0.002, inside the margin 0.03: equivalent once 5 seeds a side
# can show it. Looks at 3, 5, 7 seeds: 9 trials in round 1, then 2 configurations x 2 seeds.
SEQUENTIAL = {
    "name": "toy_sequential", "model": "toy", "kind": "ablation",
    "search": {"sampler": "grid", "space": {"x": {"type": "float", "low": 0.0, "high": 1.0,
                                                  "values": [0.5, 0.505, 0.9]}}},
    "seeds": {"initial": 3, "step": 2, "maximum": 7},
    "objectives": [{"metric": "mig", "alpha": 0.05, "margin": 0.03}],
    "fixed": {"steps": 6, "log_every": 1, "eval_every": 2, "sleep_s": 0.25},
    "resources": {"cpus": 1, "gpus": 0}, "max_concurrent": 2,
}


def test_a_seed_plan_is_read_and_refused_where_it_cannot_apply(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SEQUENTIAL))
    from toy import TOY

    study = load_study(path, "smoke", model=TOY)
    assert study.sequential and study.seeds == [0, 1, 2] and study.plan.sizes == (3, 5, 7)
    assert study.objectives[0].rule.margin == 0.03 and study.planned_trials == 9
    search = {**SEQUENTIAL, "kind": "search", "search": {"sampler": "tpe", "n_trials": 4,
                                                         "space": {"x": {"type": "float", "low": 0, "high": 1}}}}
    path.write_text(yaml.safe_dump(search))
    with pytest.raises(Exception, match=r"seeds: a seed plan adds seeds where an ablation's or a comparison's"):
        load_study(path, "smoke", model=TOY)
    path.write_text(yaml.safe_dump({**SEQUENTIAL, "seeds": {"initial": 1, "step": 2, "maximum": 7}}))
    with pytest.raises(Exception, match=r"seeds: initial must be at least 2"):
        load_study(path, "smoke", model=TOY)
    path.write_text(yaml.safe_dump({**SEQUENTIAL, "seeds": {"initial": 3, "step": 2, "max": 7}}))
    with pytest.raises(Exception, match=r"unknown: 'max'"):
        load_study(path, "smoke", model=TOY)


def test_killed_mid_round_the_study_finishes_exactly_the_planned_trials(tmp_path):
    study = tmp_path / "toy_sequential.yaml"
    study.write_text(yaml.safe_dump(SEQUENTIAL))
    out = tmp_path / "run"
    one_round = start(tmp_path, study, out, "1")  # --rounds 1: round 1 alone, the next one queued
    try:
        assert one_round.wait(timeout=300) == 1  # interrupted: planned trials remain
    finally:
        stop_group(one_round)
    assert finished_rows(out) == 9
    queued = optuna.load_study(study_name="toy_sequential-smoke", storage=f"sqlite:///{out / 'optuna.db'}")
    assert len(queued.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 4  # x = 0.5 and 0.505, seeds 3, 4
    first = start(tmp_path, study, out)
    kill_after_finished_rows(first, out, n=10, timeout=300)  # inside round 2 (rows 10-13)
    assert 10 <= finished_rows(out) < 13

    # one round more (--rounds 1) finishes round 2, the trials the kill interrupted included (they are
    # seeds 3 and 4, which the first round's requeue alone would not ask for), and with it the study
    again = start(tmp_path, study, out, "1")
    try:
        assert again.wait(timeout=300) == 0
    finally:
        stop_group(again)

    df = pd.read_csv(out / "results.csv")
    assert (df["status"] == "COMPLETE").all()
    pairs = sorted(zip(df["params_x"], df["seed"]))
    expected = sorted([(x, s) for x in (0.5, 0.505, 0.9) for s in (0, 1, 2)] + [(x, s) for x in (0.5, 0.505)
                                                                             for s in (3, 4)])
    assert pairs == expected, "each planned (configuration, seed) exactly once; x = 0.9 got no second round"
    trials = optuna.load_study(study_name="toy_sequential-smoke", storage=f"sqlite:///{out / 'optuna.db'}").trials
    assert sum(not t.user_attrs.get("interrupted") for t in trials) == 13

    looks = read_looks(out)
    assert {(r.round, r.comparison) for r in looks if r.looked} == {
        (0, "x=0.505 against x=0.5"), (0, "x=0.9 against x=0.5"), (1, "x=0.505 against x=0.5")}
    last = {r.comparison: r for r in looks if r.score == "mig" and r.looked}
    assert last["x=0.9 against x=0.5"].decision == "effect" and last["x=0.9 against x=0.5"].n == 3
    assert last["x=0.505 against x=0.5"].decision == "equivalent" and last["x=0.505 against x=0.5"].n == 5
    assert set(LookRow.columns()) <= set(pd.read_csv(out / "looks.csv").columns)

    run = load_run(out)
    lines = findings_lines(run)
    assert any("x=0.9 against x=0.5: mig -0.3" in s and "effect (lower), decided after 3 seeds a side" in s
               for s in lines), lines
    assert any("x=0.505 against x=0.5" in s and "equivalent within ±0.03, decided after 5 seeds a side" in s
               for s in lines), lines
    assert any("looks at 3, 5, 7 seeds a side" in s for s in lines)
    assert 'id="findings"' in findings_html(run)
    report = write_report(run).read_text()  # the driver ran with report=False
    assert report.index('id="findings"') < report.index("How, where and with what code this ran")
    # the decisions replayed from the folder are the ones the study made
    assert [(v.comparison.label, v.decision) for v in decide(run).verdicts if v.objective] == [
        ("x=0.505 against x=0.5", "equivalent"), ("x=0.9 against x=0.5", "effect")]


def test_findings_command_prints_the_decisions_of_a_folder(toy_ablation):
    out = subprocess.run([sys.executable, "-m", "orchestrator.report", str(toy_ablation), "--findings"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Findings:" in out.stdout and "x=0.3 against x=0.5: mig" in out.stdout
    assert "one look" in out.stdout
