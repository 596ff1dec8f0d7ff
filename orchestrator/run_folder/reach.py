"""Whether every node reaches the run folder: said before a study starts, and by a trial that cannot.

A local ``--out`` is one node's disk unless it is shared (NFS, a cluster file system). Before a
study on a cluster (``--address``) starts anything, :func:`nodes_not_seeing` writes a marker file
into the run folder and runs one small Ray task on each live node that looks for it; the study is
refused, naming the nodes and the path, when any does not see it. A node that joins later is
caught by its first trial (:func:`unreachable`), which then fails at start with
:class:`RunFolderUnreachable`; that is no verdict on its configuration, which is queued again.

Example:
    >>> nodes_not_seeing(Path("/scratch/runs/dims"))      # doctest: +SKIP
    [{'node': '4f0c...', 'host': 'worker-2', 'ip': '10.0.0.7'}]
"""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any


class RunFolderUnreachable(RuntimeError):
    """A trial's node cannot reach the run folder (a local path its node does not share, or a
    storage URI it cannot read); raised before the trial writes anything."""


def unreachable(where: dict[str, Any], folder: str, why: str) -> RunFolderUnreachable:
    return RunFolderUnreachable(f"Ray node {where.get('node')} (host {where.get('host')}) cannot reach the run "
                                f"folder {folder}: {why}. Give --out a folder every node shares (NFS) or a "
                                "storage URI (s3://bucket/prefix)")


def _sees(path: str) -> dict[str, Any]:
    import ray

    return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
            "ip": ray.util.get_node_ip_address(), "sees": os.path.exists(path)}


def nodes_not_seeing(run_dir: Path, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """The live Ray nodes (of the cluster this process is connected to) that do not see a file
    this process writes into ``run_dir``; each as ``{node, host, ip}``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    marker = Path(run_dir) / f".reach-{uuid.uuid4().hex}.tmp"
    marker.write_text("a marker of orchestrator.run_folder.reach; safe to delete\n")
    try:
        probe = ray.remote(num_cpus=0)(_sees)
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(str(marker))
                for node in nodes]
        answers = ray.get(refs, timeout=timeout_s)
    finally:
        marker.unlink(missing_ok=True)
    return [{k: a[k] for k in ("node", "host", "ip")} for a in answers if not a["sees"]]


def check_shared(run_dir: Path, address: str) -> None:
    """A local ``--out`` with ``--address``: ``StudyError`` unless every live node of the cluster
    sees it. The study has joined the cluster at ``address`` already (it does so before anything
    is written, :func:`orchestrator.study.run_study`)."""
    from ..study_file import StudyError

    missing = nodes_not_seeing(run_dir)
    if missing:
        shown = "; ".join(f"node {m['node']} (host {m['host']}, {m['ip']})" for m in missing)
        raise StudyError(f"--out {run_dir}: a local folder that {len(missing)} node(s) of the Ray cluster at "
                         f"{address} do not see ({shown}); their trials could not write there. Give --out a "
                         "folder every node shares (NFS) or a storage URI (s3://bucket/prefix); nothing was started")
