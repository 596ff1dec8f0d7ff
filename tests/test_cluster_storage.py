"""A study on a two-node Ray cluster whose nodes share no disk: the worker node runs in its own
mount namespace with a private tmpfs over the folder that holds the run folders, so it cannot see
the driver's files. With the run folder on an S3-compatible server (moto, on 127.0.0.1) the study
completes, every trial's files reach the report, a trial killed on the worker resumes from its
checkpoint (on whichever node), and a rerun from a fresh cache finds nothing to do. The same
cluster with a local ``--out`` is refused before anything starts, naming the worker node.

Needs ``unshare`` and the right to mount a tmpfs in a new mount namespace (root, or unprivileged
user namespaces); skipped where the kernel refuses, except in CI (``CI`` set), where it fails."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pandas as pd
import pytest
import ray
import yaml

from orchestrator.run_folder.reach import RunFolderUnreachable
from orchestrator.study import run_study
from orchestrator.study_file import StudyError
from orchestrator.run_folder.trial_folder import TrialFolder
from test_orchestrator_cluster import _wait_for_nodes, start_head, stop
from toy import TOY

RAY = str(Path(sys.executable).parent / "ray")
DIE = "DID_TEST_DIE_ON_THIS_NODE"  # the worker node's trials kill their own process half way (tests/toy.py)


# a new mount namespace: as root directly, else inside a new user namespace (unprivileged)
UNSHARE = ["unshare", *([] if os.getuid() == 0 else ["--user", "--map-root-user"]), "--mount", "--propagation",
           "private"]


def _private_mounts_work(folder: Path) -> bool:
    probe = subprocess.run([*UNSHARE, "sh", "-c", f"mount -t tmpfs none {folder} && test ! -e {folder}/marker"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def split_cluster(tmp_path_factory):
    """``(address, hidden, worker node id)``: a head node and a worker node (one CPU each) whose
    view of ``hidden`` is an empty private tmpfs."""
    hidden = tmp_path_factory.mktemp("hidden")
    (hidden / "marker").write_text("the driver's disk\n")
    if not _private_mounts_work(hidden):
        why = "cannot mount a private tmpfs in a new mount namespace (unshare --mount) here"
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
    subprocess.run([RAY, "get-auth-token", "--generate"], check=True, capture_output=True)
    temp = tempfile.mkdtemp(prefix="rs", dir="/tmp")
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    os.environ["RAY_AUTH_MODE"] = "token"
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--block"]
    procs = []
    try:
        address = start_head(temp, common, env, procs)
        head = _alive_nodes(address, 1)
        worker_cmd = f"mount -t tmpfs none {hidden} && exec {RAY} start --address={address} {' '.join(common)}"
        procs.append(subprocess.Popen([*UNSHARE, "sh", "-c", worker_cmd],
                                      env={**env, DIE: "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        worker = (_alive_nodes(address, 2) - head).pop()
        yield address, hidden, worker
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for p in reversed(procs):
            stop(p)


def _alive_nodes(address: str, n: int) -> set[str]:
    nodes = _wait_for_nodes(address, n)
    assert len(nodes) == n, f"{len(nodes)} Ray node(s) up, not {n}"
    return nodes


def _study(folder: Path) -> Path:
    path = folder / "split.yaml"
    path.write_text(yaml.safe_dump({
        "name": "split", "model": "toy", "objectives": [{"metric": "mig"}],
        "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 4}}},
        "fixed": {"steps": 4, "log_every": 1, "eval_every": 2, "sleep_s": 0.6, "die_env": DIE},
        "resources": {"cpus": 1},
    }))
    return path


def test_a_study_on_nodes_that_share_no_disk_runs_through_s3(split_cluster, s3_server, tmp_path):
    address, hidden, worker = split_cluster
    s3_server.make_bucket("split-study")
    uri = s3_server.uri("split-study/runs/split")
    study, cache = _study(tmp_path), hidden / "cache"
    lines: list[str] = []

    first = run_study(study, out=uri, cache=cache, address=address, model=TOY, log=lines.append)
    # the worker's trials killed their own process after their checkpoint at step 2
    assert first.interrupted
    storage = optuna.load_study(study_name="split-smoke", storage=first.storage)
    died = [t for t in storage.trials if t.user_attrs.get("interrupted")]
    assert died and all((t.user_attrs["run"]["node"] == worker) for t in died)

    second = run_study(study, out=uri, cache=cache, address=address, model=TOY, log=lines.append)
    assert not second.interrupted
    df = second.results
    assert len(df) == 4 and (df["status"] == "COMPLETE").all() and sorted(df["params_n"]) == [1, 2, 3, 4]
    assert set(df["resumed_from"].dropna().astype(int)) == {t.number for t in died}
    # a resumed trial continued from the checkpoint its dead attempt uploaded (step 2), on any node
    curves = pd.read_csv(cache / "curves.csv")
    for t in df.dropna(subset=["resumed_from"])["trial"]:
        assert curves[(curves["trial"] == t) & (curves["name"] == "loss/resumed_at")]["value"].min() == 2
    # trials ran on both nodes (the dead attempts on the worker; their records are in the bucket)
    keys = set(s3_server.keys("split-study", "runs/split/"))
    nodes = {json.loads(_get(s3_server, f"runs/split/trials/{t.number}/trial.json"))["node"] for t in storage.trials
             if t.state.name != "WAITING"}
    assert worker in nodes and len(nodes) == 2
    # every trial's scores and traversal are in the bucket and reached the report
    for t in df["trial"]:
        assert {f"runs/split/trials/{t}/scores.json", f"runs/split/trials/{t}/traversal.png"} <= keys
    assert {"runs/split/results.csv", "runs/split/report.html", "runs/split/meta.json", "runs/split/optuna.db"} <= keys
    assert {f"runs/split/trials/{t.number}/error.txt" for t in died} <= keys  # the driver's record of each death
    html = _get(s3_server, "runs/split/report.html")
    assert "no traversal.png" not in html and all(f"trial {t} (" in html for t in df["trial"])
    assert pd.read_csv(cache / "results.csv")["mig"].notna().all()

    # a rerun from another machine (an empty cache) finds the study in the bucket and nothing to do
    lines.clear()
    third = run_study(study, out=uri, cache=tmp_path / "other-cache", address=address, model=TOY, log=lines.append)
    assert any("4 already finished, 0 to run" in line for line in lines)
    assert len(optuna.load_study(study_name="split-smoke", storage=third.storage).trials) == len(storage.trials)
    assert third.results["mig"].tolist() == df["mig"].tolist()


def test_a_local_out_the_worker_does_not_see_is_refused_before_anything_starts(split_cluster, tmp_path):
    address, hidden, worker = split_cluster
    out = hidden / "local-run"
    with pytest.raises(StudyError, match=rf"--out {out}: a local folder that 1 node\(s\) .* ({worker})"):
        run_study(_study(tmp_path), out=out, address=address, model=TOY, log=lambda *a: None)
    assert not out.exists()  # nothing written, nothing started
    # an earlier run folder there is left as it was
    out.mkdir()
    (out / "results.csv").write_text("trial\n0\n")
    with pytest.raises(StudyError, match="do not see"):
        run_study(_study(tmp_path), out=out, address=address, model=TOY, log=lambda *a: None)
    assert sorted(p.name for p in out.iterdir()) == [".lock", "results.csv"]
    assert (out / "results.csv").read_text() == "trial\n0\n"


def test_past_the_check_a_worker_trial_fails_at_start_naming_node_and_path(split_cluster, tmp_path, monkeypatch):
    """A node that joins after the check (here: the check skipped) fails its trials at start; they
    are queued again, not judged, and it writes nothing anywhere."""
    address, hidden, worker = split_cluster
    monkeypatch.setattr("orchestrator.study.check_shared", lambda *a: None)
    out, lines = hidden / "unchecked", []
    run = run_study(_study(tmp_path), out=out, address=address, model=TOY, report=False, log=lines.append)
    assert run.interrupted
    trials = optuna.load_study(study_name="split-smoke", storage=run.storage).trials
    refused = [t for t in trials if "RunFolderUnreachable" in str(t.user_attrs.get("error"))]
    assert refused and all(t.user_attrs.get("interrupted") for t in refused)
    assert all(f"Ray node {worker} (host " in t.user_attrs["error"] and f"cannot reach the run folder {out}"
               in t.user_attrs["error"] for t in refused)
    assert any("RunFolderUnreachable" in line and "queued again" in line for line in lines)
    assert not any((out / "trials" / str(t.number) / "trial.json").exists() for t in refused)  # never started
    assert (run.results["status"] == "COMPLETE").all() and set(run.results["node"]) != {worker}


def test_a_trial_on_a_node_without_the_run_folder_fails_at_start_naming_node_and_path(tmp_path):
    trial = {"run_dir": str(tmp_path / "not-here"), "number": 3}
    with pytest.raises(RunFolderUnreachable, match=rf"Ray node n1 \(host h1\) cannot reach the run folder "
                                                   rf"{tmp_path / 'not-here'}"):
        TrialFolder.open(trial, {"node": "n1", "host": "h1"})
    assert not (tmp_path / "not-here").exists()


def _get(server, key: str) -> str:
    import boto3

    body = boto3.client("s3", endpoint_url=server.endpoint).get_object(Bucket="split-study", Key=key)["Body"]
    return body.read().decode()
