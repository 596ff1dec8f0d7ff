"""The training loop shared by the VAE baselines (β-VAE, β-TCVAE, FactorVAE) and their common config.

Common settings of the large published study (Locatello et al. 2019): batch 64, 10 Gaussian
latents, Bernoulli decoder, Adam lr 1e-4 (betas 0.9, 0.999, eps 1e-8), 300,000 steps. Each model
module supplies its objective (and FactorVAE its discriminator update); the run plumbing (device,
seeding, real-data stream, divergence check, evaluation, checkpoints, run files) is
:class:`did_core.training.Run`. The representation is the encoder mean on real images.

Per step: a real batch ``x``; ``mean, logvar = E(x)``; ``z = mean + std * eps``; ``logits = D(z)``;
one Adam step of E and D on the model's ``loss``; then the optional extra update (discriminator).

Example:
    >>> from did_core.models import beta_vae
    >>> for event in beta_vae.train(beta_vae.Config.from_preset("smoke", beta=4.0)):
    ...     print(event.kind, event.step)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch

from ..training import Run
from .base import ConfigError, TrainConfig
from .vae_losses import reparameterise
from .vae_nets import Decoder, Encoder

# objective(run, nets, x, logits, mean, logvar, z) -> {"loss": ..., other named terms}
Objective = Callable[..., dict[str, torch.Tensor]]
# extra_step(run, nets, opts, z_detached) -> {name: loss} (e.g. the FactorVAE discriminator)
ExtraStep = Callable[..., dict[str, torch.Tensor]]


@dataclass
class VAEConfig(TrainConfig):
    latent_dim: int = 10
    lr: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    traversal_steps: int = 10  # columns of traversal.png
    traversal_range: float = 2.0  # each latent swept over [-r, r] around the mean code of one real image

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # seconds of training (each `fast` evaluation takes minutes on 2 CPU cores)
        "smoke": dict(steps=20, log_every=5, eval_every=10, eval_protocol="fast", final_protocol="fast",
                      batch_size=16),
        # ~15-20 min of training on one CPU core (0.3-0.4 s/step); the final dlib evaluation of all
        # scores adds about an hour on CPU (the BetaVAE and FactorVAE scores encode ~3M images)
        "quick": dict(steps=3000, log_every=50, eval_every=1000),
        # the large published study trained every model for 300,000 steps (GPU)
        "paper": dict(steps=300_000, log_every=1000, eval_every=30_000),
    }

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        for field in ("latent_dim", "traversal_steps"):
            if getattr(self, field) < 1:
                raise ConfigError.invalid(name, field, f"must be >= 1, got {getattr(self, field)}")
        for field in ("lr", "adam_eps", "traversal_range"):
            if not getattr(self, field) > 0:
                raise ConfigError.invalid(name, field, f"must be > 0, got {getattr(self, field)}")
        for field in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, field) < 1:
                raise ConfigError.invalid(name, field, f"must be in [0, 1), got {getattr(self, field)}")


def train_vae(cfg: VAEConfig, out_dir: str | Path | None, resume: bool, objective: Objective,
              extra_nets: dict[str, tuple[Callable[[], torch.nn.Module], Callable]] | None = None,
              extra_step: ExtraStep | None = None) -> Iterator[dict[str, Any]]:
    """The event generator of a VAE baseline. ``extra_nets`` maps a name to ``(make_net,
    make_optimizer)`` for nets trained by ``extra_step`` after each VAE step (built after the run
    seeds torch, checkpointed with the rest)."""
    run = Run(cfg, out_dir, resume)
    channels = run.dataset.num_channels
    if run.dataset.image_size != 64:  # the published study's nets are for 64x64 images only
        raise ConfigError.invalid(type(cfg).__name__, "dataset", f"the published VAE nets take 64x64 images; "
                                  f"{cfg.dataset!r} has {run.dataset.image_size}x{run.dataset.image_size}")
    enc = run.prepare(Encoder(channels, cfg.latent_dim))
    dec = run.prepare(Decoder(channels, cfg.latent_dim))
    nets = {"encoder": enc, "decoder": dec}
    opts = {"vae": torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=cfg.lr,
                                    betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps)}
    for name, (make_net, make_optimizer) in (extra_nets or {}).items():
        nets[name] = run.prepare(make_net())
        opts[name] = make_optimizer(nets[name].parameters())
    start = run.restore(nets, opts)
    e, d = run.compile(enc), run.compile(dec)

    def encode(x: torch.Tensor) -> torch.Tensor:
        return e(x)[0]

    if cfg.eval_at_start and start == 0:
        yield run.evaluate(0, encode, nets, opts, eval_modules=[enc])

    for step in range(start + 1, cfg.steps + 1):
        x = run.real_batch()
        with run.autocast():
            mean, logvar = e(x)
        mean, logvar = mean.float(), logvar.float()
        z = reparameterise(mean, logvar, run.generator)
        with run.autocast():
            logits = d(z)
        terms = objective(run, nets, x.float(), logits.float(), mean, logvar, z)
        opts["vae"].zero_grad(set_to_none=True)
        terms["loss"].backward()
        opts["vae"].step()
        if extra_step is not None:
            terms.update(extra_step(run, nets, opts, z.detach()))
        run.record(step, {k: v.detach() for k, v in terms.items()}, images=cfg.batch_size)
        if run.due(step, cfg.log_every):
            yield run.progress(step)
        if run.due(step, cfg.eval_every) and step < cfg.steps:
            yield run.evaluate(step, encode, nets, opts, eval_modules=[enc])

    yield run.final(encode, nets, opts, traversal=traversal(enc, dec, run, cfg), eval_modules=[enc])


@torch.no_grad()
def traversal(enc: torch.nn.Module, dec: torch.nn.Module, run: Run, cfg: VAEConfig) -> torch.Tensor:
    """``[latent_dim, steps, C, 64, 64]``: row ``i`` sweeps latent ``i`` over ``[-r, r]`` around the
    mean code of one real image (drawn from ``cfg.seed``), the other latents held at that code."""
    modes = enc.training, dec.training
    enc.eval(), dec.eval()
    try:
        factors = run.dataset.sample_factors(1, np.random.default_rng(cfg.seed))
        base = enc(run.dataset.images(factors).to(run.device))[0].float()  # [1, latent_dim]
        values = torch.linspace(-cfg.traversal_range, cfg.traversal_range, cfg.traversal_steps, device=run.device)
        codes = base.repeat(cfg.latent_dim, cfg.traversal_steps, 1)  # [latent_dim, steps, latent_dim]
        dims = torch.arange(cfg.latent_dim, device=run.device)
        codes[dims, :, dims] = values
        x = torch.sigmoid(dec(codes.reshape(-1, cfg.latent_dim)).float())
    finally:
        enc.train(modes[0]), dec.train(modes[1])
    return x.reshape(cfg.latent_dim, cfg.traversal_steps, *x.shape[1:])
