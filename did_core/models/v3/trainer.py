"""V3 training: an autoencoder over the fragments of samples, with content codes vector-quantised
and four hinge losses on how content and style vary within and across samples.

Read top to bottom: build the encoder, the EMA quantiser and the decoder, resume, then per step
1. draw ``batch_size`` samples of 10 fragments and encode every fragment into ``(z_c, z_s)``;
2. quantise ``z_c`` (straight-through; the codebook follows its EMA, not the gradient);
3. decode ``(q(z_c), z_s)``; ``L = w_rec * MSE + sum of the switched-on hinge terms + w * commitment``;
4. one AdamW step, the learning rate decayed by ``max(lr_floor, lr_decay ** (step / lr_decay_steps))``.
The representation that is scored is ``[z_c, z_s]`` (``z_c`` before quantisation) per fragment;
every evaluation also records the model's own scores (``scores.py``), and the final one writes
the swap grid (``traversal.png``) and the atom x digit matrix (``codebook.json``).

Example:
    >>> cfg = Config.from_preset("smoke", seed=0)
    >>> for event in train(cfg, out_dir="runs/v3-smoke"):
    ...     print(event.kind, event.step)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import torch

from ...atomic import atomic_path
from ...training import Run
from ..encoder import CodeFunction, restore_encoder_nets
from ..events import Event
from .config import Config
from .losses import TERMS, hinge, ratios, variabilities
from .nets import FragmentDecoder, FragmentEncoder
from .quantizer import EMAQuantizer
from .scores import v3_evaluation

CODEBOOK_FILE = "codebook.json"


def build_nets(cfg: Config, channels: int) -> dict[str, torch.nn.Module]:
    """E, D and the quantiser Q (no parameters: its codebook is buffers), from torch's global RNG."""
    return {
        "E": FragmentEncoder(channels, cfg.content_dim, cfg.style_dim, cfg.width, cfg.hidden),
        "D": FragmentDecoder(channels, cfg.content_dim, cfg.style_dim, cfg.width, cfg.hidden),
        "Q": EMAQuantizer(cfg.codebook_size, cfg.content_dim, cfg.vq_decay, cfg.vq_dead_threshold),
    }


def fragment_codes(x: torch.Tensor, E: torch.nn.Module) -> torch.Tensor:
    """The representation that is scored: ``[z_c, z_s]`` per fragment (``z_c`` before quantisation)."""
    return torch.cat(E(x), dim=1)


def load_encoder(checkpoint: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """E from a training checkpoint as V3's evaluation scores it (did_core/models/encoder.py): fragments
    ``[n, C, 32, 32]`` to ``[z_c, z_s]``. (``train`` keeps E's weights in the default layout.)"""
    _, nets = restore_encoder_nets(Config, checkpoint, device, lambda cfg, shape: {"E": build_nets(cfg, shape[0])["E"]},
                                   channels_last=False)
    return CodeFunction(fragment_codes, nets)


def learning_rate(cfg: Config, step: int) -> float:
    return cfg.lr * max(cfg.lr_floor, cfg.lr_decay ** (step / cfg.lr_decay_steps))


def train(config: Config, out_dir: str | Path | None = None, resume: bool = True) -> Iterator[Event]:
    cfg = config
    run = Run(cfg, out_dir, resume)
    if run.out_dir is not None and not resume:  # like Run's own files: no earlier run's matrix may stay
        (run.out_dir / CODEBOOK_FILE).unlink(missing_ok=True)
    dev, data = run.device, run.dataset
    nets = {name: net.to(dev) for name, net in build_nets(cfg, data.num_channels).items()}
    E, D, Q = nets["E"], nets["D"], nets["Q"]
    params = list(E.parameters()) + list(D.parameters())
    opts = {"AE": torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)}
    start = run.restore(nets, opts)

    def encode(x: torch.Tensor) -> torch.Tensor:
        return fragment_codes(x, E)

    def model_scores() -> dict[str, float]:
        return v3_evaluation(E, D, Q, data, cfg, dev).scores

    if cfg.eval_at_start and start == 0:
        yield run.evaluate(0, encode, nets, opts, eval_modules=[E, D, Q], model_scores=model_scores())

    L, F = data.sequence_length, data.num_factors
    for step in range(start + 1, cfg.steps + 1):
        for group in opts["AE"].param_groups:
            group["lr"] = learning_rate(cfg, step - 1)
        y = data.sample_sequences(cfg.batch_size, run.data_rng)
        x = data.images(y.reshape(-1, F)).to(dev)
        losses = train_step(E, D, Q, opts["AE"], x, cfg)
        run.record(step, losses, images=len(x))
        if run.due(step, cfg.log_every):
            yield run.progress(step)
        if run.due(step, cfg.eval_every) and step < cfg.steps:
            yield run.evaluate(step, encode, nets, opts, eval_modules=[E, D, Q], model_scores=model_scores())

    result = v3_evaluation(E, D, Q, data, cfg, dev)
    if run.out_dir is not None:
        write_codebook(run.out_dir / CODEBOOK_FILE, result.counts, cfg)
    final = run.final(encode, nets, opts, traversal=result.swap_grid, eval_modules=[E, D, Q],
                      model_scores=result.scores)
    if run.out_dir is not None:
        final.artifacts["codebook"] = str(run.out_dir / CODEBOOK_FILE)
    yield final


def train_step(E, D, Q, opt: torch.optim.Optimizer, x: torch.Tensor, cfg: Config) -> dict[str, torch.Tensor]:
    """One AdamW step on a batch of whole samples ``x [B * L, C, S, S]`` (fragments of a sample
    consecutive); returns the losses and the four ratios (detached)."""
    B = cfg.batch_size
    zc, zs = E(x)
    if cfg.quantized:
        q = Q(zc)
        content, commitment = q.quantized, q.commitment
        v = variabilities(zc.view(B, -1, zc.shape[1]), zs.view(B, -1, zs.shape[1]),
                          q.quantized.view(B, -1, zc.shape[1]))
    else:
        content, commitment = zc, zc.new_zeros(())
        v = variabilities(zc.view(B, -1, zc.shape[1]), zs.view(B, -1, zs.shape[1]))
    rec = torch.nn.functional.mse_loss(D(content, zs), x)
    r = ratios(v)
    terms = {t: hinge(r[t], cfg.relativity) for t in TERMS}
    loss = cfg.recon_weight * rec + cfg.commitment_weight * commitment + sum(terms[t] for t in cfg.hinge_terms())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    out = {"loss": loss, "rec": rec, "commitment": commitment}
    out.update({f"hinge_{t}": terms[t] for t in TERMS})
    out.update({f"ratio_{t}": r[t] for t in TERMS})
    return {k: val.detach() for k, val in out.items()}


def write_codebook(path: Path, counts, cfg: Config) -> None:
    """The atom x digit count matrix of the test fragments, for the report."""
    data = {"rows": "atom", "columns": "digit", "quantized": cfg.quantized, "counts": counts.tolist()}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data) + "\n")
