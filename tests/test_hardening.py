"""The second round of hostile and careless input (issue 28): one test (or a few) per point.

Points 1-3: a run folder someone hands you cannot make the report read, or the study command
write or kill, anything outside it. Points 4-8: faults (a full disk, cut files, a storage that
does not persist). Points 9-13: bad input refused before anything trains, one line naming the
file and the field. Point 14: the smaller ones. A full disk is simulated where files are written
whole (``did_core.atomic``: its replace step raises ``OSError(ENOSPC)``), the way a write fails
when the disk fills; the driver runs in this process, so the fixture reaches every file it writes
that way (the trials' own processes are not affected). The run folders of tests/conftest.py
(toy model) are copied, never changed.
"""
from __future__ import annotations

import builtins
import contextlib
import errno
import functools
import html
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from conftest import TOY_ABLATION
from test_adversarial import STUDY, study_cli, write_study

import did_core.atomic


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy", symlinks=True))


def one_error_line(out: str) -> str:
    """The command's answer, checked to be one ``error:`` line and no traceback."""
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out, out
    return lines[0]


@pytest.fixture
def full_disk(monkeypatch):
    """Every file written whole (did_core.atomic) fails as on a full disk, from now on."""
    def replace(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(did_core.atomic, "_replace", replace, raising=False)


# ---- 1-3. a run folder someone hands you -----------------------------------------------------------

def _other_database(path: Path, study_name: str) -> str:
    """Another Optuna database with a study of the same name, whose trials carry a marker value."""
    url = f"sqlite:///{path}"
    other = optuna.create_study(study_name=study_name, storage=url, directions=["maximize", "minimize"])
    dists = {"x": optuna.distributions.FloatDistribution(0, 1), "n": optuna.distributions.IntDistribution(1, 4),
             "mode": optuna.distributions.CategoricalDistribution(["LEAKED-7f3a", "b"])}
    for i in range(4):
        other.add_trial(optuna.trial.create_trial(params={"x": i / 4, "n": 1 + i % 2, "mode": ("LEAKED-7f3a", "b")[i % 2]},
                                                  distributions=dists, values=[i / 10, 1 - i / 10]))
    return url


def test_1_the_report_reads_no_optuna_database_outside_the_run_folder(toy_search, tmp_path):
    from orchestrator.report import build_report

    url = _other_database(tmp_path / "other.db", "toy_search-smoke")
    linked = copy_of(toy_search, tmp_path / "a")
    (linked / "optuna.db").unlink()
    (linked / "optuna.db").symlink_to(tmp_path / "other.db")
    page = build_report(linked).read_text()
    assert "LEAKED-7f3a" not in page and "optuna.db: links out of the run folder" in page

    named = copy_of(toy_search, tmp_path / "b")
    (named / "optuna.db").unlink()
    meta = json.loads((named / "meta.json").read_text())
    (named / "meta.json").write_text(json.dumps({**meta, "storage": url}))
    page = build_report(named).read_text()
    assert "LEAKED-7f3a" not in page and f"the Optuna storage {url} that meta.json names is not read" in page
    assert "LEAKED-7f3a" in build_report(named, storage=url).read_text()  # given by the caller, it is read


@pytest.mark.parametrize("link", ["study.yaml", "curves.csv", "trials/0", ".lock"])
def test_2_the_study_command_never_writes_through_a_link_in_the_run_folder(toy_ablation, tmp_path, capsys, link):
    study = tmp_path / "toy_ablation.yaml"
    study.write_text(yaml.safe_dump(TOY_ABLATION, sort_keys=False))
    run = copy_of(toy_ablation, tmp_path)
    outside = tmp_path / "mine"
    outside.mkdir()
    (outside / "thesis.tex").write_text("my own file")
    target = outside if link == "trials/0" else outside / "thesis.tex"
    shutil.rmtree(run / link) if (run / link).is_dir() else (run / link).unlink()
    (run / link).symlink_to(target)
    code, out = study_cli(study, "--out", run, capsys=capsys)
    assert sorted(p.name for p in outside.iterdir()) == ["thesis.tex"]
    assert (outside / "thesis.tex").read_text() == "my own file"
    assert code == 2 and f"{run / link}: a symbolic link in the run folder" in one_error_line(out)


def test_3_only_processes_carrying_the_run_folders_tag_are_stopped(tmp_path):
    from orchestrator.running.local_ray import TAG_VAR, run_tag
    from orchestrator.study import cleanup

    run = tmp_path / "run"
    (run / "ray").mkdir(parents=True)
    (run / ".lock").write_text("")
    mine = subprocess.Popen(["sleep", "60"])  # a process of yours, listed in a crafted processes.json
    tagged = subprocess.Popen(["sleep", "60"], env={**os.environ, TAG_VAR: run_tag(run)})
    try:
        while Path(f"/proc/{tagged.pid}/cmdline").read_bytes() != b"sleep\x0060\x00":  # exec'd, with its environment
            time.sleep(0.05)
        started = Path(f"/proc/{mine.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        (run / "ray" / "processes.json").write_text(json.dumps([[mine.pid, started]]))
        assert cleanup(run, log=lambda *a: None) == [tagged.pid]
        assert tagged.wait(timeout=10) is not None and mine.poll() is None
    finally:
        mine.kill()
        tagged.kill()


# ---- 4-8. faults --------------------------------------------------------------------------------------

def test_4_a_disk_full_at_start_is_one_line_and_leaves_no_folder(tmp_path, capsys, full_disk):
    out = tmp_path / "runs" / "new"
    code, said = study_cli(write_study(tmp_path / "adv.yaml"), "--out", out, capsys=capsys)
    line = one_error_line(said)
    assert code == 1 and f"{out / 'study.yaml'}: no space left on device" in line, said
    assert not (tmp_path / "runs").exists()  # nor its .lock and optuna.db, nor the runs/ it made


@pytest.fixture(scope="module")
def filled_then_freed(tmp_path_factory):
    """A study whose two trials checkpoint and then die (``die_env``), and whose driver finds the
    disk full when it records the second death (its third results.csv of the session; so both
    trials have a checkpoint, whatever the order); then, space freed and trial 0's checkpoint cut
    short, run again: (exit code, output) of both runs and the run folder."""
    tmp = tmp_path_factory.mktemp("full")
    study = write_study(tmp / "adv.yaml", fixed={"die_env": "ADV_DIE"})
    run, results_written, runs = tmp / "run", [], []

    def replace(src, dst):  # the disk fills once the session's trials ran
        if Path(dst).name == "results.csv":
            results_written.append(dst)
            if len(results_written) > 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.replace(src, dst)

    from orchestrator import study as command
    from toy import TOY

    def cli() -> tuple[int, str]:
        said = io.StringIO()
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said), pytest.MonkeyPatch.context() as mp:
            mp.setattr(builtins, "print", builtins.print)  # Ray's tqdm support replaces it in a driver
            return command.main([str(study), "--out", str(run)]), said.getvalue()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(command, "run_study", functools.partial(command.run_study, model=TOY))  # as tests/toy_cli.py
        with pytest.MonkeyPatch.context() as full:
            full.setenv("ADV_DIE", "1")  # inherited by the local Ray instance's workers
            full.setattr(did_core.atomic, "_replace", replace, raising=False)
            runs.append(cli())
        (run / "trials" / "0" / "checkpoint.pt").write_text('{"st')  # cut short
        runs.append(cli())
    return runs, run


def test_4_a_disk_that_fills_mid_study_stops_it_in_one_line_and_a_rerun_finishes(filled_then_freed):
    (first, said), (second, again) = filled_then_freed[0]
    run = filled_then_freed[1]
    errors = [line for line in said.splitlines() if line.startswith("error:")]
    assert first == 1 and len(errors) == 1 and "Traceback" not in said, said
    assert errors[0].startswith(f"error: {run / 'results.csv'}: no space left on device"), said
    assert second == 0, again
    df = pd.read_csv(run / "results.csv")
    assert sorted(df["status"]) == ["COMPLETE", "COMPLETE"] and sorted(df["resumed_from"]) == [0, 1], again
    assert not [p for p in run.glob("trials/*/*") if p.stat().st_size == 0]  # nothing half-written


def test_6_a_corrupt_checkpoint_starts_its_trial_over_named_in_the_log(filled_then_freed):
    (_, _), (second, again) = filled_then_freed[0]
    run = filled_then_freed[1]
    assert f"the checkpoint it resumed from, {run / 'trials' / '0' / 'checkpoint.pt'}, is unreadable" in again, again
    df = pd.read_csv(run / "results.csv")
    restarted = df[df["resumed_from"] == 0].iloc[0]
    assert restarted["status"] == "COMPLETE"  # no verdict on the configuration
    curves = pd.read_csv(run / "curves.csv")
    resumed_at = curves[curves["name"] == "loss/resumed_at"].groupby("trial")["value"].max()
    assert resumed_at[restarted["trial"]] == 0.0  # it started over
    assert resumed_at[df[df["resumed_from"] == 1].iloc[0]["trial"]] == 2.0  # the other continued


def test_5_a_truncated_meta_json_is_started_over_with_fresh_as_the_error_says(toy_ablation, tmp_path, capsys):
    from orchestrator.run_folder.setup import empty_for_fresh

    study = tmp_path / "toy_ablation.yaml"
    study.write_text(yaml.safe_dump(TOY_ABLATION, sort_keys=False))
    run = copy_of(toy_ablation, tmp_path)
    (run / "meta.json").write_text((run / "meta.json").read_text()[:100])
    code, out = study_cli(study, "--out", run, capsys=capsys)
    assert code == 2 and "meta.json: unreadable" in out and "run with --fresh to start over" in one_error_line(out)
    empty_for_fresh(run)  # what --fresh does first
    assert [p.name for p in run.iterdir()] == [".lock"]


def test_7_a_curves_csv_cut_mid_line_is_repaired_and_still_read(tmp_path):
    from orchestrator.report.data import RunData, _read_curves
    from orchestrator.run_folder.tables import CurveWriter

    path = tmp_path / "curves.csv"
    path.write_text("trial,step,name,value\n0,1,loss/toy,0.5\n0,2,loss/to")  # the crash
    CurveWriter(path).write(0, 3, [("loss/toy", 0.25)])
    assert pd.read_csv(path).values.tolist() == [[0, 1, "loss/toy", 0.5], [0, 3, "loss/toy", 0.25]]

    path.write_text("trial,step,name,value\n0,1,loss/toy,0.5\n0,2,loss/to0,3,loss/toy,0.25\n0,4,loss/toy,0.2\n")
    run = RunData(run_dir=tmp_path)  # one written by the version that appended to the cut line
    _read_curves(run)
    assert run.curves["step"].tolist() == [1, 4] and "curves.csv: 1 malformed line(s) left out" in run.problems[0]


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
def test_8_a_storage_that_does_not_persist_is_refused(tmp_path, capsys, url):
    code, out = study_cli(write_study(tmp_path / "adv.yaml"), "--out", tmp_path / "run", "--storage", url,
                          capsys=capsys)
    assert code == 2 and f"--storage {url}: an in-memory database keeps nothing" in one_error_line(out)
    assert not (tmp_path / "run").exists()


# ---- 9-13. bad input: refused before anything trains -------------------------------------------------

@pytest.mark.parametrize("change, where", [
    ({"seeds": [0, -1]}, "seeds: a seed is an integer in [0, 4294967295], got -1"),
    ({"seeds": [2**63]}, "seeds: a seed is an integer in [0, 4294967295], got 9223372036854775808"),
    ({"fixed": {"x": float("nan")}}, "fixed.x: nan is not a finite number"),
    ({"fixed": {"x": float("inf")}}, "fixed.x: inf is not a finite number"),
    ({"search": {"sampler": "grid", "space": {"x": {"type": "categorical", "choices": [0.5, float("nan")]}}}},
     "search.space.x.choices: nan is not a finite number"),
    ({"fixed": {"eval_metrics": "dci"}}, "objectives.0.metric: 'mig' is not among the scores: eval_metrics 'dci'"),
    ({"fixed": {"eval_metrics": "mig,nosuch"}}, "fixed.eval_metrics: unknown metric(s) ['nosuch']"),
    ({"fixed": {"dataset": "squares", "data_source": "file"}}, "fixed.data_source: dataset 'squares' has no 'file'"),
])
def test_9_values_every_trial_would_fail_on_are_refused(tmp_path, capsys, change, where):
    from orchestrator.study_file.resolve import load_study
    from orchestrator.study_file import StudyError
    from toy import TOY

    study = write_study(tmp_path / "adv.yaml", **change)
    with pytest.raises(StudyError) as refused:
        load_study(study, model=TOY)
    assert str(refused.value).startswith(f"{study}: {where}"), refused.value
    code, out = study_cli(study, "--out", tmp_path / "run", capsys=capsys)  # the command: one line, no folder
    assert code == 2 and where in one_error_line(out) and not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, where", [
    ("search: {sampler: grid, space: {n: {type: int, low: 1, high: 1000000000000}}}",
     "search.space: the grid has 1,000,000,000,000 points (more than 100,000)"),
    ("seeds: 1000000000000", "seeds: at most 10000 seeds per configuration, got 1000000000000"),
    ("fixed: {x: " + "[" * 10_000 + "]" * 10_000 + "}", "not valid YAML: line 16, column 42: nested deeper than 32 levels"),
    ("search: {sampler: tpe, n_trials: 2, space: {x: {type: float, low: .nan, high: 1}}}",
     "search.space.x.low: Input should be a finite number"),
    ("search: {sampler: tpe, n_trials: 2, space: {x: {type: float, low: 0, high: .inf}}}",
     "search.space.x.high: Input should be a finite number"),
])
def test_10_huge_deep_or_infinite_input_is_one_error_not_a_traceback(tmp_path, text, where):
    from orchestrator.study_file.resolve import load_study
    from orchestrator.study_file import StudyError
    from toy import TOY

    study = tmp_path / "adv.yaml"
    field = text.split(":")[0]
    study.write_text(yaml.safe_dump({k: v for k, v in STUDY.items() if k != field}, sort_keys=False) + text + "\n")
    with pytest.raises(StudyError) as refused:
        load_study(study, model=TOY)
    assert str(refused.value).startswith(f"{study}: {where}"), refused.value


@pytest.mark.parametrize("case", ["negative_seed", "out_is_a_file", "unknown_metric"])
def test_11_the_train_command_refuses_bad_input_in_one_line(tmp_path, capsys, case):
    from did_core.train import main as train_main

    out = tmp_path / "out"
    args = ["--model", "beta_vae", "--preset", "smoke", "--out", str(out), "--set", "num_threads=1"]
    args += {"negative_seed": ["--set", "seed=-1"], "out_is_a_file": [],
             "unknown_metric": ["--set", "eval_metrics=mig,nosuch"]}[case]
    if case == "out_is_a_file":
        out.write_text("a file")
    code = train_main(args)
    expected = {"negative_seed": "Config.seed: must be in [0, 4294967295], got -1",
                "out_is_a_file": f"--out {out}: a file, not a folder",
                "unknown_metric": "Config.eval_metrics: unknown metric(s) ['nosuch']"}[case]
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {expected}") and len(err.strip().splitlines()) == 1, err
    assert out.is_file() if case == "out_is_a_file" else not out.exists()


@pytest.mark.parametrize("case", ["huge_values", "too_many_columns"])
def test_12_the_metrics_command_refuses_codes_it_cannot_score_in_bounded_memory(tmp_path, capsys, case):
    from did_core.metrics.__main__ import main as metrics_main

    rng = np.random.default_rng(0)
    if case == "huge_values":
        factors = rng.integers(0, 3, size=(300, 2))
        codes = 1e300 * (factors + rng.normal(size=factors.shape))
        expected = "codes: 600 values beyond ±1e+30, which cannot be scored without overflow"
    else:
        factors = rng.integers(0, 3, size=(20, 2))
        codes = rng.integers(-5, 5, size=(20, 100_000), dtype=np.int8)  # 2 MB; its covariance would be 75 GiB
        expected = "codes: 100,000 code dimensions; at most 4,096 are scored"
    np.savez(tmp_path / "codes.npz", codes=codes, factors=factors)
    assert metrics_main([str(tmp_path / "codes.npz"), "--n-jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {expected}") and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("damage, said", [
    ("no_meta", "meta.json: missing"),
    ("cut_meta", "meta.json: unreadable"),
    ("text_trial", "results.csv: 1 row(s) left out, not a trial's"),
    ("text_seed", "results.csv: 1 row(s) left out, not a trial's"),
    ("unknown_status", "results.csv: 1 row(s) left out, not a trial's"),
    ("text_score", "results.csv: column mig: 1 cell(s) that are no number left empty"),
])
def test_13_the_report_of_a_damaged_run_folder_says_what_it_skipped(toy_ablation, tmp_path, damage, said):
    from orchestrator.report import build_report

    run = copy_of(toy_ablation, tmp_path)
    if damage == "no_meta":
        (run / "meta.json").unlink()
    elif damage == "cut_meta":
        (run / "meta.json").write_text((run / "meta.json").read_text()[:100])
    else:
        df = pd.read_csv(run / "results.csv", dtype=object)
        column, value = {"text_trial": ("trial", "zz"), "text_seed": ("seed", "abc"),
                         "unknown_status": ("status", "WEIRD"), "text_score": ("mig", "high")}[damage]
        df.loc[0, column] = value
        df.to_csv(run / "results.csv", index=False)
    page = build_report(run).read_text()
    assert html.escape(said) in page and "Leaderboard" in page


# ---- 14. the smaller ones -----------------------------------------------------------------------------

def _study_with(trials: list[dict]) -> optuna.Study:
    study = optuna.create_study()
    dist = {"mode": optuna.distributions.CategoricalDistribution(["=HYPERLINK(\"http://x\")", "-x", "'q", "b"]),
            "w": optuna.distributions.FloatDistribution(-1, 1)}
    for t in trials:
        study.add_trial(optuna.trial.create_trial(params=t["params"], distributions=dist, value=t["mig"],
                                                  user_attrs={"seed": 0, "config_id": 0, "scores": {"mig": t["mig"]},
                                                              **t.get("attrs", {})}))
    return study


def test_14_results_csv_neutralises_formulas_but_keeps_numbers(tmp_path):
    from orchestrator.run_folder.tables import load_results, write_results

    study = _study_with([{"params": {"mode": "=HYPERLINK(\"http://x\")", "w": -0.5}, "mig": -0.25},
                         {"params": {"mode": "-x", "w": 0.5}, "mig": 0.5, "attrs": {"error": "@SUM(1)"}},
                         {"params": {"mode": "'q", "w": -1.0}, "mig": 0.1}])
    write_results(tmp_path, study)
    raw = (tmp_path / "results.csv").read_text()
    assert "'=HYPERLINK" in raw and ",'-x," in raw and "'@SUM(1)" in raw and ",''q," in raw
    assert ",-0.5,-0.25," in raw  # numbers stay numbers
    back = load_results(tmp_path)
    assert back["params_mode"].tolist() == ["=HYPERLINK(\"http://x\")", "-x", "'q"]
    assert back["params_w"].tolist() == [-0.5, 0.5, -1.0] and back["mig"].dtype == float


def test_14_resumed_from_is_written_as_an_integer(tmp_path):
    from orchestrator.run_folder.tables import write_results

    study = _study_with([{"params": {"mode": "b", "w": 0.0}, "mig": 0.5},
                         {"params": {"mode": "b", "w": 0.1}, "mig": 0.6, "attrs": {"resumed_from": 3}}])
    write_results(tmp_path, study)
    assert pd.read_csv(tmp_path / "results.csv", dtype=str)["resumed_from"].tolist()[1] == "3"


def test_14_a_long_parameter_value_is_shown_cut_not_copied_into_the_report(toy_ablation, tmp_path):
    from orchestrator.report import build_report

    run = copy_of(toy_ablation, tmp_path)
    before = len(build_report(run).read_text())
    df = pd.read_csv(run / "results.csv", dtype=object)
    df.loc[0, "params_x"] = "A" * 1_000_000
    df.to_csv(run / "results.csv", index=False)
    page = build_report(run).read_text()
    assert "A" * 100 not in page and "1,000,000 characters" in page and len(page) < before + 100_000


def test_14_a_traversal_that_is_no_png_is_not_inlined(toy_ablation, tmp_path):
    from orchestrator.report import build_report

    run = copy_of(toy_ablation, tmp_path)
    for png in run.glob("trials/*/traversal.png"):
        png.write_bytes(b"<svg onload=alert(1)>" + b"x" * 100)
    page = build_report(run).read_text()
    assert '<img class="report-img"' not in page and "traversal.png not shown (not a PNG image)" in page


def test_14_a_key_given_twice_is_refused(tmp_path):
    from orchestrator.study_file.resolve import load_study
    from orchestrator.study_file import StudyError
    from toy import TOY

    study = write_study(tmp_path / "adv.yaml")
    study.write_text(study.read_text() + "seeds: 2\nseeds: 3\n")
    with pytest.raises(StudyError, match=r"adv\.yaml: not valid YAML: line \d+, column 1: the key 'seeds' is given twice"):
        load_study(study, model=TOY)


def test_14_a_refused_long_name_leaves_no_runs_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = study_cli(write_study(tmp_path / "adv.yaml", name="n" * 300), capsys=capsys)
    assert not (tmp_path / "runs").exists()
    assert code == 2 and "name: String should have at most 100 characters" in one_error_line(out)


def test_14_storage_lock_files_are_removed_when_released(tmp_path):
    from orchestrator.run_folder.locks import lock_dir, lock_storage, storage_key
    from orchestrator.study_file import StudyError

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    path = lock_dir() / f"{storage_key(url, 'adv-smoke')}.lock"
    with lock_storage(url, "adv-smoke"):
        assert path.exists()
        with pytest.raises(StudyError, match="being run by another process"):
            with lock_storage(url, "adv-smoke"):
                pass
    assert not path.exists()
    with lock_storage(url, "adv-smoke"):  # and it can be taken again
        pass
