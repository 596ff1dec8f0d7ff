"""The study report from run folders made by real Optuna studies over known formulas."""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from orchestrator.report import build_report
from orchestrator.report_data import ReportError, load_run
from orchestrator.report_figures import curve_figures
from orchestrator.report_stats import ablation_default, ablation_tests, holm, leaderboard, mean_ci, welch
from orchestrator.report_synthetic import make_run_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ablation(tmp_path_factory) -> Path:
    return make_run_folder(tmp_path_factory.mktemp("abl") / "run", kind="ablation", seeds=3, fail_trials=(1,))


@pytest.fixture(scope="module")
def search(tmp_path_factory) -> Path:
    return make_run_folder(tmp_path_factory.mktemp("srch") / "run", kind="search", n_trials=30, objectives=2,
                           fail_trials=(4,))


def test_mean_ci_known_values():
    m, half = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    m, half = mean_ci([5.0])
    assert m == 5.0 and math.isnan(half)


def test_welch_notes_and_holm():
    assert welch([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]).p < 0.01
    assert welch([1.0, 1.1, 0.9], [1.05, 0.95, 1.0]).p > 0.3
    assert welch([1.0], [2.0, 2.1]).note == "n too small"
    assert welch([1.0, 1.0], [1.0, 1.0]).note == "no variance"
    adjusted = holm([0.01, 0.04, math.nan, 0.03])
    assert adjusted[:2] == pytest.approx([0.03, 0.06]) and math.isnan(adjusted[2]) and adjusted[3] == pytest.approx(0.06)


def test_ablation_numbers(ablation):
    run = load_run(ablation)
    assert run.kind == "ablation" and run.params == ["n_compare_dims"]
    assert run.objectives == [("mig", "maximize")]
    board = leaderboard(run)
    # mig = 0.05 + 0.03 * dims + noise: more compared dimensions rank higher
    assert board["n_compare_dims"].tolist() == [10, 5, 3, 2, 1]
    failed = run.results.loc[run.results["status"] == "failed", "n_compare_dims"].tolist()
    seeds = board.set_index("n_compare_dims")["seeds"]
    assert len(failed) == 1 and seeds[failed[0]] == 2 and seeds.drop(failed[0]).eq(3).all()
    default, source = ablation_default(run)
    assert default == 3 and "Config default" in source  # did's Config.n_compare_dims
    tests = {(c.setting, c.score): c for c in ablation_tests(run, default)}
    assert tests[(10, "mig")].diff == pytest.approx(0.21, abs=0.03) and tests[(10, "mig")].p_holm < 0.01
    assert all(tests[(s, "sap")].p_holm > 0.05 for s in (1, 2, 5, 10))  # sap does not depend on dims


def test_ablation_default_named_by_the_study(tmp_path):
    run = load_run(make_run_folder(tmp_path / "run", kind="ablation", seeds=2, fail_trials=(), default=5))
    default, source = ablation_default(run)
    assert default == 5 and "study names" in source


def test_ablation_report_contents(ablation):
    page = build_report(ablation).read_text()
    banner = get_plotlyjs()[:200]
    assert page.count(banner) == 1  # plotly.js once, inline
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<link[^>]+href=[\"']http", page)
    imgs = re.findall(r'<img class="report-img"[^>]*src="([^"]{0,30})', page)
    assert len(imgs) == 5 and all(s.startswith("data:image/png;base64,") for s in imgs)  # best + 4 settings
    assert 'data-expected="3"' in page  # ablation figure, losses, in-training scores
    assert "Welch" in page and "n_compare_dims=3" in page
    assert "training diverged at step 7" in page  # the failed trial's error
    assert "sampler: grid" in page and "python -m orchestrator.study" in page  # the study file, how to rerun


def test_search_report_contents(search):
    run = load_run(search)
    assert run.kind == "search" and set(run.params) == {"lambda_h", "lambda_enc", "contrast"}
    best = leaderboard(run).iloc[0]
    assert best["contrast"] == "infonce" and 0.1 < best["lambda_h"] < 10  # mig peaks at lambda_h = 1
    page = build_report(search).read_text()
    assert "FanovaImportanceEvaluator(n_trees=64, max_depth=64, seed=0)" in page
    for title in ("Optimisation history", "Parallel coordinates", "Slices", "Contour of", "Pareto front"):
        assert title in page, title
    assert 'data-expected="8"' in page  # 6 search views + 2 curve figures
    assert len(re.findall(r'<img class="report-img"', page)) == 1  # the best model only


def test_fast_scores_never_share_a_table_with_final_scores(ablation, tmp_path):
    df = pd.read_csv(ablation / "results.csv")
    df["fast/mig"] = df["mig"] + 1
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for f in ("study.yaml", "meta.json", "curves.csv"):
        (run_dir / f).write_text((ablation / f).read_text())
    df.to_csv(run_dir / "results.csv", index=False)
    run = load_run(run_dir)
    assert "fast/mig" not in run.scores and run.fast_scores == ["fast/mig"]
    assert not any("fast/" in c for c in leaderboard(run).columns)
    (losses, loss_fig), (scores, score_fig) = curve_figures(run)
    assert [a["text"] for a in loss_fig["layout"]["annotations"]] == ["L_G", "L_H", "L_enc"]
    assert [a["text"] for a in score_fig["layout"]["annotations"]] == ["fast/mig", "fast/sap"]


def test_no_finished_trial(tmp_path):
    run_dir = make_run_folder(tmp_path / "run", kind="ablation", seeds=1, fail_trials=tuple(range(5)))
    page = build_report(run_dir).read_text()
    assert "No trial finished (5 failed)" in page
    assert "Failed trials (5)" in page and page.count("training diverged at step 7") >= 5


def test_empty_folder_gets_a_report_that_says_so(tmp_path):
    page = build_report(tmp_path).read_text()
    for phrase in ("study.yaml: missing", "results.csv: missing", "No trial results"):
        assert phrase in page
    assert 'data-expected="0"' in page


def test_unreadable_files_are_named(tmp_path):
    (tmp_path / "study.yaml").write_text("name: [unclosed\n")
    (tmp_path / "results.csv").write_text("")
    run = load_run(tmp_path)
    assert any(p.startswith("study.yaml: not valid YAML") for p in run.problems)
    assert any(p.startswith("results.csv: unreadable") for p in run.problems)
    assert "study.yaml: not valid YAML" in build_report(tmp_path, tmp_path / "r.html").read_text()


def test_missing_folder(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        build_report(tmp_path / "nope")
    cli = subprocess.run([sys.executable, "-m", "orchestrator.report", str(tmp_path / "nope")],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 2 and str(tmp_path / "nope") in cli.stderr


def test_cli_writes_where_told(ablation, tmp_path):
    out = tmp_path / "sub" / "r.html"
    cli = subprocess.run([sys.executable, "-m", "orchestrator.report", str(ablation), "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == str(out) and out.stat().st_size > 1_000_000
