"""The Python API for notebooks: ``orchestrator.open_run`` on the shared toy run folders, and
examples/notebook.ipynb executed in a real Jupyter kernel (a real built-in study, its smoke preset),
its outputs checked."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import orchestrator
from orchestrator.run_folder.tables import best_configurations, load_results
from orchestrator.run_folder.layout import META_FILE, RESULTS_FILE

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"


def test_open_run_is_exported_lazily():
    assert "open_run" in orchestrator.__all__
    from orchestrator.notebook import open_run

    assert orchestrator.open_run is open_run


def test_open_run_gives_the_tables_the_study_returned(toy_ablation):
    run = orchestrator.open_run(toy_ablation)
    written = load_results(toy_ablation)
    pd.testing.assert_frame_equal(run.results, written)
    pd.testing.assert_frame_equal(run.best, best_configurations(written, [("mig", "maximize")]))
    assert run.best.iloc[0]["params_x"] == 0.3  # the toy's mig is highest at x = 0.3
    assert run.meta.study == "toy_ablation" and run.objectives == [("mig", "maximize")]
    assert run.leaderboard.iloc[0]["x"] == 0.3 and run.leaderboard["rank"].tolist() == list(range(1, 5))
    assert set(run.curves["name"]) >= {"loss/toy", "fast/mig"}
    assert run.decisions == []


def test_open_run_figures_are_the_reports_as_plotly_figures(toy_ablation):
    import plotly.graph_objects as go

    figures = orchestrator.open_run(toy_ablation).figures
    assert list(figures)[:2] == ["Final scores against x", "Training losses"]
    assert all(isinstance(f, go.Figure) for f in figures.values())
    means = [t for t in figures["Final scores against x"].data if t.name.startswith("mean")]
    assert means and all(list(t.x) == [0.3, 0.5, 0.7, 0.9] for t in means)  # one panel per final score
    losses = figures["Training losses"]
    assert losses.data and max(max(v for v in t.x if v is not None) for t in losses.data) == 4  # steps


def test_the_jupyter_view_is_a_summary_and_an_escaped_leaderboard(toy_ablation, tmp_path):
    view = orchestrator.open_run(toy_ablation)._repr_html_()
    assert "<h3>toy_ablation (smoke)</h3>" in view and "<th>x</th>" in view
    assert "Leaderboard" in view and "(of 12 planned)" in view
    # a run folder handed over may hold any text: it is shown, never run as HTML
    hostile = tmp_path / "run"
    shutil.copytree(toy_ablation, hostile, ignore=shutil.ignore_patterns("ray", ".lock"))
    meta = json.loads((hostile / META_FILE).read_text())
    meta["description"] = "<script>alert(1)</script>"
    (hostile / META_FILE).write_text(json.dumps(meta))
    df = pd.read_csv(hostile / RESULTS_FILE)
    df["params_x"] = df["params_x"].astype(object).where(df["params_x"] != 0.3, "<img src=x onerror=alert(2)>")
    df.to_csv(hostile / RESULTS_FILE, index=False)
    view = orchestrator.open_run(hostile)._repr_html_()
    assert "<script>" not in view and "<img" not in view
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in view and "&lt;img src=x onerror=alert(2)&gt;" in view


def test_an_empty_folder_opens_and_says_what_is_missing(tmp_path):
    run = orchestrator.open_run(tmp_path)
    assert run.results.empty and run.best.empty and run.leaderboard.empty
    assert any(p.startswith("results.csv") for p in run.problems)
    assert "No finished trial to rank" in run._repr_html_()


@pytest.mark.slow
def test_the_example_notebook_runs_a_study_and_shows_its_table_and_figure(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    # the study ran in the kernel's folder: 5 settings of n_compare_dims and the paper's form, one seed
    assert "6 trials, 6 finished" in "".join(o.get("text", "") for o in code[0].outputs)
    assert (tmp_path / "runs" / "ablation_dims-smoke" / RESULTS_FILE).is_file()
    summary = code[1].outputs[0]["data"]["text/html"]
    assert "<h3>ablation_dims (smoke)</h3>" in summary and "<th>n_<wbr>compare_<wbr>dims</th>" in summary
    table = code[2].outputs[0]["data"]["text/html"]
    assert table.count("<td>COMPLETE</td>") == 6 and "params_n_compare_dims" in table  # one row per trial
    assert "Final scores against n_compare_dims" in code[4].outputs[0]["data"]["text/plain"]
    figure = code[5].outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert figure["layout"]["title"]["text"] == "Final scores against n_compare_dims"
    means = [t for t in figure["data"] if t.get("name", "").startswith("mean")]
    assert means and [float(x) for x in means[0]["x"]] == [1.0, 2.0, 3.0, 4.0, 5.0]  # the grid of k
