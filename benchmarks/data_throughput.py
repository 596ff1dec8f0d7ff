"""Procedural data throughput, and its cost relative to one DiD training step on the same device.

Target (issue 2): rendering the real batches one DiD step consumes (``n_critic`` batches) costs
under 5% of that step. Both are timed side by side in this run; the ratio is what counts.

    python benchmarks/data_throughput.py [--device cpu|cuda|auto] [--threads N] [--presets quick,paper]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from did_core.data import get_dataset

TARGET = 0.05


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn, device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn()`` after one warm-up call."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def render_seconds(name: str, batch: int, device: torch.device, repeats: int) -> float:
    ds = get_dataset(name, device=device)
    rng = np.random.default_rng(0)
    return seconds_per_call(lambda: ds.images(ds.sample_factors(batch, rng)), device, repeats)


def warm_up_seconds(name: str, device: torch.device) -> float:
    """One-time cost: 3DShapes ray-casts its 480 geometries once per process and device."""
    from did_core.data.shapes3d import Shapes3DProcedural

    Shapes3DProcedural._shared_layers.pop(str(device), None)
    ds = get_dataset(name, device=device)
    sizes = ds.factor_sizes
    every = np.stack(np.meshgrid(*[np.arange(s) if k >= 3 else [0] for k, s in enumerate(sizes)], indexing="ij"), -1)
    start = time.perf_counter()
    ds.images(every.reshape(-1, len(sizes)))
    _sync(device)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# DiD step timing. Uses the DiD trainer's own step functions; returns None while DiD is absent.
# ---------------------------------------------------------------------------------------------
def time_did_step(dataset: str, device: torch.device, preset: str, repeats: int):
    """Seconds of one DiD generator step (``n_critic`` critic steps + one G/H/E step) on a fixed
    real batch, without data rendering; plus the config. None when DiD cannot be imported."""
    try:
        from did_core.models import get_model
        from did_core.models.did.trainer import build_nets, build_optimizers, critic_step, generator_step
    except ImportError:
        return None
    cfg = get_model("did").config_cls.from_preset(preset, dataset=dataset, device=str(device))
    ds = get_dataset(dataset, device=device)
    nets = {k: v.to(device) for k, v in build_nets(cfg, ds.num_channels).items()}
    opts = build_optimizers(cfg, nets)
    gen = torch.Generator(device=device).manual_seed(0)
    real = ds.images(ds.sample_factors(cfg.batch_size, np.random.default_rng(0)))
    G, D, H, E = nets["G"], nets["D"], nets["H"], nets["E"]

    def step():
        for _ in range(cfg.n_critic):
            critic_step(D, G, opts["D"], real, cfg, gen)
        generator_step(G, D, H, E, opts, cfg, gen)

    return seconds_per_call(step, device, repeats), cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: both when CUDA is present)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--presets", default="quick", help="DiD presets to time, comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]

    for dev_name in devices:
        device = torch.device(dev_name)
        print(f"== device {device} (torch threads {torch.get_num_threads()})")
        per_batch = {}
        for name in ("dsprites", "shapes3d"):
            if name == "shapes3d":
                print(f"{name}: one-time geometry warm-up (480 ray-cast scenes): {warm_up_seconds(name, device):.2f} s")
            for batch in (64, 1024):
                sec = render_seconds(name, batch, device, args.repeats)
                per_batch[name, batch] = sec
                print(f"{name:9s} batch {batch:5d}: {sec * 1e3:8.2f} ms/batch  {batch / sec:10.0f} images/s")
        for preset in args.presets.split(","):
            for name in ("dsprites", "shapes3d"):
                timed = time_did_step(name, device, preset, max(2, args.repeats // 2))
                if timed is None:
                    print("DiD step: unavailable (did_core.models.did cannot be imported); no ratio")
                    break
                step, cfg = timed
                render = render_seconds(name, cfg.batch_size, device, args.repeats) * cfg.n_critic
                ratio = render / step
                verdict = "OK" if ratio < TARGET else "ABOVE TARGET"
                print(
                    f"DiD step [{preset}: batch {cfg.batch_size}, n_critic {cfg.n_critic}, width {cfg.width}] on {name}: "
                    f"{step * 1e3:.1f} ms; rendering its {cfg.n_critic} real batches {render * 1e3:.2f} ms "
                    f"= {ratio:.1%} of the step (target < {TARGET:.0%}: {verdict})"
                )


if __name__ == "__main__":
    main()
