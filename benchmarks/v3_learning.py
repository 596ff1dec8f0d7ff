"""Does V3 learn at a given budget? Its scores trained, untrained (the same nets at step 0, same
seed and initial weights; the codebook then is k-means of the untrained content codes) and
trained with all four hinge terms off (the autoencoder and the quantiser alone).

    python benchmarks/v3_learning.py --preset quick --seeds 0 1 --out runs/v3-learning
    python benchmarks/v3_learning.py --summary runs/v3-learning      # the table of what finished
    python benchmarks/v3_learning.py --pixel-baseline                # k-means on pixels, for scale

Runs one after another (one core each: ``--threads``); each run's folder under ``--out``
(``trained-seed0/``, ``hinge_off-seed0/``, ...) keeps its ``scores.json``, ``traversal.png`` (the
swap grid) and ``codebook.json``; the untrained scores go to ``untrained-seed<k>.json``. Prints one
line per event, then the table: each score's mean over the seeds that finished, per variant.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from did_core.models.v3 import Config, train

VARIANTS = {"trained": {}, "hinge_off": dict(hinge_content=False, hinge_style=False, hinge_across=False,
                                             hinge_within=False)}
SHOWN = ("codebook_accuracy", "codebook_purity", "codebook_hungarian", "codebook_atoms_used",
         "prauc_content_digit", "prauc_style_colour", "prauc_style_digit", "prauc_content_colour",
         "swap_accuracy", "swap_content_accuracy", "swap_style_accuracy", "swap_reader_accuracy", "recon_mse",
         "mig", "dci_disentanglement", "sap")


def run_one(cfg: Config, out: Path, variant: str, start: float) -> None:
    for event in train(cfg, out_dir=out / f"{variant}-seed{cfg.seed}", resume=True):
        minutes = (time.perf_counter() - start) / 60
        if event.kind == "progress":
            losses = " ".join(f"{k}={v:.3f}" for k, v in event.losses.items())
            print(f"{minutes:6.1f} min {variant} seed {cfg.seed} step {event.step:5d} {losses} "
                  f"img/s={event.images_per_sec:.0f}", flush=True)
            continue
        scores = " ".join(f"{k}={v:.4f}" for k, v in event.scores.items())
        print(f"{minutes:6.1f} min {variant} seed {cfg.seed} {event.kind} ({event.protocol}) step {event.step}: "
              f"{scores}", flush=True)
        if event.kind == "eval" and event.step == 0:
            (out / f"untrained-seed{cfg.seed}.json").write_text(json.dumps(event.scores, indent=1))


def summary(out: Path) -> str:
    """Each shown score's mean (and the seeds' values) per variant, from the files that exist."""
    table: dict[str, list[dict]] = {"untrained": [], **{v: [] for v in VARIANTS}}
    for path in sorted(out.glob("untrained-seed*.json")):
        table["untrained"].append(json.loads(path.read_text()))
    for variant in VARIANTS:
        for path in sorted(out.glob(f"{variant}-seed*/scores.json")):
            table[variant].append(json.loads(path.read_text())["scores"])
    lines = [f"{'score':24s}" + "".join(f"{v + f' (n={len(r)})':>28s}" for v, r in table.items())]
    for name in SHOWN:
        cells = []
        for rows in table.values():
            values = [r[name] for r in rows if name in r]
            cells.append(f"{sum(values) / len(values):.3f} [" + " ".join(f"{v:.2f}" for v in values) + "]"
                         if values else "-")
        lines.append(f"{name:24s}" + "".join(f"{c:>28s}" for c in cells))
    return "\n".join(lines)


def pixel_baseline(cfg: Config, atoms: tuple[int, ...] = (10, 16), restarts: int = 3) -> str:
    """The codebook scores of k-means on the colour-free pixels of ``eval_samples`` test samples:
    what appearance alone clusters into, to read ``codebook_accuracy`` against."""
    from sklearn.cluster import KMeans

    from did_core.data import get_dataset
    from did_core.models.v3.scores import codebook_scores, held_out_factors

    data = get_dataset(cfg.dataset).split_view("test")
    y, _ = held_out_factors(data, cfg)
    ink = data.images(y).numpy().min(axis=1).reshape(len(y), -1)  # darkest channel: the stroke, not the colour
    ink = (ink - ink.mean(1, keepdims=True)) / (ink.std(1, keepdims=True) + 1e-6)
    lines = []
    for k in atoms:
        scores = [codebook_scores(KMeans(k, n_init=4, random_state=r).fit_predict(ink), y[:, 0], k)[0]
                  for r in range(restarts)]
        lines.append(f"k-means on pixels, K = {k}, {restarts} restarts: codebook_accuracy "
                     + " ".join(f"{sc['codebook_accuracy']:.3f}" for sc in scores) + ", one-to-one "
                     + " ".join(f"{sc['codebook_hungarian']:.3f}" for sc in scores))
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", default="runs/v3-learning")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--summary", metavar="DIR", help="only print the table of the runs in DIR")
    ap.add_argument("--pixel-baseline", action="store_true", help="only print k-means on the test pixels' scores")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other Config field")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(Path(args.summary)))
        return
    overrides = dict(item.split("=", 1) for item in args.set)
    if args.pixel_baseline:
        print(pixel_baseline(Config.from_preset(args.preset, seed=args.seeds[0], **overrides)))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    for seed in args.seeds:  # one seed of every variant first: a cut-short benchmark still compares
        for variant in args.variants:
            cfg = Config.from_preset(args.preset, seed=seed, num_threads=args.threads,
                                     eval_at_start=variant == "trained", **{**overrides, **VARIANTS[variant]})
            run_one(cfg, out, variant, start)
            print(summary(out), flush=True)
    print(f"done in {(time.perf_counter() - start) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
