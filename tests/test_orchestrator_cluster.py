"""A study joins an existing Ray cluster (``address=``) and spreads its trials over its nodes:
two nodes started by ``ray start`` on this machine, one CPU each."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray
import yaml
from ray._raylet import Config

from orchestrator.run_folder.tables import load_results
from orchestrator.study import run_study
from orchestrator.study_file import StudyError
from servers import free_port
from toy import TOY

RAY = str(Path(sys.executable).parent / "ray")


def stop(proc: subprocess.Popen) -> None:
    """Stop one `ray start --block` and the node processes it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def two_node_cluster(monkeypatch):
    yield from _cluster_of_two(monkeypatch, ["--num-cpus=1"])


@pytest.fixture
def two_gpu_nodes(monkeypatch):
    """Two nodes of one CPU and one GPU each (declared: Ray schedules by the number it is given)."""
    yield from _cluster_of_two(monkeypatch, ["--num-cpus=1", "--num-gpus=1"])


def _cluster_of_two(monkeypatch, resources: list[str]):
    # A private temp dir keeps this cluster out of /tmp/ray, so that no other `ray.init()` on the
    # machine connects to it. Token auth, as Ray 2.60 does by default for a local `ray.init()`: the
    # nodes and this process share ~/.ray/auth_token (made here if missing). A driver joining by
    # address uses token mode only if RAY_AUTH_MODE=token was set when Ray read its config
    # (`import ray`); this process imported Ray before, so the config is read again here, as Ray
    # does when a local `ray.init()` turns token mode on (which made this test pass only after one).
    subprocess.run([RAY, "get-auth-token", "--generate"], check=True, capture_output=True)
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    Config.initialize("")
    common = ["--node-ip-address=127.0.0.1", *resources, "--block"]
    procs = []
    try:
        address = start_head(temp, common, env, procs)
        procs.append(subprocess.Popen([RAY, "start", f"--address={address}", *common], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for p in reversed(procs):
            stop(p)


def _wait_for_nodes(address: str, n: int, timeout: float = 120) -> set[str]:
    """The ids of the cluster's living nodes, once there are ``n``."""
    ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    deadline = time.time() + timeout
    while len([x for x in ray.nodes() if x["Alive"]]) < n and time.time() < deadline:
        time.sleep(0.5)
    nodes = {x["NodeID"] for x in ray.nodes() if x["Alive"]}
    ray.shutdown()  # the study connects by itself, through `address`
    return nodes


def start_head(temp: str, common: list[str], env: dict[str, str], procs: list[subprocess.Popen]) -> str:
    """Start a `ray start --head` on a free port with its own temp dir (appended to ``procs``); its address."""
    procs.append(subprocess.Popen([RAY, "start", "--head", f"--port={free_port()}", "--include-dashboard=false",
                                   f"--temp-dir={temp}", *common], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True))
    return _wait_for_address(Path(temp), procs[-1])


def _wait_for_address(temp: Path, head: subprocess.Popen, timeout: float = 120) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        f = temp / "ray_current_cluster"
        if f.exists() and f.read_text().strip():
            return f.read_text().strip()
        assert head.poll() is None, "ray start --head exited"
        time.sleep(0.5)
    raise TimeoutError("the head node did not come up")


def test_trials_run_on_both_nodes(tmp_path, two_node_cluster):
    nodes = _wait_for_nodes(two_node_cluster, 2)
    assert len(nodes) == 2

    study = tmp_path / "spread.yaml"
    study.write_text(yaml.safe_dump({
        "name": "spread", "model": "toy", "objectives": [{"metric": "mig"}],
        "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 4}}},
        "fixed": {"steps": 4, "sleep_s": 0.5}, "resources": {"cpus": 1},
    }))
    result = run_study(study, out=tmp_path / "run", address=two_node_cluster, model=TOY, report=False,
                       log=lambda *a: None)
    df = load_results(tmp_path / "run")
    assert len(df) == 4 and (df["status"] == "COMPLETE").all()
    # one CPU per node and one per trial: the two trials at a time run on different nodes
    assert set(df["node"]) == nodes
    meta_ray = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta_ray["sessions"][-1]["ray"]["nodes"] == 2 and meta_ray["sessions"][-1]["ray"]["address"] == two_node_cluster


def test_a_trial_larger_than_every_node_is_refused_before_anything_is_written(tmp_path, two_gpu_nodes):
    # the cluster holds 2 CPUs and 2 GPUs, but no node holds 2 of either: no trial could ever start
    assert len(_wait_for_nodes(two_gpu_nodes, 2)) == 2
    for field in ("cpus", "gpus"):
        study = tmp_path / f"big_{field}.yaml"
        study.write_text(yaml.safe_dump({
            "name": f"big_{field}", "model": "toy", "objectives": [{"metric": "mig"}],
            "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 2}}},
            "resources": {"cpus": 1, "gpus": 1, field: 2}}))
        out = tmp_path / f"run_{field}"
        with pytest.raises(StudyError) as refused:
            run_study(study, out=out, address=two_gpu_nodes, model=TOY, report=False, log=lambda *a: None)
        assert not out.exists()  # refused before the run folder was made
        assert re.search(rf"big_{field}.yaml: resources.{field}: 2 [CG]PUs per trial, but the largest node of the "
                         rf"Ray cluster at {re.escape(two_gpu_nodes)} has 1", str(refused.value)), refused.value
        assert not ray.is_initialized()  # the study's connection is closed
