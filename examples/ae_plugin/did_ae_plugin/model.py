"""A plain autoencoder (MLP encoder and decoder, Bernoulli loss): an example plugin model.

Everything a model of did-orchestrator has: a ``Config`` with presets, ``train`` yielding
``Progress`` / ``Eval`` / ``Final`` through :class:`did_core.training.Run` (device, seeding,
checkpoints, resume, the disentanglement metrics), a score of its own (``ae_recon_error``,
registered as the metric entry point ``RECON_ERROR``), a picture of its own (``recon.png``:
images over their reconstructions), a report section that shows both, and its trained encoder
for ``did_core.load_encoder`` (``load_encoder``).

Example:
    >>> cfg = Config.from_preset("smoke", latent_dim=3)
    >>> [e.kind for e in train(cfg, out_dir="runs/ae")][-1]
    'final'
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
from torch import nn

from did_core.images import save_image_grid
from did_core.metrics import Metric
from did_core.metrics.registry import MODEL
from did_core.models import ConfigError, Event, TrainConfig
from did_core.models.encoder import restore_encoder_nets
from did_core.models.report import Figure, Image, ReportSection, RunView, Table, Text, fmt
from did_core.training import Run

RECON_ERROR = Metric("ae_recon_error", {"ae_recon_error": "minimize"}, MODEL)  # provided by the model
RECON_FILE = "recon.png"
N_SHOWN = 8  # images in recon.png


@dataclass
class Config(TrainConfig):
    model: ClassVar[str] = "plain_ae"
    dataset: str = "tiny_bars"
    latent_dim: int = 4
    hidden: int = 128
    lr: float = 1e-3

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(steps=30, log_every=10, eval_every=15, eval_protocol="fast", final_protocol="fast",
                      batch_size=16, eval_metrics="mig,gaussian_tc"),
        "quick": dict(steps=2000, log_every=50, eval_every=500),
        "paper": dict(steps=20_000, log_every=200, eval_every=5000),
    }

    def validate(self) -> None:
        super().validate()
        for name in ("latent_dim", "hidden"):
            if getattr(self, name) < 1:
                raise ConfigError.invalid(type(self).__name__, name, f"must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError.invalid(type(self).__name__, "lr", f"must be > 0, got {self.lr}")


def nets(pixels: int, cfg: Config) -> tuple[nn.Module, nn.Module]:
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.latent_dim))
    decoder = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, pixels))
    return encoder, decoder


def load_encoder(checkpoint: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The trained encoder from a checkpoint: what ``did_core.load_encoder(trial_dir)`` loads for this model."""
    def build(cfg: Config, shape: tuple[int, int]) -> dict[str, nn.Module]:
        channels, size = shape
        return {"encoder": nets(channels * size * size, cfg)[0]}

    return restore_encoder_nets(Config, checkpoint, device, build)[1]["encoder"]


@torch.no_grad()
def recon_error(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor) -> float:
    """Mean squared error per pixel of the reconstructions of ``x``."""
    return float(((torch.sigmoid(decoder(encoder(x))).view_as(x) - x) ** 2).mean())


def train(config: Config, out_dir: str | Path | None = None, resume: bool = True) -> Iterator[Event]:
    run = Run(config, out_dir, resume)
    shape = (run.dataset.num_channels, run.dataset.image_size, run.dataset.image_size)
    encoder, decoder = (run.prepare(net) for net in nets(int(np.prod(shape)), config))
    modules = {"encoder": encoder, "decoder": decoder}
    optimizers = {"ae": torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=config.lr)}
    start = run.restore(modules, optimizers)
    held_out = run.dataset.images(run.dataset.sample_factors(256, np.random.default_rng([config.seed, 1])))

    def own_scores() -> dict[str, float]:
        return {"ae_recon_error": recon_error(encoder, decoder, held_out.to(run.device))}

    for step in range(start + 1, config.steps + 1):
        x = run.real_batch()
        logits = decoder(encoder(x)).view_as(x)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        optimizers["ae"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["ae"].step()
        run.record(step, {"reconstruction": loss.detach()}, images=len(x))
        if run.due(step, config.log_every):
            yield run.progress(step)
        if run.due(step, config.eval_every) and step < config.steps:
            yield run.evaluate(step, encoder, modules, optimizers, eval_modules=[encoder], model_scores=own_scores())
    final = run.final(encoder, modules, optimizers, traversal=traversal(encoder, decoder, held_out, config, shape),
                      eval_modules=[encoder], model_scores=own_scores())
    if run.out_dir is not None:
        with torch.no_grad():
            x = held_out[:N_SHOWN].to(run.device)
            save_image_grid(torch.stack([x, torch.sigmoid(decoder(encoder(x))).view_as(x)]).cpu(), run.out_dir / RECON_FILE,
                            zoom=2)
        final.artifacts["recon"] = str(run.out_dir / RECON_FILE)
    yield final


@torch.no_grad()
def traversal(encoder, decoder, images: torch.Tensor, cfg: Config, shape: tuple[int, ...], steps: int = 8) -> torch.Tensor:
    """[latent_dim, steps, C, S, S]: each latent swept over the range of its codes on ``images``."""
    device = next(encoder.parameters()).device
    codes = encoder(images.to(device))
    rows = []
    for d in range(cfg.latent_dim):
        z = codes[:1].repeat(steps, 1)
        z[:, d] = torch.linspace(float(codes[:, d].min()), float(codes[:, d].max()), steps, device=device)
        rows.append(torch.sigmoid(decoder(z)).view(steps, *shape))
    return torch.stack(rows)


def report_sections(run: RunView) -> list[ReportSection]:
    """"Reconstructions (plain autoencoder)": every trial's error, and the best trial's pictures."""
    done = run.ranked()
    if done.empty or "ae_recon_error" not in done.columns:
        return []
    rows = [[int(r["trial"]), run.label(r), int(r["seed"]), fmt(r["ae_recon_error"], 3), fmt(r.get("mig"), 3)]
            for _, r in done.iterrows()]
    bars = {"data": [{"type": "bar", "x": [str(r[0]) for r in rows], "y": [float(v) for v in done["ae_recon_error"]]}],
            "layout": {"title": {"text": "reconstruction error per trial"}, "xaxis": {"title": {"text": "trial"}},
                       "height": 320}}
    blocks = [Text("The autoencoder's own score: mean squared error per pixel of 256 held-out images, final "
                   "evaluation, best trial first."),
              Table(["trial", "configuration", "seed", "reconstruction error", "mig"], rows), Figure(bars)]
    best = int(done["trial"].iloc[0])
    picture = run.trial_file(best, RECON_FILE)
    if picture is not None:
        blocks.append(Image(picture, f"trial {best}: images (top) and their reconstructions (bottom)"))
    return [ReportSection("plain_ae.reconstructions", "Reconstructions (plain autoencoder)", blocks)]
