"""What a result was produced with: package versions, git revision, host, processor, GPUs.

Example:
    >>> env = capture()
    >>> sorted(env)[:3]
    ['git', 'gpus', 'host']
"""
from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "ray", "optuna", "numpy", "scikit-learn", "scipy", "pandas", "pydantic", "h5py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=1)
def capture() -> dict[str, Any]:
    """The environment of this process (cached: it does not change while the process lives)."""
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "git": git_revision(),
        "gpus": gpus(),
        "cpus": os.cpu_count(),
        "cpu": cpu(),
    }


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """``{"rev": sha, "dirty": bool}``; without git or a repository, the rev from $DID_GIT_REV or None."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return {"rev": rev, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"rev": os.environ.get("DID_GIT_REV"), "dirty": None}


def cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor, as far as it decides a float's last digits (the same seed on another CPU is
    another draw: docs/reproduction.md): the model name, family and model numbers, and the vector
    instructions torch's kernels pick (``torch.backends.cpu.get_cpu_capability()``, where this process
    has loaded torch; a driver that has not does not load it for this). Virtual machines often name
    the model vaguely ("AMD EPYC"), so the numbers and the capability carry the difference."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                if fields:
                    break  # the first processor's block is enough
                continue
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    numbers = ", ".join(f"{k} {fields[k]}" for k in ("cpu family", "model") if k in fields)
    torch = sys.modules.get("torch")
    capability = torch.backends.cpu.get_cpu_capability() if torch is not None else ""
    return name + (f" ({numbers})" if numbers else "") + (f"; torch {capability}" if capability else "")


def gpus() -> list[str]:
    """Names of the CUDA devices this process sees, without opening a CUDA context in the driver (one
    that Ray does not count would take GPU memory from the trials): torch's when this process has
    already initialised CUDA, else ``nvidia-smi``'s (in ``CUDA_VISIBLE_DEVICES`` order when set)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    names = dict(line.split(", ", 1) for line in done.stdout.strip().splitlines() if ", " in line)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    order = [i.strip() for i in visible.split(",") if i.strip()] if visible is not None else sorted(names, key=int)
    return [names[i] for i in order if i in names]
