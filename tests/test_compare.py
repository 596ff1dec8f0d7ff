"""``python -m orchestrator.compare``: two runs of the same study with the same code do not differ;
a run with a changed term of the score differs, and the exit status says so (real Ray, the toy)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import TOY_ABLATION, run_toy_study
from orchestrator.compare import compare_runs
from orchestrator.report.data import load_run
from orchestrator.verdicts.pairs import compare_samples
from orchestrator.verdicts.sequential import DecisionRule
from test_orchestrator_interrupt import ROOT


def compare(a, b, *extra):
    return subprocess.run([sys.executable, "-m", "orchestrator.compare", str(a), str(b), *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def twin_and_changed(tmp_path_factory):
    """The toy ablation again (the same code, the same seeds), and with the toy's n = 4 (mig − 0.05: 0.05 |n − 2| against n = 1)."""
    twin = run_toy_study(tmp_path_factory.mktemp("twin"), TOY_ABLATION)
    changed = {**TOY_ABLATION, "fixed": {**TOY_ABLATION["fixed"], "n": 4}}
    return twin, run_toy_study(tmp_path_factory.mktemp("changed"), changed)


def test_the_same_study_twice_does_not_differ(toy_ablation, twin_and_changed):
    twin, _ = twin_and_changed
    out = compare(toy_ablation, twin, "--margin", "mig=0.05")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no difference beyond seed noise" in out.stdout
    verdicts = compare_runs(load_run(toy_ablation), load_run(twin), {"mig": 0.05})
    assert {v.configuration for v in verdicts} == {"x=0.3", "x=0.5", "x=0.7", "x=0.9"}
    assert all(v.diff == 0 and v.decision in ("equivalent", "undecided") for v in verdicts)
    # the toy's seed noise is ~0.007: three seeds a side show mig within ±0.05 where every seed finished
    assert {v.decision for v in verdicts if v.score == "mig" and v.configuration != "x=0.9"} == {"equivalent"}


def test_a_changed_score_term_is_found_and_fails_the_exit_status(toy_ablation, twin_and_changed):
    _, changed = twin_and_changed
    out = compare(toy_ablation, changed, "--json")
    assert out.returncode == 1, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["differs"] is True
    mig = {c["configuration"]: c for c in doc["comparisons"] if c["score"] == "mig"}
    assert mig["x=0.3"]["decision"] == "effect" and mig["x=0.3"]["diff"] == pytest.approx(-0.05, abs=1e-9)
    # a score the change leaves alone does not differ
    assert all(c["decision"] != "effect" for c in doc["comparisons"] if c["score"] == "dci_disentanglement")


def test_bad_input_is_one_error(toy_ablation, tmp_path):
    out = compare(toy_ablation, tmp_path / "nowhere")
    assert out.returncode == 2 and "does not exist" in out.stderr and "Traceback" not in out.stderr
    out = compare(toy_ablation, toy_ablation, "--margin", "mig=-1")
    assert out.returncode != 0 and "--margin 'mig=-1'" in out.stderr


def test_compare_samples_by_hand():
    out = compare_samples({"c": {"mig": [0.20, 0.21, 0.22]}}, {"c": {"mig": [0.40, 0.41, 0.42]}}, {})
    assert out[0].decision == "effect" and out[0].diff == pytest.approx(0.2)
    same = compare_samples({"c": {"mig": [0.20, 0.21, 0.22]}}, {"c": {"mig": [0.20, 0.21, 0.22]}},
                           {"mig": DecisionRule(margin=0.05)})
    assert same[0].decision == "equivalent" and same[0].diff == 0
