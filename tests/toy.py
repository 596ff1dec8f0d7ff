"""A toy model with the model contract of ``did_core.models`` and known scores, for the
orchestrator's tests and benchmarks (test code: it does not ship with the package): no nets, a fixed sleep per step, a controllable failure.

Its scores are closed-form functions of the parameters (``mig`` is highest at ``x = 0.3, n = 2``),
so a test can check what a search found. It checkpoints and resumes like a real model.

Example:
    >>> cfg = Config.from_preset("smoke", x=0.3, seed=1)
    >>> [e.kind for e in train(cfg)][-1]
    'final'
    >>> study = run_study("my_toy_study.yaml", model=TOY)   # doctest: +SKIP
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

from did_core.models import Eval, Final, ModelSpec, Progress, TrainConfig, TrainingDiverged
from did_core.training import CHECKPOINT


@dataclass
class Config(TrainConfig):
    model: ClassVar[str] = "toy"
    x: float = 0.5
    n: int = 1
    mode: str = "a"
    sleep_s: float = 0.0  # seconds of sleep per step
    fail_n: int = -1  # trials with n == fail_n raise TrainingDiverged half way
    fail_seed: int = -1  # ... or trials with this seed (both -1: never)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(steps=4, log_every=1, eval_every=2, final_protocol="fast"),
        "quick": dict(steps=20, log_every=2, eval_every=5),
        "paper": dict(steps=100, log_every=10, eval_every=20),
    }


def scores(config: Config, progress: float = 1.0) -> dict[str, float]:
    """The scores after a fraction ``progress`` of training; the seed adds a little noise."""
    noise = 0.01 * math.sin(12.9898 * (config.seed + 1))
    mig = (1.0 - (config.x - 0.3) ** 2 - 0.05 * abs(config.n - 2) + (0.02 if config.mode == "b" else 0.0)) * progress
    return {"mig": mig + noise, "dci_disentanglement": config.x * progress + noise}


def train(config: Config, out_dir: str | Path | None = None, resume: bool = True) -> Iterator[dict[str, Any]]:
    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT if out is not None else None
    start = 0
    if ckpt is not None and resume and ckpt.exists():
        start = json.loads(ckpt.read_text())["step"]
    fails = config.n == config.fail_n or config.seed == config.fail_seed
    for step in range(start + 1, config.steps + 1):
        time.sleep(config.sleep_s)
        if fails and step > config.steps // 2:
            raise TrainingDiverged(step, "toy", float("nan"))
        if step % config.log_every == 0:
            yield Progress(step=step, losses={"toy": 1.0 / step, "resumed_at": float(start)}, images_per_sec=1.0)
        if config.eval_every and step % config.eval_every == 0 and step < config.steps:
            if ckpt is not None:
                ckpt.write_text(json.dumps({"step": step}))
            yield Eval(step=step, protocol=config.eval_protocol, scores=scores(config, step / config.steps),
                       checkpoint=str(ckpt) if ckpt else None)
    final = scores(config)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        ckpt.write_text(json.dumps({"step": config.steps}))
        (out / "scores.json").write_text(json.dumps(final))
        (out / "config.json").write_text(json.dumps(config.to_dict()))
    yield Final(step=config.steps, protocol=config.final_protocol, scores=final)


TOY = ModelSpec(name="toy", config_cls=Config, train=train)
