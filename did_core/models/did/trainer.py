"""DiD training: WGAN-GP critic steps, then one joint step of G, H and E on base codes and their moves.

Read top to bottom: build the nets, resume, then per generator step
1. ``n_critic`` critic steps on real images against ``G(c)`` (with ``encoder="critic_head"`` the
   critic's code head, which is E, also learns ``L_enc`` on those fakes);
2. base codes ``c`` and moved codes (``k`` of the compared axes each) rendered by G in one batch;
   ``L_adv = -D(G(c))``, ``L_H`` on the (base, moved) pairs, ``L_enc`` on every rendered code, H
   and E seeing G's images through ``view``; one backward: H and E learn their own losses, G gets
   ``L_adv + w (lambda_h L_H + lambda_enc L_enc)``, ``w`` 0 until ``contrast_start``, then ramped;
3. with ``lambda_rec > 0`` (not in the paper), E alone inverts the frozen G on a real batch.
``E`` on real images is the representation that is scored; every evaluation also records the
shortcut diagnostics (``diagnostics.py``).

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
from .diagnostics import shortcut_diagnostics
from .losses import (contrast_loss, critic_loss, encoder_loss, generator_adv_loss, gradient_penalty,
                     inversion_loss, scale_grad)
from .nets import BroadcastGenerator, Critic, DifferenceEncoder, Generator, SamplesEncoder
from .sample_generation import order_pairs, sample_codes, sample_moves, traversal_codes
from .views import view


GENERATORS = {"dcgan": Generator, "broadcast": BroadcastGenerator}


def build_nets(cfg: Config, channels: int, image_size: int = 64) -> dict[str, torch.nn.Module]:
    """The nets, initialised from torch's global RNG (the Run seeds it with ``cfg.seed``): G, D, H and,
    unless E is the critic's code head, E."""
    m, s = cfg.n_latents, image_size
    render = {"upsample": cfg.g_upsample} if cfg.g_arch == "broadcast" else {}  # the DCGAN G draws at full size
    nets = {
        "G": GENERATORS[cfg.g_arch](cfg.n_code, channels, cfg.width, cfg.g_norm, cfg.g_out, s, **render),
        "D": Critic(channels, cfg.width, s, code_dims=m if cfg.encoder == "critic_head" else 0),
        "H": DifferenceEncoder(channels, cfg.embed_dim, cfg.width, cfg.pair, cfg.h_head_norm, s),
    }
    if cfg.encoder == "separate":
        nets["E"] = SamplesEncoder(channels, m, cfg.width, s)
    return nets


def build_optimizers(cfg: Config, nets: dict[str, torch.nn.Module]) -> dict[str, torch.optim.Optimizer]:
    lrs = {"G": cfg.lr_g, "D": cfg.lr_d, "H": cfg.lr_h, "E": cfg.lr_e}
    return {k: torch.optim.Adam(nets[k].parameters(), lr=lrs[k], betas=(cfg.beta1, cfg.beta2)) for k in nets}


def loss_weight(cfg: Config, step: int) -> float:
    """The share of lambda_h and lambda_enc that reaches G: 0 up to ``contrast_start``, then a linear
    ramp to 1 over ``lambda_warmup`` generator steps."""
    if step <= cfg.contrast_start:
        return 0.0
    return min(1.0, (step - cfg.contrast_start) / cfg.lambda_warmup) if cfg.lambda_warmup > 0 else 1.0


def train(config: Config, out_dir: str | Path | None = None, resume: bool = True) -> Iterator[dict[str, Any]]:
    cfg = config
    run = Run(cfg, out_dir, resume)
    dev, gen, data = run.device, run.generator, run.dataset

    nets = {name: run.prepare(net) for name, net in build_nets(cfg, data.num_channels, data.image_size).items()}
    opts = build_optimizers(cfg, nets)
    start = run.restore(nets, opts)
    G, D, H = nets["G"], nets["D"], nets["H"]
    e_name = "E" if "E" in nets else "D"  # the net that holds E's weights
    E = nets[e_name]
    # The critic stays uncompiled: its gradient penalty needs a double backward.
    g, h = run.compile(G), run.compile(H)
    e = run.compile(E) if e_name == "E" else D.encode

    def diagnose() -> dict[str, float]:
        return shortcut_diagnostics(G, H, e, data, cfg, dev)

    if cfg.eval_at_start and start == 0:
        yield run.evaluate(0, e, nets, opts, eval_modules=[E], model_scores=diagnose())

    for step in range(start + 1, cfg.steps + 1):
        for _ in range(cfg.n_critic):
            loss_d, gp, loss_e_d = critic_step(D, g, opts["D"], run.real_batch(), cfg, gen, run.autocast)
        loss_adv, loss_h, loss_enc = generator_step(g, D, h, e, opts, cfg, gen, loss_weight(cfg, step),
                                                    run.autocast)
        losses = {"loss_d": loss_d, "gp": gp, "loss_adv": loss_adv, "loss_h": loss_h, "loss_enc": loss_enc}
        if loss_e_d is not None:
            losses["loss_enc_critic"] = loss_e_d
        if cfg.lambda_rec > 0:
            losses["loss_rec"] = inversion_step(g, G, e, E, opts[e_name], run.real_batch(), cfg.lambda_rec,
                                                run.autocast)
        run.record(step, losses, images=cfg.batch_size * cfg.n_critic)
        if run.due(step, cfg.log_every):
            yield run.progress(step)
        if run.due(step, cfg.eval_every) and step < cfg.steps:
            yield run.evaluate(step, e, nets, opts, eval_modules=[E], model_scores=diagnose())

    yield run.final(e, nets, opts, traversal=traversal(G, cfg, dev), eval_modules=[E], model_scores=diagnose())


def critic_step(D, g, opt: torch.optim.Optimizer, real: torch.Tensor, cfg: Config, gen: torch.Generator,
                autocast=contextlib.nullcontext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One WGAN-GP critic update against ``G(c)``; returns (Wasserstein loss, gradient penalty, and
    with E on the critic's trunk E's loss on the fakes, else None)."""
    B = real.shape[0]
    D.requires_grad_(True)
    c = sample_codes(B, cfg.n_code, gen, real.device)
    with torch.no_grad(), autocast():
        fake = g(c)
    with_e = cfg.encoder == "critic_head"
    seen = view(fake, cfg.view, cfg.view_noise, gen) if cfg.critic_view or with_e else fake  # what H and E see
    judged = seen if cfg.critic_view else fake
    with autocast():  # one pass of the trunk over every batch it sees
        if with_e:
            scores, codes = D.score_and_encode(torch.cat([real, judged, seen]))
            loss_e = encoder_loss(codes[2 * B:], c[:, :cfg.n_latents])
        else:
            scores, loss_e = D(torch.cat([real, judged])), None
        loss_d = critic_loss(scores[:B], scores[B:2 * B])
    gp = gradient_penalty(D, real, judged, torch.rand(B, generator=gen, device=real.device))  # float32
    opt.zero_grad(set_to_none=True)
    (loss_d + cfg.lambda_gp * gp + (loss_e if loss_e is not None else 0.0)).backward()
    opt.step()
    return loss_d.detach(), gp.detach(), (loss_e.detach() if loss_e is not None else None)


def generator_step(g, D, h, e, opts: dict[str, torch.optim.Optimizer], cfg: Config, gen: torch.Generator,
                   weight: float = 1.0, autocast=contextlib.nullcontext) -> tuple[torch.Tensor, ...]:
    """One joint update of G, H and E on base codes and their moves; ``weight`` scales lambda_h and
    lambda_enc (contrast start and warm-up). Returns (L_adv, L_H, L_enc)."""
    B, n, k = cfg.batch_size, cfg.n_code, cfg.n_compare_dims
    device = next(D.parameters()).device
    D.requires_grad_(False)
    c, moved, dims = sample_moves(B, n, k, cfg.move, gen, cfg.shift_min, cfg.shift_max, device, cfg.n_latents)
    codes_all = torch.cat([c, moved.reshape(B * k, n)])
    with autocast():
        x_all = g(codes_all)  # [B + B*k, C, S, S]: bases first, then the k moves of base 0, 1, ...
        x_seen = view(x_all, cfg.view, cfg.view_noise, gen)
        x_adv = x_seen[:B] if cfg.critic_view else x_all[:B]
        x_enc = scale_grad(x_seen, cfg.lambda_enc * weight)
        if cfg.encoder == "critic_head":  # E is the critic's code head: one pass of the trunk for both
            scores, codes = D.score_and_encode(torch.cat([x_adv, x_enc]))
            d_fake, c_hat = scores[:B], codes[B:]
        else:
            d_fake, c_hat = D(x_adv), e(x_enc)
        loss_adv = generator_adv_loss(d_fake)
        x_h = scale_grad(x_seen, cfg.lambda_h * weight)
        first, second = x_h[:B].repeat_interleave(k, dim=0), x_h[B:]
        if cfg.order_pairs:
            first, second = order_pairs(first, second, c, moved, dims)
        v = h(first, second).reshape(B, k, -1)
        loss_h = contrast_loss(cfg.contrast, v, dims, cfg.tau)
        loss_enc = encoder_loss(c_hat, codes_all[:, :cfg.n_latents])
    learners = [name for name in ("G", "H", "E") if name in opts]
    for name in learners:
        opts[name].zero_grad(set_to_none=True)
    (loss_adv + loss_h + loss_enc).backward()
    for name in learners:
        opts[name].step()
    return loss_adv.detach(), loss_h.detach(), loss_enc.detach()


def inversion_step(g, G: torch.nn.Module, e, E: torch.nn.Module, opt: torch.optim.Optimizer, real: torch.Tensor,
                   lambda_rec: float, autocast=contextlib.nullcontext) -> torch.Tensor:
    """E (the module ``E``, evaluated through ``e``) learns ``lambda_rec * L_rec``: the code it reads from a
    real image must make the frozen G redraw that image. Returns ``L_rec``."""
    G.requires_grad_(False)
    E.requires_grad_(True)
    try:
        with autocast():
            redrawn = g(e(real))
        loss = inversion_loss(redrawn, real)  # outside autocast: CUDA autocast refuses binary cross-entropy
        opt.zero_grad(set_to_none=True)
        (lambda_rec * loss).backward()
        opt.step()
    finally:
        G.requires_grad_(True)
    return loss.detach()


@torch.no_grad()
def traversal(G: torch.nn.Module, cfg: Config, device: torch.device) -> torch.Tensor:
    """``[n_code, steps, C, S, S]``: row ``i`` sweeps latent ``i`` (noise latents last) from -1 to 1, the others held
    at one code drawn from the prior with the run's seed. (Not at 0: the centre of the cube is an
    atypical code, and a small G draws an empty image there.)"""
    base = sample_codes(1, cfg.n_code, torch.Generator().manual_seed(cfg.seed))[0]
    was_training = G.training
    G.eval()
    try:
        x = G(traversal_codes(cfg.n_code, cfg.traversal_steps, base).to(device)).float()
    finally:
        G.train(was_training)
    return x.reshape(cfg.n_code, cfg.traversal_steps, *x.shape[1:])
