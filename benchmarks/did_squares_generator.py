"""What does each latent of a trained DiD generator move, on Squares? Measured on G's own images.

MIG scores E on real images; this looks one step earlier, at G. For every run folder given (a
trial folder or a ``did_learning.py --out`` folder: ``config.json`` + ``checkpoint.pt`` of a DiD
run on ``squares``), it draws codes c ~ U(-1, 1), renders G(c), binarises at 0.5 and measures the
blob's side (sqrt of its pixel count) and centre. For each latent it prints the Spearman
correlation with each measure, and for each measure the best latent's |rho| and the gap to the
second best (a MIG-like "one latent, one factor" reading on G's side). A latent that moves x and y
together, or a measure no latent moves, shows here whatever E does. It then reads the same way E's
codes of all 1,024 real squares against their true factors (side, centre x, centre y): whether E
carries G's structure over to real images.

    python benchmarks/did_squares_generator.py runs/did_small_contrast-quick/trials/1 runs/.../trials/4
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from did_core.checkpoint import load_checkpoint
from did_core.data import get_dataset
from did_core.models.did import Config
from did_core.models.did.trainer import build_nets

MEASURES = ("side", "centre_x", "centre_y")


def blob_measures(images: np.ndarray) -> np.ndarray:
    """[N, S, S] binary images -> [N, 3]: sqrt(pixel count), centre column, centre row (NaN if empty).

    >>> img = np.zeros((1, 8, 8)); img[0, 2:4, 4:8] = 1
    >>> blob_measures(img).round(3).tolist()
    [[2.828, 5.5, 2.5]]
    """
    mass = images.sum(axis=(1, 2))
    rows, cols = np.mgrid[0:images.shape[1], 0:images.shape[2]]
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (images * cols).sum(axis=(1, 2)) / mass
        cy = (images * rows).sum(axis=(1, 2)) / mass
    return np.stack([np.sqrt(mass), cx, cy], axis=1)


def load_run(run: Path) -> tuple[Config, dict[str, torch.nn.Module]]:
    """The run's config and its trained nets (one read of ``checkpoint.pt``), in eval mode."""
    cfg = Config.from_dict(json.loads((run / "config.json").read_text()))
    if cfg.dataset != "squares":
        raise SystemExit(f"{run}: a run on {cfg.dataset!r}; this reading needs squares (one blob per image)")
    nets = build_nets(cfg, channels=1, image_size=32)
    saved = load_checkpoint(run / "checkpoint.pt")["nets"]
    for name, net in nets.items():
        net.load_state_dict(saved[name])
        net.eval()
    return cfg, nets


def generator_correlations(cfg: Config, G: torch.nn.Module, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, float]:
    """Spearman rho [n_latents, 3] of each compared latent with each blob measure; share of empty samples."""
    codes = torch.rand(n, cfg.n_code, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with torch.no_grad():
        images = (G(codes) > 0.5).float()[:, 0].numpy()
    measures = blob_measures(images)
    drawn = ~np.isnan(measures).any(axis=1)
    rho = np.array([[spearmanr(codes[drawn, j].numpy(), measures[drawn, m]).statistic for m in range(3)]
                    for j in range(cfg.n_latents)])
    return rho, float(1 - drawn.mean())


def encoder_correlations(cfg: Config, encode) -> np.ndarray:
    """Spearman rho [n_latents, 3] of E's codes of every real square with its side, centre x and centre y."""
    dataset = get_dataset("squares")
    factors = np.stack(np.meshgrid(*[np.arange(s) for s in dataset.factor_sizes], indexing="ij"), -1).reshape(-1, 3)
    with torch.no_grad():
        codes = encode(dataset.images(factors)).numpy()
    return np.array([[spearmanr(codes[:, j], factors[:, m]).statistic for m in range(3)]
                     for j in range(cfg.n_latents)])


def print_rho(rho: np.ndarray) -> None:
    for j, row in enumerate(rho):
        print(f"  latent {j}: " + "  ".join(f"{m} {r:+.2f}" for m, r in zip(MEASURES, row)))
    top = np.sort(np.abs(rho), axis=0)[::-1]
    gaps = top[0] - (top[1] if len(top) > 1 else 0)
    print("  best |rho| / gap to second: " + "  ".join(f"{m} {b:.2f}/{g:.2f}" for m, b, g in zip(MEASURES, top[0], gaps)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for run in args.runs:
        cfg, nets = load_run(run)
        rho, empty = generator_correlations(cfg, nets["G"], args.samples)
        print(f"{run}  (seed {cfg.seed}, lambda_h {cfg.lambda_h}, contrast_start {cfg.contrast_start}, "
              f"{cfg.steps} steps; empty samples {empty:.1%})")
        print_rho(rho)
        print("  E on the real squares, against their true side, centre x, centre y:")
        print_rho(encoder_correlations(cfg, nets["E"] if "E" in nets else nets["D"].encode))


if __name__ == "__main__":
    main()
