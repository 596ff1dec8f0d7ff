"""The study report, from run folders that ``run_study`` wrote with the toy model (tests/conftest.py).

The toy model's scores are closed-form (tests/toy.py), so the report's ranking, its default
setting and its tests have known values; one ablation trial diverges on purpose.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from orchestrator.report import build_report
from orchestrator.report.data import ReportError, join_resumed_curves, load_run
from orchestrator.report.figures import ablation_figure, curve_figures, spans_decades
from orchestrator.report.stats import (ablation_default, ablation_tests, holm, leaderboard, mean_ci,
                                      welch)
from orchestrator.run_folder.tables import mean_std
from toy import Config as ToyConfig
from toy import scores

ROOT = Path(__file__).resolve().parents[1]


def toy_mig(x: float, seed: int) -> float:
    return scores(ToyConfig.from_preset("smoke", x=x, seed=seed))["mig"]


def test_mean_ci_known_values():
    m, half = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    m, half = mean_ci([5.0])
    assert m == 5.0 and math.isnan(half)


def test_equal_values_have_no_spread_not_rounding_noise():
    # pandas and numpy give the sd of three equal 0.2s as 3.4e-17: the report printed "0.2 ± 3.4e-17"
    # and the ablation figure's axis zoomed into it
    assert mean_ci([0.2, 0.2, 0.2]) == (pytest.approx(0.2), 0.0)
    assert mean_std(pd.Series([0.2, 0.2, 0.2])) == (pytest.approx(0.2), 0.0)
    assert mean_std(pd.Series([0.2, 0.2, 0.2 + 1e-6]))[1] > 0  # a real spread stays
    assert welch([0.2, 0.2, 0.2], [0.2, 0.2, 0.2]).note == "no variance"  # not a p from cancellation noise


def test_welch_notes_and_holm():
    assert welch([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]).p < 0.01
    assert welch([1.0, 1.1, 0.9], [1.05, 0.95, 1.0]).p > 0.3
    assert welch([1.0], [2.0, 2.1]).note == "n too small"
    assert welch([1.0, 1.0], [1.0, 1.0]).note == "no variance"
    adjusted = holm([0.01, 0.04, math.nan, 0.03])
    assert adjusted[:2] == pytest.approx([0.03, 0.06]) and math.isnan(adjusted[2]) and adjusted[3] == pytest.approx(0.06)


def test_ablation_numbers(toy_ablation):
    run = load_run(toy_ablation)
    assert run.problems == []
    assert run.kind == "ablation" and run.params == ["x"] and run.objectives == [("mig", "maximize")]
    assert run.scores == ["dci_disentanglement", "mig"]
    assert run.fast_scores == ["fast/dci_disentanglement", "fast/mig"]  # never among the final scores
    board = leaderboard(run)
    assert board["x"].tolist() == [0.3, 0.5, 0.7, 0.9] and board["seeds"].tolist() == [3, 3, 3, 2]
    assert board["mig mean"].iloc[0] == pytest.approx(sum(toy_mig(0.3, s) for s in range(3)) / 3)
    assert not any("fast/" in c for c in board.columns)
    failed = run.results[run.results["status"] == "FAIL"]
    assert failed[["x", "seed"]].values.tolist() == [[0.9, 1]]
    assert failed["error"].iloc[0].startswith("TrainingDiverged: training diverged at step 3")
    default, source = ablation_default(run)  # the toy Config's default x, recorded in meta.json by the study
    assert default == 0.5 and source == "the toy model's Config default under its 'smoke' preset (x=0.5)"
    tests = {(c.setting, c.score): c for c in ablation_tests(run, default)}
    assert tests[(0.3, "mig")].diff == pytest.approx(0.04, abs=1e-9)  # same seeds, same noise
    assert tests[(0.7, "dci_disentanglement")].diff == pytest.approx(0.2, abs=1e-9)
    assert tests[(0.9, "mig")].n == 2 and tests[(0.9, "mig")].diff == pytest.approx(-0.32, abs=0.02)
    assert tests[(0.9, "mig")].p_holm < 0.01


def test_ablation_report_contents(toy_ablation):
    page = (toy_ablation / "report.html").read_text()  # written by run_study itself
    assert "Study report: toy_ablation (smoke)" in page
    assert page.count(get_plotlyjs()[:200]) == 1  # plotly.js once, inline
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<link[^>]+href=[\"']http", page)
    imgs = re.findall(r'<img class="report-img"[^>]*src="([^"]{0,30})', page)
    assert len(imgs) == 4 and all(s.startswith("data:image/png;base64,") for s in imgs)  # best + 3 settings
    assert 'data-expected="4"' in page  # ablation, losses, in-training scores, speed
    assert "Welch" in page and "x=0.5" in page
    assert "Failed trials (1)" in page and "training diverged at step 3" in page
    assert "GPU: none (CPU only)" in page and re.search(r"optuna \d+\.\d+", page)
    assert re.search(r"code revision</td><td>([0-9a-f]{40}|unknown)", page)
    assert "final scores: fast; in-training scores: fast" in page
    unescaped = page.replace("\\u002f", "/")  # Plotly's JSON writes "/" as "\u002f"
    assert "loss/toy" in unescaped and "fast/mig" in unescaped
    assert "sampler: grid" in page and "python -m orchestrator.study" in page  # the study as run, to rerun


def test_settings_spanning_decades_are_evenly_spaced(toy_ablation):
    assert spans_decades([0, 100, 1000, 10000]) and not spans_decades([0.3, 0.5, 0.7, 0.9])
    assert not spans_decades([0, 5]) and spans_decades([-0.01, 1.0])
    run = load_run(toy_ablation)
    linear = ablation_figure(run, default=0.5)
    assert linear.layout.xaxis.type == "linear" and list(linear.data[0].x) == [0.3, 0.5, 0.7, 0.9]
    run.results["x"] = run.results["x"].map({0.3: 0, 0.5: 100, 0.7: 1000, 0.9: 10000})  # a number of labels
    spaced = ablation_figure(run, default=10000)
    assert spaced.layout.xaxis.type == "category" and list(spaced.data[0].x) == ["0", "100", "1000", "10000"]
    assert set(spaced.data[1].x) == {"0", "100", "1000", "10000"}  # each seed's point on its category
    assert spaced.layout.shapes[0].x0 == 3  # the default's line, at its category's position


def test_curves_keep_losses_scores_and_speed_apart(toy_ablation):
    (_, losses), (_, scores_fig), (_, speed) = curve_figures(load_run(toy_ablation))
    assert [a["text"] for a in losses["layout"]["annotations"]] == ["loss/resumed_at", "loss/toy"]
    assert [a["text"] for a in scores_fig["layout"]["annotations"]] == ["fast/dci_disentanglement", "fast/mig"]
    assert [a["text"] for a in speed["layout"]["annotations"]] == ["images_per_sec"]


def test_a_resumed_trial_is_one_curve_through_its_chain_of_interruptions():
    # trial 0 logged 1-4 and was interrupted; trial 3 resumed it from step 2 (logged 3-5) and was
    # interrupted in turn; trial 5 resumed trial 3 from step 4. Trial 1 ran whole; trial 4 resumed
    # trial 2 and logged nothing yet (trial 2's points stay its own).
    curves = pd.DataFrame({"trial": [0, 0, 0, 0, 1, 1, 2, 3, 3, 3, 5, 5],
                           "step": [1, 2, 3, 4, 1, 2, 1, 3, 4, 5, 5, 6], "name": "loss/x",
                           "value": [0.0, 0.1, 9.0, 9.0, 1.0, 1.1, 2.0, 3.3, 3.4, 9.0, 5.5, 5.6]})
    out = join_resumed_curves(curves, {3: 0, 4: 2, 5: 3})
    line = out[out["trial"] == 5]
    assert line["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert line["value"].tolist() == [0.0, 0.1, 3.3, 3.4, 5.5, 5.6]  # no point computed after a checkpoint
    assert out[out["trial"] == 1]["step"].tolist() == [1, 2]
    assert out[out["trial"] == 2]["value"].tolist() == [2.0] and set(out["trial"]) == {1, 2, 5}
    assert join_resumed_curves(curves, {}).equals(curves)


def test_the_kept_campaign_folders_have_no_curve_without_its_trial():
    # results/ holds real resumed runs (trials interrupted at a session's end, continued on the next,
    # with and without a checkpoint): every curve point the report draws belongs to a trial it lists
    for folder in sorted(p.parent for p in (ROOT / "results").glob("*/meta.json")):  # run folders, not benchmark records
        run = load_run(folder)
        orphans = set(run.curves["trial"]) - set(run.results["trial"])
        unfinished = set(run.results.loc[run.results["status"] != "COMPLETE", "trial"])
        assert not orphans - unfinished, (folder.name, sorted(orphans))


def test_search_report_contents(toy_search):
    run = load_run(toy_search)
    assert run.problems == [] and run.kind == "search" and set(run.params) == {"x", "n", "mode"}
    assert run.objectives == [("mig", "maximize"), ("dci_disentanglement", "minimize")]
    board = leaderboard(run)
    assert board["mig mean"].tolist() == sorted(board["mig mean"], reverse=True)
    best = board.iloc[0]
    config = ToyConfig.from_preset("smoke", x=best["x"], n=int(best["n"]), mode=best["mode"], seed=0)
    assert best["mig mean"] == pytest.approx(scores(config)["mig"])
    page = (toy_search / "report.html").read_text()
    assert "FanovaImportanceEvaluator(n_trees=64, max_depth=64, seed=0)" in page
    for title in ("Optimisation history", "Parallel coordinates", "Slices", "Contour of", "Pareto front"):
        assert title in page, title
    assert 'data-expected="9"' in page  # 6 search views + 3 curve figures
    assert len(re.findall(r'<img class="report-img"', page)) == 1  # the best model only


def test_no_finished_trial(toy_all_fail):
    page = (toy_all_fail / "report.html").read_text()
    assert "No trial finished (2 failed)" in page
    assert "Failed trials (2)" in page and page.count("training diverged at step 3") >= 2


def test_empty_folder_gets_a_report_that_says_so(tmp_path):
    page = build_report(tmp_path).read_text()
    for phrase in ("study.yaml: missing", "meta.json: missing", "results.csv: missing", "No trial results"):
        assert phrase in page
    assert 'data-expected="0"' in page


def test_unreadable_files_are_named(tmp_path, toy_ablation):
    meta = json.loads((toy_ablation / "meta.json").read_text())
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "planned": 3}))  # a key this version never wrote
    (tmp_path / "results.csv").write_text("")
    run = load_run(tmp_path)
    assert "meta.json: unreadable (RunMeta: unknown key(s) ['planned'])" in run.problems
    assert any(p.startswith("results.csv: unreadable") for p in run.problems)
    assert "RunMeta: unknown key(s)" in build_report(tmp_path, tmp_path / "r.html").read_text()


def test_missing_folder(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        build_report(tmp_path / "nope")
    cli = subprocess.run([sys.executable, "-m", "orchestrator.report", str(tmp_path / "nope")],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 2 and str(tmp_path / "nope") in cli.stderr


def test_cli_writes_where_told(toy_ablation, tmp_path):
    out = tmp_path / "sub" / "r.html"
    cli = subprocess.run([sys.executable, "-m", "orchestrator.report", str(toy_ablation), "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == str(out) and out.stat().st_size > 1_000_000
