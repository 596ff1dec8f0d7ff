"""The Ray instance a study runs on, and what a dead driver of a run folder left of it.

Without ``--address`` a study starts a private local instance (``address="local"``, never a
cluster found on the machine):

- Ray's token authentication stays on (Ray's default; a warning when ``RAY_AUTH_MODE=disabled``);
- no metrics: ``enable_metrics_collection`` is off (the agents' exporter), and the autoscaler's and
  the dashboard's Prometheus servers, which Ray starts on fixed ports with no switch, are given an
  invalid port (:data:`NO_METRICS_ENV`), so they fail to start (Ray logs that and goes on): no
  port answers ``/metrics``;
- the dashboard only with ``--dashboard``, and then on 127.0.0.1;
- every server of the instance (GCS, raylet, object manager, agents, the driver's and each
  worker's gRPC server) listens on 127.0.0.1 only. Ray 2.60 binds its servers to 127.0.0.1 when
  the node's IP address is 127.0.0.1 (and to every interface otherwise), but ``ray.init`` replaces a
  ``_node_ip_address`` of 127.0.0.1 with the machine's routable address. Its own switch for a
  local-only instance (the default on macOS and Windows), ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``,
  makes the node's address 127.0.0.1 (:data:`LOOPBACK_ENV`: set for the processes Ray starts, and
  for ``ray.init`` itself, see :func:`_loopback_node`); the session then checks that the node is
  on 127.0.0.1 and refuses to run otherwise.

Every process of the instance (GCS, raylet, agents, workers) inherits ``DID_ORCHESTRATOR_RUN=<tag>``,
a tag of the run folder's path, and ``SPT_NOENV=1``, which keeps Ray's ``setproctitle`` (its agents
and workers rename themselves) from writing the title over the environment ``/proc/PID/environ``
shows. A driver killed with SIGKILL cannot stop them, and Ray's agents outlive it; the next driver
of the same run folder (holding its lock, so no live driver uses them), or
``python -m orchestrator.study ... --cleanup``, stops the processes of this user whose environment
carries the folder's tag, and only those (:func:`stop_leftovers`; Linux: it reads ``/proc``).
Nothing the run folder holds decides what is stopped: a folder someone hands you cannot get
another process killed.

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
from typing import TYPE_CHECKING, Any, Iterator

from ..study_file import StudyError

if TYPE_CHECKING:
    from ..study_file.plan import Study

TAG_VAR = "DID_ORCHESTRATOR_RUN"
KEEP_ENVIRON = {"SPT_NOENV": "1"}  # setproctitle: the title stays in argv's space, the environment is kept
SYSTEM_CONFIG = {"enable_metrics_collection": False}
NO_METRICS_ENV = {"AUTOSCALER_METRIC_PORT": "-1", "DASHBOARD_METRIC_PORT": "-1"}
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
LOOPBACK = "127.0.0.1"


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
        with _environ({TAG_VAR: run_tag(run_dir), **KEEP_ENVIRON, **NO_METRICS_ENV, **LOOPBACK_ENV}), _loopback_node():
            ctx = ray.init(**local_init_kwargs(dashboard), **common)
        node_ip = ctx.address_info.get("node_ip_address")
        if node_ip != LOOPBACK:
            ray.shutdown()
            raise RuntimeError(f"the private Ray instance came up on {node_ip}, not {LOOPBACK}: this Ray "
                               f"version ignores {', '.join(LOOPBACK_ENV)}; refusing to run on every interface")
        if dashboard:
            url = getattr(ctx, "dashboard_url", None)
            log(f"Ray dashboard: http://{url} (bound to 127.0.0.1; from another machine use "
                f"ssh -L 8265:127.0.0.1:8265 this-host)" if url else "Ray dashboard: not available")
    try:
        yield
    finally:
        ray.shutdown()


def living_nodes() -> list[dict[str, float]]:
    """The resources (``{"CPU": 8.0, "GPU": 1.0, ...}``) of each living node of the Ray cluster
    this process is connected to."""
    import ray

    return [n["Resources"] for n in ray.nodes() if n.get("Alive")]


def check_fits(study: Study, nodes: list[dict[str, float]], largest: str) -> None:
    """Refuse (:class:`StudyError`) a study whose trial asks for more CPUs, or (where the nodes
    have GPUs) more GPUs, than the largest of ``nodes`` has; ``largest`` names it in the error.

    Example:
        >>> check_fits(study, [{"CPU": 1.0}, {"CPU": 1.0}], "the largest node of the Ray cluster at auto")  # doctest: +SKIP
        Traceback (most recent call last):
        StudyError: studies/x.yaml: resources.cpus: 2 CPUs per trial, but the largest node ... has 1
    """
    res = study.resources
    cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    if res.cpus > cpus:
        raise StudyError(f"{study.source}: resources.cpus: {res.cpus:g} CPUs per trial, but {largest} has {cpus:g}")
    if gpus and res.gpus > gpus:
        raise StudyError(f"{study.source}: resources.gpus: {res.gpus:g} GPUs per trial, but {largest} has "
                         f"{gpus:g} (on a cluster without GPUs this field is ignored and trials run on CPUs)")


@contextmanager
def _loopback_node() -> Iterator[None]:
    """``ray.init`` with the node's IP address 127.0.0.1. Ray reads
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when ``ray`` is first imported (into
    ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``, which only ``get_node_ip_address`` and
    ``ray start`` consult); this process imported it before, so the value it read is set here for
    the call. The processes Ray starts read the variable themselves."""
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def _processes() -> list[int]:
    """The ids of every process (``/proc``; empty where there is none)."""
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()] if Path("/proc").is_dir() else []


def tagged_processes(run_dir: str | Path) -> list[int]:
    """The processes of this user whose environment carries the run folder's tag (not this process)."""
    want = f"{TAG_VAR}={run_tag(run_dir)}".encode()
    pids = []
    for pid in _processes():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if want in environ.split(b"\0"):
            pids.append(pid)
    return sorted(pids)


def stop_leftovers(run_dir: str | Path, grace_s: float = 5.0) -> list[int]:
    """Stop what a dead driver of ``run_dir`` left running (the caller holds the folder's lock):
    SIGTERM, then SIGKILL after ``grace_s``; a process one of them starts meanwhile (a raylet
    starting a worker) is stopped too. Returns the process ids it found."""
    found: set[int] = set()
    deadline = time.time() + grace_s
    while (alive := set(tagged_processes(run_dir))) and time.time() < deadline + grace_s:
        for pid in alive - found:
            _signal(pid, signal.SIGTERM)
        found |= alive
        if time.time() > deadline:
            for pid in alive:
                _signal(pid, signal.SIGKILL)
        time.sleep(0.2)
    return sorted(found)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
