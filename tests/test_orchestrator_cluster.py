"""A study joins an existing Ray cluster (``address=``) and spreads its trials over its nodes:
two nodes started by ``ray start`` on this machine, one CPU each."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray
import yaml

from orchestrator.results import load_results
from orchestrator.study import run_study
from toy import TOY

RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    # A private temp dir keeps this cluster out of /tmp/ray, so that no other `ray.init()` on the
    # machine connects to it. Token auth, as Ray 2.60 does by default for a local `ray.init()`: the
    # nodes and this process share ~/.ray/auth_token (made here if missing). Setting the mode
    # explicitly keeps this process's cached Ray config the same as every other test's.
    subprocess.run([RAY, "get-auth-token", "--generate"], check=True, capture_output=True)
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    port = free_port()
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--block"]
    procs = []
    try:
        procs.append(subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false",
                                       f"--temp-dir={temp}", *common], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))
        address = _wait_for_address(Path(temp), procs[0])
        procs.append(subprocess.Popen([RAY, "start", f"--address={address}", *common], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for p in reversed(procs):
            stop(p)


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
    ray.init(address=two_node_cluster, log_to_driver=False, logging_level="WARNING")
    deadline = time.time() + 120
    while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.time() < deadline:
        time.sleep(0.5)
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2
    ray.shutdown()  # the study connects by itself, through `address`

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
