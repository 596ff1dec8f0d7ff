"""The report of a real orchestrator run (Ray Tune + Optuna, `smoke` preset) of a toy-model ablation.

The toy model (orchestrator/toy.py) has closed-form scores, so the report's ranking and its
default setting are known; trials with n = 3 diverge on purpose, so the failed-trial table is too.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.report_data import load_run
from orchestrator.report_stats import ablation_default, ablation_tests, leaderboard
from orchestrator.study import run_study
from toy import TOY

STUDY = """
name: toy_ablation
description: n against the toy model's scores
model: toy
fixed: {fail_n: 3}
search:
  sampler: grid
  space:
    n: {type: int, low: 1, high: 3}
seeds: 2
objectives: [{metric: mig, direction: maximize}]
resources: {cpus: 1, gpus: 0}
max_concurrent: 2
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("toy")
    (tmp / "toy_ablation.yaml").write_text(STUDY)
    run = run_study(tmp / "toy_ablation.yaml", preset="smoke", out=tmp / "run", model=TOY, log=lambda *a: None)
    return run.run_dir


def test_the_study_command_writes_the_report(run_dir):
    page = (run_dir / "report.html").read_text()  # written by run_study itself
    assert "Study report: toy_ablation (smoke)" in page
    assert 'data-expected="4"' in page  # ablation, losses, in-training scores, speed


def test_report_reads_the_real_run_folder(run_dir):
    run = load_run(run_dir)
    assert run.problems == []
    assert run.kind == "ablation" and run.params == ["n"] and run.objectives == [("mig", "maximize")]
    assert run.scores == ["dci_disentanglement", "mig"] and "fast/mig" in run.fast_scores
    assert sorted(run.results["status"].unique()) == ["failed", "finished"]
    board = leaderboard(run)
    assert board["n"].tolist() == [2, 1] and board["seeds"].tolist() == [2, 2]  # mig peaks at n = 2; n = 3 fails
    default, source = ablation_default(run)
    # the toy model is not in the registry, so its Config default cannot be looked up: the report says so
    assert default == 1 and "unknown model 'toy'" in source and "first setting" in source
    by = {(c.setting, c.score): c for c in ablation_tests(run, default)}
    assert by[(2, "mig")].diff == pytest.approx(0.05, abs=1e-6)  # 0.05 * |n - 2|, same seed noise
    assert by[(3, "mig")].note == "no finished trial"


def test_report_contents_of_the_real_run(run_dir):
    page = (run_dir / "report.html").read_text()
    assert "Failed trials (2)" in page and "training diverged" in page
    assert "GPU: none (CPU only)" in page and re.search(r"optuna \d+\.\d+", page)
    assert re.search(r"code revision</td><td>([0-9a-f]{40}|unknown)", page)
    unescaped = page.replace("\\u002f", "/")  # Plotly's JSON writes "/" as "\u002f"
    assert "loss/toy" in unescaped and "fast/mig" in unescaped
    assert "python -m orchestrator.study" in page and "fail_n: 3" in page  # the study file, to rerun


def test_report_of_the_real_run_renders_in_chromium(run_dir):
    import test_report_browser as browser  # tests/ is on sys.path under pytest's default import mode
    if browser.CHROMIUM is None:
        pytest.skip("no chromium binary (install it: .ci/install_chromium.sh)")
    status = browser.page_status(run_dir / "report.html", run_dir.parent / "profile",
                                 screenshot="report_toy_orchestrator.png")
    assert status["data-errors"] == ""
    assert status["data-figures"] == status["data-rendered"] == status["data-expected"] == "4"
