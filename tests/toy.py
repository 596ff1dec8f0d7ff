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
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
from PIL import Image

from did_core.checkpoint import CheckpointUnreadable
from did_core.metrics import scores_from_codes
from did_core.models import Eval, Final, ModelSpec, Progress, TrainConfig, TrainingDiverged
from did_core.training import CHECKPOINT


@dataclass
class Config(TrainConfig):
    model: ClassVar[str] = "toy"
    x: float = 0.5
    n: int = 1
    mode: str = "a"
    sleep_s: float = 0.0  # seconds of sleep per step
    # a trial raises TrainingDiverged half way when every one of these that is set (not -1) matches it
    fail_n: int = -1
    fail_seed: int = -1
    fail_x: float = -1.0
    # the trial with this x kills its own process (SIGKILL, like an OOM kill) half way, unless it
    # resumed from a checkpoint: a rerun of it finishes
    die_x: float = -1.0
    # every trial whose process has this environment variable set (a Ray node started with it) kills
    # its own process half way, unless it resumed from a checkpoint
    die_env: str = ""

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


def failing(config: Config) -> bool:
    tests = [(config.fail_n, config.n), (config.fail_seed, config.seed), (config.fail_x, config.x)]
    tests = [(want, have) for want, have in tests if want != -1]
    return bool(tests) and all(want == have for want, have in tests)


def extra_scores(config: Config) -> dict[str, float]:
    """Scores of any other metric ``eval_metrics`` names, from the evaluation driver on toy codes
    (the factors plus noise of size ``x``): how a registered metric reaches a study's tables."""
    extra = [m for m in config.metric_names() or [] if m not in ("mig", "dci_disentanglement")]
    if not extra:
        return {}
    rng = np.random.default_rng(config.seed)
    factors = rng.integers(0, 4, size=(300, 2))
    codes = factors + config.x * rng.normal(size=factors.shape)
    return dict(scores_from_codes(codes, factors, protocol=config.final_protocol, metrics=extra, n_jobs=1))


def train(config: Config, out_dir: str | Path | None = None, resume: bool = True) -> Iterator[dict[str, Any]]:
    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT if out is not None else None
    start = 0
    if ckpt is not None and resume and ckpt.exists():
        try:
            start = json.loads(ckpt.read_text())["step"]
        except (ValueError, KeyError, TypeError) as e:  # as load_checkpoint raises for a real model's
            raise CheckpointUnreadable(f"{ckpt}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    fails = failing(config)
    for step in range(start + 1, config.steps + 1):
        time.sleep(config.sleep_s)
        if fails and step > config.steps // 2:
            raise TrainingDiverged(step, "toy", float("nan"))
        dies = config.die_x == config.x or bool(config.die_env and os.environ.get(config.die_env))
        if dies and start == 0 and step > config.steps // 2:
            os.kill(os.getpid(), signal.SIGKILL)
        if step % config.log_every == 0:
            yield Progress(step=step, losses={"toy": 1.0 / step, "resumed_at": float(start)}, images_per_sec=1.0)
        if config.eval_every and step % config.eval_every == 0 and step < config.steps:
            if ckpt is not None:
                ckpt.write_text(json.dumps({"step": step, "config": config.to_dict()}))
            yield Eval(step=step, protocol=config.eval_protocol, scores=scores(config, step / config.steps),
                       checkpoint=str(ckpt) if ckpt else None)
    final = {**scores(config), **extra_scores(config)}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        ckpt.write_text(json.dumps({"step": config.steps, "config": config.to_dict()}))
        (out / "scores.json").write_text(json.dumps(final))
        (out / "config.json").write_text(json.dumps(config.to_dict()))
        bar = np.zeros((16, 64), np.uint8)  # a stand-in traversal: a bar at x
        bar[4:12, int(config.x * 56):int(config.x * 56) + 8] = 255
        Image.fromarray(bar).save(out / "traversal.png")
    yield Final(step=config.steps, protocol=config.final_protocol, scores=final)


TOY = ModelSpec(name="toy", config_cls=Config, train=train)


# ---- a selection hook (orchestrator.select's tests): no nets, a known geometry ------------------
# Model (x, seed) sees dSprites' position through a rotation by x * 0.4 * seed radians: the seeds
# of a small-x configuration agree (high UDR), those of a large-x one disagree. Its generator draws
# a square whose position is the rotated latents (0, 1) and whose scale is latent 2; its encoder reads
# the drawing's centre of mass, rotated back, and its mass.

def toy_angle(config: Config) -> float:
    return config.x * 0.4 * config.seed


class ToyView:
    n_latents = 3

    def __init__(self, config: Config):
        from did_core.data import get_dataset

        self.angle, self.data = toy_angle(config), get_dataset("dsprites")
        c, s = math.cos(self.angle), math.sin(self.angle)
        self.rotation = np.array([[c, -s], [s, c]])

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-1, 1, size=(n, 3))

    def sample(self, codes: np.ndarray):
        position = np.clip(codes[:, :2] @ self.rotation.T, -1, 1)
        rows = np.zeros((len(codes), 5), dtype=np.int64)  # shape (a square), scale, orientation, posX, posY
        rows[:, 1] = np.round((codes[:, 2] + 1) / 2 * 5)
        rows[:, 3:] = np.round((position + 1) / 2 * 31)
        return self.data.images(rows)

    def encode(self, images) -> np.ndarray:
        x = np.asarray(images, dtype=np.float64)[:, 0]
        mass = x.sum(axis=(1, 2)) + 1e-9
        axis = np.linspace(-1, 1, x.shape[-1])
        centre = np.stack([(x.sum(axis=1) * axis).sum(axis=1), (x.sum(axis=2) * axis).sum(axis=1)], axis=1) / mass[:, None]
        return np.concatenate([centre @ self.rotation, mass[:, None] / x[0].size], axis=1)


def load_selection(checkpoint, device="cpu"):
    from did_core.models.selection import SelectionModel

    config = Config.from_dict(json.loads(Path(checkpoint).read_text())["config"])
    view = ToyView(config)
    return SelectionModel(config=config, encode=view.encode, kl=None, generator=view)


TOY_SELECTABLE = ModelSpec(name="toy", config_cls=Config, train=train, selection=load_selection)
