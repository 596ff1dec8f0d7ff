"""A report someone hands you stays true: its header names the run folder's paths relative to the
folder, never the absolute paths of the machine that ran the study."""
from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.report import build_report
from orchestrator.report.data import load_run
from orchestrator.report.header import header_table, storage_shown
from orchestrator.report.stats import trial_counts
from orchestrator.run_folder.layout import RunMeta


def _header(run_dir: Path) -> str:
    run = load_run(run_dir)
    return header_table(run, trial_counts(run))


def test_the_header_shows_the_run_folders_own_storage_and_no_absolute_path(toy_ablation):
    meta = RunMeta.read(toy_ablation)
    assert meta.storage == f"sqlite:///{toy_ablation / 'optuna.db'}"  # what the study recorded: absolute
    header = _header(toy_ablation)
    assert "sqlite: optuna.db (in the run folder) (study toy_ablation-smoke)" in header
    assert f"{toy_ablation.name} (paths below are relative to it)" in header
    assert str(toy_ablation.parent) not in header and "sqlite:////" not in header
    assert f" on {meta.sessions[0].cpu}" in header and meta.sessions[0].cpu  # each session's processor


def test_a_run_folder_handed_over_reports_the_same_header_paths(toy_ablation, tmp_path):
    # the folder as someone else receives it: elsewhere, the study's machine's paths still in meta.json
    moved = tmp_path / "received" / "toy_ablation-smoke"
    shutil.copytree(toy_ablation, moved, ignore=shutil.ignore_patterns("ray", ".lock", "report.html"))
    page = build_report(moved).read_text()
    header = page[page.index("<h1>"):page.index("<nav>")]
    assert "sqlite: optuna.db (in the run folder)" in header and "toy_ablation-smoke (paths below" in header
    for where in (str(toy_ablation), str(moved), str(tmp_path)):
        assert where not in header


def test_other_storages_are_shown_relative_or_without_their_password(tmp_path):
    run_dir = tmp_path / "runs" / "x-smoke"
    run_dir.mkdir(parents=True)
    assert storage_shown(f"sqlite:///{tmp_path / 'shared' / 'studies.db'}", run_dir) == \
        "sqlite: ../../shared/studies.db (relative to the run folder)"
    # an optuna.db elsewhere is not the folder's own when the folder holds none
    assert storage_shown(f"sqlite:///{tmp_path / 'optuna.db'}", run_dir) == \
        "sqlite: ../../optuna.db (relative to the run folder)"
    shown = storage_shown("postgresql+psycopg://me:s3cret@db.example:5432/optuna", run_dir)
    assert "s3cret" not in shown and shown.startswith("postgresql+psycopg://me:***@db.example:5432/optuna")
