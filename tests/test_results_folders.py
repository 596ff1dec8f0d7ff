"""The reproduction campaign's run folders kept in ``results/`` (docs/reproduction.md's figures) are
ones the current studies continue: a change to a study that would make the study command refuse a
folder ("made by a different version of this study") fails here, before it orphans CPU hours."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest

from orchestrator import load_results, load_study
from orchestrator.run_folder.layout import RunMeta
from orchestrator.running.search import spec_changes, spec_of

RESULTS = Path(__file__).resolve().parent.parent / "results"
FOLDERS = sorted(p for p in RESULTS.iterdir() if (p / "meta.json").is_file()) if RESULTS.is_dir() else []


def test_the_campaign_keeps_run_folders():
    assert FOLDERS, f"{RESULTS} holds no run folder"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_a_kept_folder_is_continued_by_its_study(folder, tmp_path):
    meta = RunMeta.read(folder)
    study = load_study(meta.study, meta.preset)
    assert (meta.optuna_study, meta.steps, meta.final_protocol) == (study.run_name, study.steps, study.final_protocol)
    db = tmp_path / "optuna.db"  # a copy: opening the storage may write to it
    shutil.copy(folder / "optuna.db", db)
    kept = optuna.load_study(study_name=meta.optuna_study, storage=f"sqlite:///{db}").user_attrs["spec"]
    assert spec_changes(kept, json.loads(json.dumps(spec_of(study), default=str)), study) == []


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_a_kept_folder_has_a_record_for_every_finished_trial(folder):
    meta = RunMeta.read(folder)
    df = load_results(folder)
    finished = df[df["status"] == "finished"]
    assert len(df) <= meta.planned_trials
    assert (finished["final_protocol"] == meta.final_protocol).all()
    for number in finished["trial"]:
        trial = folder / "trials" / str(number)
        record = json.loads((trial / "trial.json").read_text())
        assert record["number"] == number and (trial / "scores.json").is_file()
        assert record["environment"]["packages"]["torch"] and record["config"]["seed"] == record["seed"]
