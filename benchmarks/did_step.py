"""Time one DiD generator step (with its n_critic critic steps) for k = 1, 2, 5, 10 moved axes, next
to a bare WGAN-GP step of the same G and D, measured interleaved in one process.

The extra cost of DiD over WGAN-GP is G on the B*k moved codes, H on B*k pairs and E on B*(1+k)
images, so it should grow linearly in k (plus a constant for E on the base images). The script
fits ``extra(k) = a + b*k`` and prints whether the extra cost grows no faster than linearly:
``extra(10) / extra(1) <= 10`` within 15% noise.

Real images are random binary 64x64 tensors, so the timings are of the model, not the renderer.

Usage:
    python benchmarks/did_step.py                       # quick preset nets, CPU or CUDA
    python benchmarks/did_step.py --preset paper --repeats 20 --device cuda
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from did_core.models.did import Config
from did_core.models.did.losses import generator_adv_loss
from did_core.models.did.sample_generation import sample_codes
from did_core.models.did.trainer import build_nets, build_optimizers, critic_step, generator_step
from did_core.training import choose_device

KS = (1, 2, 5, 10)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_steps(cfg: Config, device: torch.device, autocast):
    torch.manual_seed(0)
    nets = {k: m.to(device) for k, m in build_nets(cfg, 1).items()}
    opts = build_optimizers(cfg, nets)
    gen = torch.Generator(device=device).manual_seed(0)
    real = (torch.rand(cfg.batch_size, 1, 64, 64, generator=gen, device=device) > 0.9).float()
    G, D, H, E = nets["G"], nets["D"], nets["H"], nets["E"]

    def critics():
        for _ in range(cfg.n_critic):
            critic_step(D, G, opts["D"], real, cfg, gen, autocast)

    def did_step():
        critics()
        generator_step(G, D, H, E, opts, cfg, gen, 1.0, autocast)

    def wgan_step():  # the same critic steps, then G on the adversarial loss alone
        critics()
        D.requires_grad_(False)
        with autocast():
            loss = generator_adv_loss(D(G(sample_codes(cfg.batch_size, cfg.n_latents, gen, device))))
        opts["G"].zero_grad(set_to_none=True)
        loss.backward()
        opts["G"].step()

    return did_step, wgan_step


def timed(step, device: torch.device) -> float:
    sync(device)
    t = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per k (median reported)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    overrides = dict(s.split("=", 1) for s in args.set)
    amp = device.type == "cuda"

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if amp else torch.autocast("cpu", enabled=False)

    base = Config.from_preset(args.preset, **overrides)
    print(f"device={device} preset={args.preset} width={base.width} batch={base.batch_size} "
          f"n_critic={base.n_critic} threads={args.threads} repeats={args.repeats}")
    print(f"{'k':>3} {'wgan-gp s':>10} {'did s':>10} {'ratio':>7} {'extra s':>9} {'extra/k s':>10}")
    extras = {}
    for k in KS:
        cfg = base.replace(n_compare_dims=k, n_latents=max(base.n_latents, k))
        did_step, wgan_step = make_steps(cfg, device, autocast)
        did_step(), wgan_step()  # warm-up
        did_t, wgan_t = [], []
        for _ in range(args.repeats):  # interleaved so that machine load hits both alike
            wgan_t.append(timed(wgan_step, device))
            did_t.append(timed(did_step, device))
        w, d = statistics.median(wgan_t), statistics.median(did_t)
        extras[k] = d - w
        print(f"{k:>3} {w:>10.4f} {d:>10.4f} {d / w:>7.2f} {d - w:>9.4f} {(d - w) / k:>10.4f}")
    b, a = np.polyfit(list(extras), list(extras.values()), 1)
    growth = extras[KS[-1]] / extras[KS[0]]
    print(f"fit extra(k) = {a:.4f} + {b:.4f} * k   extra({KS[-1]})/extra({KS[0]}) = {growth:.2f} "
          f"(linear bound {KS[-1] / KS[0]:.0f})")
    ok = growth <= 1.15 * KS[-1] / KS[0]
    print("extra cost grows no faster than linearly in k:", "yes" if ok else "NO")


if __name__ == "__main__":
    main()
