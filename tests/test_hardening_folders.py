"""Issue 44, points 5-8 and 12: a run folder someone hands you, and the exports. ``select`` and
``report`` guard a folder as the study command does; an export goes only to a folder of its own;
every CSV is written by the one spreadsheet-safe writer; a tampered cache or table, or one model
with NaN codes, is one clear line, never a traceback, and costs no other trial its scores."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from orchestrator import select as select_module
from orchestrator.report import __main__ as report_cli
from orchestrator.report.data import load_run
from orchestrator.report.export import leaderboard_files, table1_files
from orchestrator.run_folder.layout import RunMeta, read_selection
from orchestrator.select import select_run
from test_select import TINY, Counting, add_trial, write_results
from test_select import run_dir  # noqa: F401  (the fixture: a toy run folder of 11 trials)
from toy import TOY_SELECTABLE, Config as ToyConfig

FORMULA = "=HYPERLINK(\"http://evil\",\"x\")"


@pytest.fixture
def toy_registered():
    from toy_cli import toy_registered as registered

    with registered():
        yield


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def outside_folder(tmp_path):
    outside = tmp_path / "mine"
    outside.mkdir()
    (outside / "thesis.tex").write_text("my own file")
    return outside


# ---- 5. select and report --export never write through a link in the folder ----------------------

def test_select_refuses_a_selection_link_in_a_handed_over_folder(run_dir, tmp_path, toy_registered, capsys):
    outside = outside_folder(tmp_path)
    (run_dir / "selection").symlink_to(outside)
    assert select_module.main([str(run_dir), "--device", "cpu", "--no-report"]) == 2
    assert error_line(capsys) == (f"error: {run_dir / 'selection'}: a symbolic link in the run folder (1 found); python "
                                  "-m orchestrator.select writes only files the folder holds itself, never through a "
                                  "link: remove it, or copy the folder without it")
    assert sorted(p.name for p in outside.iterdir()) == ["thesis.tex"]
    assert not (run_dir / "selection.csv").exists()


def test_report_export_refuses_an_export_link_in_a_handed_over_folder(run_dir, tmp_path, capsys):
    outside = outside_folder(tmp_path)
    (run_dir / "export").symlink_to(outside)
    assert report_cli.main([str(run_dir), "--export"]) == 2
    assert error_line(capsys).startswith(f"error: {run_dir / 'export'}: a symbolic link in the run folder (1 found); "
                                         "python -m orchestrator.report writes only files")
    assert sorted(p.name for p in outside.iterdir()) == ["thesis.tex"]


# ---- 6. export targets ---------------------------------------------------------------------------

def test_export_onto_a_file_or_out_onto_a_folder_is_one_error(run_dir, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert report_cli.main([str(run_dir), "--export", str(target)]) == 2
    assert error_line(capsys) == f"error: --export {target}: a file, not a folder"
    assert target.read_text() == "mine"
    assert report_cli.main([str(run_dir), "--out", str(tmp_path)]) == 2
    assert error_line(capsys) == f"error: --out {tmp_path}: a folder; give the path of the HTML file to write"


def test_export_into_another_run_folder_is_refused(run_dir, tmp_path, capsys):
    other = tmp_path / "other_run"
    other.mkdir()
    (other / "meta.json").write_text((run_dir / "meta.json").read_text())
    for target in (other, other / "export"):
        assert report_cli.main([str(run_dir), "--export", str(target)]) == 2
        assert error_line(capsys).startswith(f"error: --export {target}: inside the run folder {other} of another study")
    assert sorted(p.name for p in other.iterdir()) == ["meta.json"]


def test_an_export_of_a_run_without_a_finished_trial_says_so_and_writes_nothing(run_dir, tmp_path, capsys):
    df = pd.read_csv(run_dir / "results.csv")
    df.assign(status="FAIL").to_csv(run_dir / "results.csv", index=False)
    assert report_cli.main([str(run_dir), "--export", str(tmp_path / "paper")]) == 2
    assert error_line(capsys) == f"error: --export: no trial of {run_dir} finished, so there is nothing to export"
    assert not (tmp_path / "paper").exists()


# ---- 7. the export CSVs escape formulas as results.csv does ---------------------------------------

def test_leaderboard_and_table1_csvs_are_formula_safe(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    RunMeta(study="cmp", preset="smoke", budget="smoke", models=["toy"], kind="comparison", source="cmp.yaml",
            storage="sqlite:///x/optuna.db", optuna_study="cmp-smoke", steps=4, eval_protocol="fast",
            final_protocol="fast", planned_trials=4, started="", objectives=[("mig", "maximize")],
            arms=[FORMULA, "-2+3"]).write(run)
    rows = []
    for n, (method, seed) in enumerate([(FORMULA, 0), (FORMULA, 1), ("-2+3", 0), ("-2+3", 1)]):
        row = add_trial(run, n, 0.1 * (n + 1), seed, mode="@SUM(A1)")
        rows.append({**row, "params_method": method, "params_dataset": "\tdsprites", "sap": 0.1 * n})
    write_results(run, rows)
    data = load_run(run)
    files = leaderboard_files(data, tmp_path / "out") + table1_files(data, tmp_path / "out")
    written = sorted(p.name for p in files if p.suffix == ".csv")
    assert written == ["leaderboard.csv", "table1-all.csv", "table1-best.csv"]
    for name in written:
        cells = [c for row in csv.reader((tmp_path / "out" / name).read_text().splitlines()) for c in row]
        risky = [c for c in cells[1:] if c.startswith(("=", "+", "@", "\t", "\r")) or
                 (c.startswith("-") and not _number(c))]
        assert not risky, (name, risky)
        assert any(c == "'" + FORMULA for c in cells) or any(c.startswith("'@SUM") for c in cells), (name, cells)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_selection_csv_is_formula_safe_and_reads_back_as_it_was(run_dir):
    record = run_dir / "trials" / "0" / "trial.json"  # a handed-over folder: any text in trial.json
    record.write_text(json.dumps({**json.loads(record.read_text()), "model": FORMULA}))
    select_run(run_dir, TINY, "cpu", models=Counting().spec(), log=lambda *a: None)
    cells = [c for row in csv.reader((run_dir / "selection.csv").read_text().splitlines()) for c in row]
    assert "'" + FORMULA in cells and FORMULA not in cells
    assert read_selection(run_dir)["model"].iloc[0] == FORMULA


# ---- 8. tampered selection.csv, mc_pairs.csv; a model with NaN codes ------------------------------

def test_a_tampered_selection_csv_is_one_line_in_the_report_not_a_traceback(run_dir, tmp_path):
    select_run(run_dir, TINY, "cpu", models=Counting().spec(), log=lambda *a: None)
    df = pd.read_csv(run_dir / "selection.csv")
    df["udr_lasso"] = df["udr_lasso"].astype(object)
    df.loc[2, "udr_lasso"] = "very good"
    df.to_csv(run_dir / "selection.csv", index=False)
    with pytest.raises(ValueError, match=r"selection.csv: column 'udr_lasso' holds 'very good' \(row 3\), not a number"):
        read_selection(run_dir)
    assert report_cli.main([str(run_dir), "--out", str(tmp_path / "r.html")]) == 0
    assert "selection.csv: unreadable" in (tmp_path / "r.html").read_text()


def test_a_tampered_mc_pairs_cache_is_computed_again(run_dir):
    select_run(run_dir, TINY, "cpu", models=Counting().spec(), log=lambda *a: None)
    first = read_selection(run_dir)
    pairs = run_dir / "selection" / "mc_pairs.csv"
    text = pairs.read_text().splitlines()
    pairs.write_text("\n".join(line.rsplit(",", 1)[0] for line in text) + "\n")  # the score column gone
    said = []
    select_run(run_dir, TINY, "cpu", models=Counting().spec(), log=said.append)
    assert any(f"selection: {pairs} is not a readable cache (KeyError" in s for s in said), said
    again = read_selection(run_dir)
    assert again["model_centrality"].tolist() == pytest.approx(first["model_centrality"].tolist())


def nan_spec(x: float, seed: int):
    """The toy model whose trial of (x, seed) encodes to NaN (a model gone wrong)."""
    hook = TOY_SELECTABLE.selection

    def load(checkpoint, device="cpu"):
        view = hook(checkpoint, device)
        config = json.loads(Path(checkpoint).read_text())["config"]
        if math.isclose(config["x"], x) and config["seed"] == seed:
            good = view.encode
            return type(view)(config=view.config, encode=lambda x: good(x) * float("nan"), kl=None,
                              generator=view.generator)
        return view

    return {"toy": type(TOY_SELECTABLE)(name="toy", config_cls=ToyConfig, train=TOY_SELECTABLE.train, selection=load)}


def test_one_model_with_nan_codes_costs_only_its_own_scores(run_dir):
    rows = select_run(run_dir, TINY, "cpu", models=nan_spec(0.5, 1), log=lambda *a: None)  # trial 4
    by_trial = {r.trial: r for r in rows}
    assert by_trial[4].udr_lasso is None and by_trial[4].model_centrality is None
    assert "trial 4: its codes are not finite (NaN or inf): not scored" in by_trial[4].note
    others = [n for n in range(9) if n != 4]
    assert all(by_trial[n].udr_lasso is not None and by_trial[n].model_centrality is not None for n in others)
    assert by_trial[3].udr_n == 2 and by_trial[0].udr_n == 3
    # the study's advice, select again, works the same way (the NaN codes come from the cache now)
    again = {r.trial: r for r in select_run(run_dir, TINY, "cpu", models=nan_spec(0.5, 1), log=lambda *a: None)}
    assert again[4].note == by_trial[4].note and again[0].udr_lasso == pytest.approx(by_trial[0].udr_lasso)


# ---- 12. select --seed -1; report of a folder that is not a run folder -----------------------------

def test_select_names_a_negative_seed(run_dir, capsys):
    with pytest.raises(SystemExit) as e:
        select_module.main([str(run_dir), "--seed", "-1"])
    assert e.value.code == 2
    assert "error: --seed must be >= 0" in capsys.readouterr().err


def test_report_of_a_folder_that_is_not_a_run_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "passwd").write_text("root:x:0:0")
    assert report_cli.main([str(folder)]) == 2
    assert error_line(capsys) == (f"error: {folder}: not a run folder (no meta.json; expected what `python -m "
                                  "orchestrator.study` writes)")
    assert sorted(p.name for p in folder.iterdir()) == ["passwd"]
