"""Every bad input docs/running.md promises to handle, tried with the real commands (issue 13).

Each test names the point of docs/running.md's "Interrupting", "Failures" or "Security" section it
holds to. The study CLI runs as ``tests/toy_cli.py`` (``orchestrator.study.main`` with the toy
model registered), in a subprocess where a process has to be killed or watched, in this process
(``main([...])``) where only its answer matters. The Ray tests (points 9, 10) share one running
driver (:func:`running_driver`).
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from conftest import run_toy_study
from toy_cli import toy_registered

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, str(Path(__file__).resolve().parent / "toy_cli.py")]
STUDY = {"name": "adv", "model": "toy", "objectives": [{"metric": "mig"}],
         "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 2}}},
         "resources": {"cpus": 1, "gpus": 0}, "max_concurrent": 2}


def write_study(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump({**STUDY, **changes}, sort_keys=False))
    return path


def study_cli(*args, capsys) -> tuple[int, str]:
    """``python -m orchestrator.study ARGS`` in this process: (exit code, stdout + stderr)."""
    from orchestrator.study import main

    with toy_registered():
        code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """A finished run folder of STUDY (two trials), not changed by the tests that read it."""
    folder = tmp_path_factory.mktemp("adv")
    return run_toy_study(folder, STUDY, report=False)


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {n: (run_dir / n).read_bytes() for n in ("study.yaml", "meta.json", "results.csv")}


# ---- 1. --fresh deletes only a run folder ---------------------------------------------------------

def test_fresh_refuses_a_folder_that_only_holds_a_run_file_name(tmp_path, capsys):
    folder = tmp_path / "home"
    (folder / "mydata").mkdir(parents=True)
    (folder / "unrelated.txt").write_text("keep me")
    (folder / "mydata" / "thesis.tex").write_text("\\documentclass{article}")
    (folder / "results.csv").write_text("a,b\n")
    code, out = study_cli(write_study(tmp_path / "adv.yaml"), "--out", folder, "--fresh", capsys=capsys)
    assert code == 2 and "not deleting anything" in out and "unrelated.txt" in out, out
    assert (folder / "unrelated.txt").read_text() == "keep me" and (folder / "mydata" / "thesis.tex").exists()
    assert (folder / "results.csv").read_text() == "a,b\n"


def test_fresh_still_empties_a_run_folder(toy_run, tmp_path):
    from orchestrator.run_folder.layout import not_a_run_folder

    copy = shutil.copytree(toy_run, tmp_path / "copy")
    assert not_a_run_folder(copy) is None
    (copy / "notes.txt").write_text("mine")
    assert "notes.txt" in not_a_run_folder(copy)


# ---- 2. another study into a run folder is refused; more seeds extend it, said -----------------

def test_another_study_into_a_run_folder_is_refused(toy_run, tmp_path, capsys):
    before = snapshot(toy_run)
    code, out = study_cli(write_study(tmp_path / "other.yaml", name="other"), "--out", toy_run, capsys=capsys)
    assert code == 2 and "'adv-smoke'" in out and "'other-smoke'" in out, out
    assert snapshot(toy_run) == before
    names = [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{toy_run / 'optuna.db'}")]
    assert names == ["adv-smoke"]


def test_more_seeds_extend_a_run_and_say_so(toy_run, tmp_path):
    copy = shutil.copytree(toy_run, tmp_path / "copy")
    lines = []
    from orchestrator.study import run_study
    from toy import TOY

    run = run_study(write_study(tmp_path / "adv.yaml", seeds=2), out=copy, model=TOY, report=False, log=lines.append)
    said = "\n".join(lines)
    assert "now plans 4 trials (this run folder planned 2" in said and "extended" in said, said
    assert len(run.results) == 4 and set(run.results["seed"]) == {0, 1}
    assert json.loads((copy / "meta.json").read_text())["planned_trials"] == 4


# ---- 3. a refused run leaves the run folder as it was -----------------------------------------

@pytest.mark.parametrize("change", [
    {"search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 3}}}},  # another space
    {"resources": {"cpus": 64, "gpus": 0}},  # more CPUs than the machine has
])
def test_a_refused_run_leaves_study_yaml_as_run(toy_run, tmp_path, capsys, change):
    before = snapshot(toy_run)
    code, out = study_cli(write_study(tmp_path / "adv.yaml", **change), "--out", toy_run, capsys=capsys)
    assert code == 2 and "error:" in out, out
    assert snapshot(toy_run) == before


# ---- 4. one driver per Optuna study, whatever the run folder ------------------------------------

def test_a_second_driver_on_the_same_storage_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    study = write_study(tmp_path / "adv.yaml", fixed={"steps": 30, "log_every": 1, "eval_every": 5, "sleep_s": 0.5})
    log_a = open(tmp_path / "a.log", "w")
    first = subprocess.Popen([*CLI, study, "--out", tmp_path / "a", "--storage", storage], cwd=ROOT, stdout=log_a,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not list((tmp_path / "a" / "trials").glob("*/trial.json")) and first.poll() is None:
            assert time.time() < deadline, (tmp_path / "a.log").read_text()
            time.sleep(0.5)
        second = subprocess.run([*CLI, study, "--out", tmp_path / "b", "--storage", storage], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first driver ended before the second started: the test shows nothing"
        assert second.returncode == 2 and "being run by another process" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        assert first.wait(timeout=300) == 0, (tmp_path / "a.log").read_text()
    finally:
        stop_group(first)
    results = pd.read_csv(tmp_path / "a" / "results.csv")
    assert sorted(results["status"]) == ["COMPLETE", "COMPLETE"]


# ---- 5. a trial whose process died runs again on the next run -----------------------------------

def test_a_trial_whose_worker_died_runs_again_keeping_its_record(tmp_path):
    study = {**STUDY, "search": {"sampler": "grid", "space": {"x": {"type": "float", "low": 0, "high": 1,
                                                                        "values": [0.3, 0.5]}}},
             "fixed": {"die_x": 0.5}}
    from orchestrator.study import run_study
    from toy import TOY

    path = tmp_path / "adv.yaml"
    path.write_text(yaml.safe_dump(study))
    first = run_study(path, out=tmp_path / "run", model=TOY, report=False, log=lambda *a: None)
    assert first.interrupted and list(first.results["params_x"]) == [0.3]
    lines = []
    second = run_study(path, out=tmp_path / "run", model=TOY, report=False, log=lines.append)
    assert "1 to run" in "\n".join(lines) and not second.interrupted
    assert sorted(second.results["params_x"]) == [0.3, 0.5] and set(second.results["status"]) == {"COMPLETE"}
    trials = optuna.load_study(study_name="adv-smoke", storage=second.storage).get_trials()
    died = [t for t in trials if t.user_attrs.get("interrupted") and t.params.get("x") == 0.5]
    assert len(died) == 1 and "process died" in died[0].user_attrs["error"]  # the record is kept
    rerun = second.results[second.results["params_x"] == 0.5].iloc[0]
    assert int(rerun["resumed_from"]) == died[0].number  # it continued from the dead trial's checkpoint


# ---- 6. a study file cannot blow up the loader --------------------------------------------------

BOMB = "name: bomb\nmodel: toy\nobjectives: [{metric: mig}]\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n" + \
    "".join(f"{b}: &{b} [*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a},*{a}]\n" for a, b in zip("abcdefgh", "bcdefghi")) + \
    "fixed: {eval_metrics: *i}\n"


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    from orchestrator.study_file.resolve import load_study
    from orchestrator.study_file import StudyError
    from toy import TOY

    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 1000
    t0 = time.perf_counter()
    with pytest.raises(StudyError, match="alias"):
        load_study(path, model=TOY)
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize("change, where", [
    ({"fixed": {"eval_metrics": ["mig", "sap"]}}, "eval_metrics"),  # a list for a string field
    ({"fixed": {"device": 123}}, "device"),  # a number for a string field
    ({"fixed": {"x": True}}, "x"),  # true is not 1.0
    ({"description": "d" * 20_000}, "description"),
])
def test_study_fields_are_typed_strictly(tmp_path, change, where):
    from orchestrator.study_file.resolve import load_study
    from orchestrator.study_file import StudyError
    from toy import TOY

    with pytest.raises(StudyError, match=where):
        load_study(write_study(tmp_path / "adv.yaml", **change), model=TOY)


def test_a_large_study_file_is_refused_unread(tmp_path):
    from orchestrator.study_file.resolve import load_study
    from orchestrator.study_file import StudyError
    from toy import TOY

    path = write_study(tmp_path / "adv.yaml")
    path.write_text(path.read_text() + "# " + "x" * 20_000_000 + "\n")
    t0 = time.perf_counter()
    with pytest.raises(StudyError, match="larger than"):
        load_study(path, model=TOY)
    assert time.perf_counter() - t0 < 0.5


# ---- 7. bad input: one clear error, before anything is written ---------------------------------

@pytest.mark.parametrize("case", ["dataset", "not_utf8", "cpus", "out_is_a_file", "bad_storage"])
def test_bad_input_is_one_error_before_the_run_folder(tmp_path, capsys, case):
    study, out, extra = write_study(tmp_path / "adv.yaml"), tmp_path / "run", []
    if case == "dataset":
        write_study(study, fixed={"dataset": "mnist"})
    elif case == "not_utf8":
        study.write_bytes(study.read_bytes().replace(b"adv", b"adv\xff\xfe"))
    elif case == "cpus":
        write_study(study, resources={"cpus": 64, "gpus": 0})
    elif case == "out_is_a_file":
        out.write_text("a file")
    else:
        extra = ["--storage", "nosuchdb://x/y"]
    code, said = study_cli(study, "--out", out, *extra, capsys=capsys)
    expected = {"dataset": "mnist", "not_utf8": "not UTF-8", "cpus": "resources.cpus", "out_is_a_file": "not a folder",
                "bad_storage": "nosuchdb"}[case]
    assert code == 2 and said.startswith("error:") and expected in said, said
    assert out.is_file() if case == "out_is_a_file" else not out.exists()


def _npz_with_huge_header(path: Path, key: str, shape: tuple, dtype: str) -> Path:
    """An .npz whose member's header claims ``shape`` but holds 64 bytes."""
    with zipfile.ZipFile(path, "w") as zf, zf.open(f"{key}.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
        f.write(b"\0" * 64)
    return path


def test_an_npz_header_claiming_a_billion_rows_is_refused(tmp_path, capsys):
    from did_core.data import DatasetError, get_dataset
    from did_core.metrics.__main__ import main as metrics_main

    path = _npz_with_huge_header(tmp_path / "codes.npz", "codes", (10**9, 10), "<f8")
    assert metrics_main([str(path)]) == 2
    assert "header claims shape (1000000000, 10)" in capsys.readouterr().err
    imgs = _npz_with_huge_header(tmp_path / "dsprites.npz", "imgs", (10**9, 64, 64), "|u1")
    with pytest.raises(DatasetError, match="header claims"):
        get_dataset("dsprites", source="file", path=imgs)


def test_metrics_json_is_valid_json_with_too_few_rows(tmp_path, capsys):
    from did_core.metrics.__main__ import main as metrics_main

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "five.npz", codes=rng.normal(size=(5, 10)), factors=rng.integers(0, 3, size=(5, 2)))
    assert metrics_main([str(tmp_path / "five.npz"), "--json", "--protocol", "fast", "--metrics", "gaussian_tc"]) == 0
    out = capsys.readouterr()
    scores = json.loads(out.out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert scores == {"gaussian_tc": None} and "gaussian_tc" in out.err


def test_train_no_resume_leaves_no_file_of_an_earlier_run(tmp_path, capsys):
    from did_core.train import main as train_main

    out = tmp_path / "run"
    out.mkdir()
    for name in ("scores.json", "config.json", "traversal.png", "checkpoint.pt"):
        (out / name).write_text("of an earlier run")
    code = train_main(["--model", "beta_vae", "--preset", "smoke", "--out", str(out), "--no-resume",
                       "--set", "max_abs_loss=1e-9"])  # diverges at its first step
    assert code == 3 and "diverged" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == []


# ---- 8. the report embeds only what the run folder holds ------------------------------------------

def test_the_report_embeds_no_file_from_outside_the_run_folder(toy_run, tmp_path):
    from orchestrator.report import build_report

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a")
    copy = shutil.copytree(toy_run, tmp_path / "copy")
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps({**meta, "source": str(secret)}))  # source: /etc/passwd
    assert "TOP-SECRET" not in build_report(copy).read_text()
    (copy / "study.yaml").unlink()
    (copy / "study.yaml").symlink_to(secret)  # a study.yaml that links out
    page = build_report(copy).read_text()
    assert "TOP-SECRET" not in page and "links out of the run folder" in page


# ---- 9, 10. the local Ray instance: no metrics port; nothing left when the driver is killed -----

def session_processes(sid: int) -> list[int]:
    """Living processes of the session ``sid`` (the driver's, started with start_new_session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if entry.name.isdigit() and int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _describe(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:80].decode(errors="replace")
        tagged = b"DID_ORCHESTRATOR_RUN=" in Path(f"/proc/{pid}/environ").read_bytes()
        return f"{cmd} (tagged: {tagged})"
    except OSError:
        return "gone"


def stop_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in session_processes(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def running_driver(tmp_path_factory):
    """The study CLI in its own session, its first trials running (long enough for both tests)."""
    tmp = tmp_path_factory.mktemp("driver")
    study = write_study(tmp / "adv.yaml", fixed={"steps": 40, "log_every": 1, "eval_every": 2, "sleep_s": 1.0})
    log = open(tmp / "driver.log", "w")
    proc = subprocess.Popen([*CLI, study, "--out", tmp / "run"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 240
    while not list((tmp / "run" / "trials").glob("*/trial.json")):
        assert proc.poll() is None and time.time() < deadline, (tmp / "driver.log").read_text()
        time.sleep(0.5)
    yield proc, study, tmp / "run"
    stop_group(proc)


def listening_sockets(pids: list[int]) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket the processes ``pids`` listen on, read from /proc
    (the socket inodes in /proc/PID/fd, their addresses in /proc/net/tcp and tcp6)."""
    owner = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:  # gone
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owner[target[len("socket:["):-1]] = pid
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in owner:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((socket.inet_ntop(family, raw), int(port, 16), owner[fields[9]]))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "gone"


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


def test_the_local_ray_instance_serves_no_metrics(running_driver):
    proc, _, _ = running_driver
    ports = [(host, port) for host, port, _ in listening_sockets(session_processes(proc.pid))]
    assert len(ports) >= 3, ports  # GCS, raylet, agents
    answering = []
    for host, port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                if r.status == 200 and b"# TYPE" in r.read(100_000):
                    answering.append((host, port))
        except Exception:  # not HTTP, refused, 404: no metrics there
            pass
    assert answering == [], f"Prometheus metrics served without authentication on {answering}"


def test_the_local_ray_instance_listens_on_loopback_only(running_driver):
    proc, _, _ = running_driver
    sockets = listening_sockets(session_processes(proc.pid))
    names = {pid: _comm(pid) for _, _, pid in sockets}
    # the driver, the GCS, the raylet, its agents and the trials' workers each serve gRPC
    assert {"gcs_server", "raylet"} <= set(names.values()), names
    assert len(names) >= 5, names
    exposed = [(host, port, names[pid]) for host, port, pid in sockets if not is_loopback(host)]
    assert exposed == [], f"the private Ray instance listens beyond 127.0.0.1: {exposed}"


def test_cleanup_stops_what_a_killed_driver_left_and_only_that(running_driver, tmp_path):
    proc, study, run_dir = running_driver
    decoy = subprocess.Popen(["sleep", "120"], env={**os.environ, "DID_ORCHESTRATOR_RUN": "another-run-folder"})
    try:
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone
        proc.wait(timeout=30)
        time.sleep(3)
        left = session_processes(proc.pid)
        assert left, "nothing outlived the driver: the test shows nothing"
        done = subprocess.run([*CLI, study, "--out", run_dir, "--cleanup"], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0 and "leftover process(es)" in done.stdout, done.stdout + done.stderr
        deadline = time.time() + 20
        while session_processes(proc.pid) and time.time() < deadline:
            time.sleep(0.5)
        left = {pid: _describe(pid) for pid in session_processes(proc.pid)}
        assert left == {}, done.stdout
        assert decoy.poll() is None  # another run folder's process is not touched
    finally:
        decoy.kill()
