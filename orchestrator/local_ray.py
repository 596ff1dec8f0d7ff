"""The Ray instance a study runs on, and what a dead driver of a run folder left of it.

Without ``--address`` a study starts a private local instance (``address="local"``, never a
cluster found on the machine):

- Ray's token authentication stays on (Ray's default; a warning when ``RAY_AUTH_MODE=disabled``);
- no metrics: ``enable_metrics_collection`` is off (the agents' exporter), and the autoscaler's and
  the dashboard's Prometheus servers, which Ray starts on fixed ports with no switch, are given an
  invalid port (:data:`NO_METRICS_ENV`), so they fail to start (Ray logs that and goes on): no
  port answers ``/metrics``;
- the dashboard only with ``--dashboard``, and then on 127.0.0.1.
- Ray 2.60 has no option to bind its GCS, raylet and worker gRPC servers to one interface:
  they listen on every interface and refuse a caller without the instance's token.

Every process of the instance (GCS, raylet, agents, workers) inherits ``DID_ORCHESTRATOR_RUN=<tag>``,
a tag of the run folder. A driver killed with SIGKILL cannot stop them, and Ray's agents outlive
it; the next driver of the same run folder (holding its lock, so no live driver uses them), or
``python -m orchestrator.study ... --cleanup``, stops the processes with the folder's tag, and
only those (:func:`stop_leftovers`; Linux: it reads ``/proc``).

Example:
    >>> with ray_session(run_dir, address=None, dashboard=False, log=print):
    ...     tuner.fit()
"""
from __future__ import annotations

import hashlib
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

TAG_VAR = "DID_ORCHESTRATOR_RUN"
SYSTEM_CONFIG = {"enable_metrics_collection": False}
NO_METRICS_ENV = {"AUTOSCALER_METRIC_PORT": "-1", "DASHBOARD_METRIC_PORT": "-1"}


def run_tag(run_dir: str | Path) -> str:
    return hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:24]


def local_init_kwargs(dashboard: bool) -> dict[str, Any]:
    """``ray.init`` arguments of a private local instance."""
    return {"address": "local", "include_dashboard": dashboard, "dashboard_host": "127.0.0.1",
            "_system_config": dict(SYSTEM_CONFIG)}


@contextmanager
def ray_session(run_dir: Path, address: str | None, dashboard: bool, log) -> Iterator[None]:
    """Ray for one study session: the cluster at ``address``, or a private local instance tagged
    with the run folder; shut down at the end (unless Ray was running in this process already)."""
    import ray

    if ray.is_initialized():
        yield
        return
    common = {"log_to_driver": False, "configure_logging": True, "logging_level": "WARNING"}
    if address:
        ray.init(address=address, **common)
    else:
        if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
            log("WARNING: RAY_AUTH_MODE=disabled: the local Ray instance accepts callers without a token")
        # inherited by every process Ray starts, not kept in this one
        with _environ({TAG_VAR: run_tag(run_dir), **NO_METRICS_ENV}):
            ctx = ray.init(**local_init_kwargs(dashboard), **common)
        if dashboard:
            url = getattr(ctx, "dashboard_url", None)
            log(f"Ray dashboard: http://{url} (bound to 127.0.0.1; from another machine use "
                f"ssh -L 8265:127.0.0.1:8265 this-host)" if url else "Ray dashboard: not available")
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def tagged_processes(run_dir: str | Path) -> list[int]:
    """The processes of this user that carry the run folder's tag (not this process)."""
    want = f"{TAG_VAR}={run_tag(run_dir)}".encode()
    pids = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if want in environ.split(b"\0"):
            pids.append(int(entry.name))
    return sorted(pids)


def stop_leftovers(run_dir: str | Path, grace_s: float = 5.0) -> list[int]:
    """Stop what a dead driver of ``run_dir`` left running (the caller holds the folder's lock):
    SIGTERM, then SIGKILL after ``grace_s``. Returns the process ids it found."""
    found = tagged_processes(run_dir)
    for pid in found:
        _signal(pid, signal.SIGTERM)
    deadline = time.time() + grace_s
    while time.time() < deadline and set(tagged_processes(run_dir)) & set(found):
        time.sleep(0.2)
    for pid in set(tagged_processes(run_dir)) & set(found):
        _signal(pid, signal.SIGKILL)
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
