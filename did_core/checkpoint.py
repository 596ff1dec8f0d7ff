"""Save and restore a training run: nets, optimisers, step, RNG states and the config.

Files are written atomically (temporary file, then rename) and read with
``torch.load(weights_only=True)``, so a checkpoint can never run code when loaded.

Example:
    >>> save_checkpoint("run/checkpoint.pt", step=500, nets={"G": g}, optimizers={"G": opt},
    ...                 rng=rng_state(generators={"codes": gen}), config=cfg.to_dict())
    >>> state = load_checkpoint("run/checkpoint.pt")
    >>> restore_modules(state, nets={"G": g}, optimizers={"G": opt}); state["step"]
    500
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_path


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or does not match the run; the message names the file."""


class CheckpointUnreadable(CheckpointError):
    """The file is not a readable training checkpoint (truncated, corrupt, another format): what a
    run can do with it is start over, never resume."""


def rng_state(generators: dict[str, torch.Generator] | None = None,
              numpy_rngs: dict[str, np.random.Generator] | None = None) -> dict[str, Any]:
    """Every random state a run depends on: torch's global CPU/CUDA states plus the named ones (each
    generator's state with the kind of device it draws on). All are CPU byte tensors."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
        "generator_devices": {k: g.device.type for k, g in (generators or {}).items()},
        "numpy": {k: r.bit_generator.state for k, r in (numpy_rngs or {}).items()},
    }


CPU_GENERATOR_STATE_BYTES = 5056  # torch's CPU generator (Mersenne Twister); a CUDA one (Philox) holds 16


def generator_kind(state: dict[str, Any], name: str) -> str:
    """The device kind the saved generator ``name`` drew on (older checkpoints: told by its size)."""
    kinds = state.get("generator_devices") or {}
    if name in kinds:
        return kinds[name]
    return "cpu" if state["generators"][name].numel() == CPU_GENERATOR_STATE_BYTES else "cuda"


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator] | None = None,
                  numpy_rngs: dict[str, np.random.Generator] | None = None) -> list[str]:
    """Restore what :func:`rng_state` saved (the states must be on the CPU: load with
    ``map_location="cpu"``). A generator saved on another kind of device (a CUDA run resumed on a
    CPU node, or back) cannot take that state: it is seeded from the saved state's bytes instead,
    so the resumed run is reproducible but draws other numbers than an uninterrupted one would.
    Returns the names of the generators so reseeded."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    reseeded = []
    for k, g in (generators or {}).items():
        saved = state["generators"][k].cpu()
        if generator_kind(state, k) == g.device.type:
            g.set_state(saved)
        else:
            g.manual_seed(int.from_bytes(hashlib.sha256(saved.numpy().tobytes()).digest()[:8], "little"))
            reseeded.append(k)
    for k, r in (numpy_rngs or {}).items():
        r.bit_generator.state = state["numpy"][k]
    return reseeded


def save_checkpoint(path: str | os.PathLike, *, step: int, nets: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], rng: dict[str, Any],
                    config: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": int(step),
        "nets": {k: m.state_dict() for k, m in nets.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "rng": rng,
        "config": config,
        "extra": extra or {},
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: a full disk is OSError(ENOSPC)
        torch.save(state, f)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointUnreadable(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated, corrupt or not a torch file at all
        raise CheckpointUnreadable(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    missing = {"step", "nets", "optimizers", "rng", "config"} - set(state) if isinstance(state, dict) else {"all keys"}
    if missing:
        raise CheckpointUnreadable(f"{path}: not a training checkpoint (missing {sorted(missing)})")
    return state


def restore_modules(state: dict[str, Any], nets: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], path: str | os.PathLike = "checkpoint") -> None:
    """Load the nets' and optimisers' states; a net or optimiser missing from the file is an error."""
    for kind, have, objs in (("net", state["nets"], nets), ("optimizer", state["optimizers"], optimizers)):
        absent = sorted(set(objs) - set(have))
        if absent:
            raise CheckpointError(f"{path}: has no {kind} state for {absent} (it has {sorted(have)})")
    try:
        for k, m in nets.items():
            m.load_state_dict(state["nets"][k])
        for k, o in optimizers.items():
            o.load_state_dict(state["optimizers"][k])
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: does not fit this model ({err})") from None
