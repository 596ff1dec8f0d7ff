"""DiD training: WGAN-GP critic steps, then one joint step of G, H and E on base codes and their moves.

Read top to bottom: build the nets, resume, then per generator step
1. ``n_critic`` critic steps on real images against ``G(c)``;
2. base codes ``c`` and moved codes (``k`` axes each) rendered by G in one batch;
   ``L_adv = -D(G(c))``, ``L_H`` on the (base, moved) pairs, ``L_enc`` on every rendered code;
   one backward: H and E learn their own losses, G gets ``L_adv + lambda_h L_H + lambda_enc L_enc``.
``E`` on real images is the representation that is scored.

Example:
    >>> cfg = Config.from_preset("smoke", seed=0)
    >>> for event in train(cfg, out_dir="runs/did-smoke"):
    ...     print(event.kind, event.step)
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import torch

from ...training import Run
from .config import Config
from .losses import (contrast_loss, critic_loss, encoder_loss, generator_adv_loss, gradient_penalty,
                     scale_grad)
from .nets import Critic, DifferenceEncoder, Generator, SamplesEncoder
from .sample_generation import order_pairs, sample_codes, sample_moves, traversal_codes


def build_nets(cfg: Config, channels: int) -> dict[str, torch.nn.Module]:
    """The four nets, initialised from torch's global RNG (the Run seeds it with ``cfg.seed``)."""
    return {
        "G": Generator(cfg.n_latents, channels, cfg.width, cfg.g_norm, cfg.g_out),
        "D": Critic(channels, cfg.width),
        "H": DifferenceEncoder(channels, cfg.embed_dim, cfg.width, cfg.pair, cfg.h_head_norm),
        "E": SamplesEncoder(channels, cfg.n_latents, cfg.width),
    }


def build_optimizers(cfg: Config, nets: dict[str, torch.nn.Module]) -> dict[str, torch.optim.Optimizer]:
    lrs = {"G": cfg.lr_g, "D": cfg.lr_d, "H": cfg.lr_h, "E": cfg.lr_e}
    return {k: torch.optim.Adam(nets[k].parameters(), lr=lrs[k], betas=(cfg.beta1, cfg.beta2)) for k in nets}


def loss_weight(cfg: Config, step: int) -> float:
    """Ramp of lambda_h and lambda_enc: linear from 0 to 1 over ``lambda_warmup`` generator steps."""
    return min(1.0, step / cfg.lambda_warmup) if cfg.lambda_warmup > 0 else 1.0


def train(config: Config, out_dir: str | Path | None = None, resume: bool = True) -> Iterator[dict[str, Any]]:
    cfg = config
    run = Run(cfg, out_dir, resume)
    dev, gen = run.device, run.generator

    nets = {name: run.prepare(net) for name, net in build_nets(cfg, run.dataset.num_channels).items()}
    opts = build_optimizers(cfg, nets)
    start = run.restore(nets, opts)
    G, D, H, E = nets["G"], nets["D"], nets["H"], nets["E"]
    # The critic stays uncompiled: its gradient penalty needs a double backward.
    g, h, e = run.compile(G), run.compile(H), run.compile(E)

    if cfg.eval_at_start and start == 0:
        yield run.evaluate(0, e, nets, opts, eval_modules=[E])

    for step in range(start + 1, cfg.steps + 1):
        for _ in range(cfg.n_critic):
            loss_d, gp = critic_step(D, g, opts["D"], run.real_batch(), cfg, gen, run.autocast)
        loss_adv, loss_h, loss_enc = generator_step(g, D, h, e, opts, cfg, gen, loss_weight(cfg, step),
                                                    run.autocast)
        run.record(step, {"loss_d": loss_d, "gp": gp, "loss_adv": loss_adv, "loss_h": loss_h,
                          "loss_enc": loss_enc}, images=cfg.batch_size * cfg.n_critic)
        if run.due(step, cfg.log_every):
            yield run.progress(step)
        if run.due(step, cfg.eval_every) and step < cfg.steps:
            yield run.evaluate(step, e, nets, opts, eval_modules=[E])

    yield run.final(e, nets, opts, traversal=traversal(G, cfg, dev), eval_modules=[E])


def critic_step(D, g, opt: torch.optim.Optimizer, real: torch.Tensor, cfg: Config, gen: torch.Generator,
                autocast=contextlib.nullcontext) -> tuple[torch.Tensor, torch.Tensor]:
    """One WGAN-GP critic update against ``G(c)``; returns (Wasserstein loss, gradient penalty)."""
    B = real.shape[0]
    D.requires_grad_(True)
    with torch.no_grad(), autocast():
        fake = g(sample_codes(B, cfg.n_latents, gen, real.device))
    with autocast():
        loss_d = critic_loss(D(real), D(fake))
    gp = gradient_penalty(D, real, fake, torch.rand(B, generator=gen, device=real.device))  # float32
    opt.zero_grad(set_to_none=True)
    (loss_d + cfg.lambda_gp * gp).backward()
    opt.step()
    return loss_d.detach(), gp.detach()


def generator_step(g, D, h, e, opts: dict[str, torch.optim.Optimizer], cfg: Config, gen: torch.Generator,
                   weight: float = 1.0, autocast=contextlib.nullcontext) -> tuple[torch.Tensor, ...]:
    """One joint update of G, H and E on base codes and their moves; ``weight`` scales lambda_h and
    lambda_enc (warm-up). Returns (L_adv, L_H, L_enc)."""
    B, n, k = cfg.batch_size, cfg.n_latents, cfg.n_compare_dims
    device = next(D.parameters()).device
    D.requires_grad_(False)
    c, moved, dims = sample_moves(B, n, k, cfg.move, gen, cfg.shift_min, cfg.shift_max, device)
    codes = torch.cat([c, moved.reshape(B * k, n)])
    with autocast():
        x_all = g(codes)  # [B + B*k, C, 64, 64]: bases first, then the k moves of base 0, 1, ...
        loss_adv = generator_adv_loss(D(x_all[:B]))
        x_h = scale_grad(x_all, cfg.lambda_h * weight)
        first, second = x_h[:B].repeat_interleave(k, dim=0), x_h[B:]
        if cfg.order_pairs:
            first, second = order_pairs(first, second, c, moved, dims)
        v = h(first, second).reshape(B, k, -1)
        loss_h = contrast_loss(cfg.contrast, v, dims, cfg.tau)
        loss_enc = encoder_loss(e(scale_grad(x_all, cfg.lambda_enc * weight)), codes)
    for name in ("G", "H", "E"):
        opts[name].zero_grad(set_to_none=True)
    (loss_adv + loss_h + loss_enc).backward()
    for name in ("G", "H", "E"):
        opts[name].step()
    return loss_adv.detach(), loss_h.detach(), loss_enc.detach()


@torch.no_grad()
def traversal(G: torch.nn.Module, cfg: Config, device: torch.device) -> torch.Tensor:
    """``[n_latents, steps, C, 64, 64]``: row ``i`` sweeps latent ``i`` from -1 to 1, the others held
    at one code drawn from the prior with the run's seed. (Not at 0: the centre of the cube is an
    atypical code, and a small G draws an empty image there.)"""
    base = sample_codes(1, cfg.n_latents, torch.Generator().manual_seed(cfg.seed))[0]
    was_training = G.training
    G.eval()
    try:
        x = G(traversal_codes(cfg.n_latents, cfg.traversal_steps, base).to(device)).float()
    finally:
        G.train(was_training)
    return x.reshape(cfg.n_latents, cfg.traversal_steps, *x.shape[1:])
