"""PartedVAE training: per iteration one labelled cross-entropy step, then one VAE step.

Read top to bottom: build the nets and the labelled set, resume, then per step
1. (when there are labelled images) a batch of ``labelled_batch_size`` of them: cross-entropy of
   ``c``'s logits against the class factor, one step of its own Adam over the encoder's trunk and
   ``c``'s head only;
2. a batch of real images: encode (Gumbel-softmax ``c`` at ``temperature``, the attention gate at
   this step's slope), sample ``z`` and ``u``, decode ``[z, u]``; one Adam step of every net and
   the prior on the objective of ``losses.py`` with this step's capacities.
The representation that is scored is ``[mu_z, mu_u]`` in evaluation (one-hot ``c``, the slope's
cap); every evaluation also records the model's own scores (``scores.py``).

Example:
    >>> cfg = Config.from_preset("smoke", seed=0)
    >>> for event in train(cfg, out_dir="runs/parted-smoke"):
    ...     print(event.kind, event.step)
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ...data import dataset_factors
from ...training import Run
from ..base import ConfigError
from ..encoder import CodeFunction, restore_encoder_nets
from ..vae_losses import reparameterise
from ..vae_nets import Decoder
from .config import Config
from .images import SWAP, write_images
from .labelled import labelled_factors
from .losses import attention_slope, objective, supervised_loss
from .nets import PartedEncoder, UPrior
from .scores import encode_hard, model_scores


def class_columns(dataset, cfg: Config) -> tuple[list[int], list[int]]:
    """The dataset columns of the class factors and their numbers of classes."""
    columns = [list(dataset.factor_names).index(f) for f in cfg.class_factors()]
    return columns, [dataset.factor_sizes[c] for c in columns]


def build_nets(cfg: Config, channels: int, class_sizes: list[int]) -> dict[str, torch.nn.Module]:
    """Encoder, decoder and ``u``'s prior, initialised from torch's global RNG (seeded by the Run)."""
    return {"encoder": PartedEncoder(channels, cfg.z_dim, class_sizes, cfg.u_dim, cfg.attention),
            "decoder": Decoder(channels, cfg.z_dim + cfg.u_dim * len(class_sizes)),
            "prior": UPrior(class_sizes, cfg.u_dim, cfg.prior)}


def build_optimizers(cfg: Config, nets: dict[str, torch.nn.Module]) -> dict[str, torch.optim.Optimizer]:
    """``vae``: every parameter (the prior's too); ``supervised``: the trunk and ``c``'s head."""
    params = [p for net in nets.values() for p in net.parameters()]
    return {"vae": torch.optim.Adam(params, lr=cfg.lr),
            "supervised": torch.optim.Adam(nets["encoder"].supervised_parameters(), lr=cfg.lr_supervised)}


def train(config: Config, out_dir: str | Path | None = None, resume: bool = True) -> Iterator[dict[str, Any]]:
    cfg = config
    if out_dir is not None and not resume:
        (Path(out_dir) / SWAP).unlink(missing_ok=True)
    run = Run(cfg, out_dir, resume)
    data, dev = run.dataset, run.device
    if data.image_size != 64:  # the authors' nets (and the baselines') are for 64x64 images
        raise ConfigError.invalid(type(cfg).__name__, "dataset", f"PartedVAE's nets take 64x64 images; "
                                  f"{cfg.dataset!r} has {data.image_size}x{data.image_size}")
    columns, sizes = class_columns(data, cfg)
    nets = {name: run.prepare(net) for name, net in build_nets(cfg, data.num_channels, sizes).items()}
    opts = build_optimizers(cfg, nets)
    labelled = labelled_factors(data, cfg.n_labelled, columns, cfg.seed)
    start = run.restore(nets, opts)
    enc, dec, prior = nets["encoder"], nets["decoder"], nets["prior"]
    e, d = run.compile(enc), run.compile(dec)

    def encode(x: torch.Tensor) -> torch.Tensor:
        return encode_hard(e, x, cfg).code()

    def own_scores() -> dict[str, float]:
        return model_scores(e, d, prior, data, cfg, columns, dev)

    if cfg.eval_at_start and start == 0:
        yield run.evaluate(0, encode, nets, opts, eval_modules=[enc], model_scores=own_scores())

    for step in range(start + 1, cfg.steps + 1):
        losses = {}
        if len(labelled):
            pick = labelled[run.data_rng.integers(0, len(labelled), size=cfg.labelled_batch_size)]
            x_l = data.images(pick).to(dev)
            losses["supervised"] = supervised_step(e, opts["supervised"], x_l, torch.as_tensor(
                pick[:, columns], device=dev), sizes, run.autocast)
        slope = attention_slope(step, cfg.slope_start, cfg.slope_max, cfg.slope_steps)
        losses.update(vae_step(e, d, prior, opts["vae"], run.real_batch(), cfg, sizes, step, slope,
                               run.generator, run.autocast))
        run.record(step, losses, images=cfg.batch_size + (cfg.labelled_batch_size if len(labelled) else 0))
        if run.due(step, cfg.log_every):
            yield run.progress(step)
        if run.due(step, cfg.eval_every) and step < cfg.steps:
            yield run.evaluate(step, encode, nets, opts, eval_modules=[enc], model_scores=own_scores())

    artifacts = write_images(e, d, data, cfg, columns, dev, run.out_dir) if run.out_dir is not None else {}
    final = run.final(encode, nets, opts, eval_modules=[enc], model_scores=own_scores())
    final.artifacts.update(artifacts)
    yield final


def supervised_step(e, opt: torch.optim.Optimizer, x: torch.Tensor, labels: torch.Tensor, class_sizes: list[int],
                    autocast=contextlib.nullcontext) -> torch.Tensor:
    """One cross-entropy step of the trunk and ``c``'s head on labelled images; returns the loss."""
    with autocast():
        logits = e.c_head(e.trunk(x))
    loss = supervised_loss(logits.float(), labels, class_sizes)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def vae_step(e, d, prior, opt: torch.optim.Optimizer, x: torch.Tensor, cfg: Config, class_sizes: list[int],
             step: int, slope: float, gen: torch.Generator, autocast=contextlib.nullcontext) -> dict[str, torch.Tensor]:
    """One step of the whole objective; returns its terms (detached)."""
    with autocast():
        post = e(x, slope=slope, temperature=cfg.temperature, generator=gen)
    for name in ("z_mean", "z_logvar", "c_logits", "u_mean", "u_logvar"):
        setattr(post, name, getattr(post, name).float())
    z = reparameterise(post.z_mean, post.z_logvar, gen)
    u = reparameterise(post.u_mean, post.u_logvar, gen)
    with autocast():
        logits = d(torch.cat([z, u], dim=1))
    terms = objective(x.float(), logits.float(), post, prior.means, prior.logvars(), class_sizes, cfg, step)
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    opt.step()
    return {k: v.detach() for k, v in terms.items()}


def load_encoder(checkpoint: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The encoder from a training checkpoint as PartedVAE's evaluation scores it (did_core/models/encoder.py):
    ``[mu_z, mu_u]`` with one-hot ``c`` and the slope at its cap (``encode_hard``)."""

    def build(cfg: Config, shape: tuple[int, int]) -> dict[str, torch.nn.Module]:
        names, sizes = dataset_factors(cfg.dataset)
        class_sizes = [sizes[list(names).index(f)] for f in cfg.class_factors()]
        return {"encoder": build_nets(cfg, shape[0], class_sizes)["encoder"]}

    cfg, nets = restore_encoder_nets(Config, checkpoint, device, build)
    return CodeFunction(lambda x, encoder: encode_hard(encoder, x, cfg).code(), nets)
