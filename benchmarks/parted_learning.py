"""Does PartedVAE learn at a given budget? For each seed: the model trained with ``--labels``
labelled images (default 10,000) and with none, against the same model untrained (same seed, same
initial weights): ``class_accuracy`` (chance 1/3 for dSprites' three shapes), its matched form,
``swap_accuracy``, ``prior_overlap``, and MIG / DCI on ``[mu_z, mu_u]`` with the ``dlib`` protocol.

    python benchmarks/parted_learning.py --preset quick --seed 0 --out runs/parted-learning
    python benchmarks/parted_learning.py --preset quick --seed 1 --out runs/parted-learning

Run one seed per process (two processes use the two cores of a small machine), or split a seed
over two (``--parts labelled,untrained`` and ``--parts unlabelled``). A process trains the
labelled run, scores the untrained model, then trains the run without labels; every finished part
prints a JSON line (``{"seed", "labels", "scores", "minutes"}``; ``labels`` is ``"untrained"`` for
the untrained model) and ``--summary DIR`` prints the table of every JSON line in DIR's logs.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from did_core.data import get_dataset
from did_core.metrics import evaluate
from did_core.models.parted_vae import Config, train
from did_core.models.parted_vae.scores import encode_hard, model_scores
from did_core.models.parted_vae.trainer import build_nets, class_columns

KEYS = ("class_accuracy", "class_accuracy_matched", "swap_accuracy", "prior_overlap", "mig", "dci_disentanglement",
        "dci_informativeness")


def untrained_scores(cfg: Config) -> dict[str, float]:
    """The nets exactly as the training run initialises them (``Run`` seeds torch with ``cfg.seed``)."""
    dataset = get_dataset(cfg.dataset, source=cfg.data_source, path=cfg.data_path)
    torch.manual_seed(cfg.seed)
    columns, sizes = class_columns(dataset, cfg)
    nets = build_nets(cfg, dataset.num_channels, sizes)
    enc, dec, prior = nets["encoder"], nets["decoder"], nets["prior"]
    with torch.no_grad():
        scores = dict(evaluate(dataset, lambda x: encode_hard(enc, x, cfg).code(), protocol=cfg.final_protocol,
                               metrics=cfg.metric_names(), seed=cfg.seed))
        scores.update(model_scores(enc, dec, prior, dataset, cfg, columns, torch.device("cpu")))
    return scores


def trained_scores(cfg: Config, out: Path, start: float) -> dict[str, float]:
    scores = {}
    for event in train(cfg, out_dir=out, resume=True):
        minutes = (time.perf_counter() - start) / 60
        if event.kind == "progress":
            losses = " ".join(f"{k}={v:.3f}" for k, v in event.losses.items())
            print(f"{minutes:6.1f} min n_labelled={cfg.n_labelled} step {event.step:5d} {losses} "
                  f"img/s={event.images_per_sec:.0f}", flush=True)
        else:
            text = " ".join(f"{k}={v:.4f}" for k, v in event.scores.items())
            print(f"{minutes:6.1f} min {event.kind} ({event.protocol}) step {event.step}: {text}", flush=True)
            scores = dict(event.scores)
    return scores


def summary(folder: Path) -> None:
    """The table of every result line in ``folder/*.log``: mean and each seed per setting."""
    rows = [json.loads(line) for log in sorted(folder.glob("*.log")) for line in log.read_text().splitlines()
            if line.startswith("{")]
    order = {"untrained": 0}
    for setting in sorted({str(r["labels"]) for r in rows}, key=lambda s: (order.get(s, 1), s)):
        runs = sorted((r for r in rows if str(r["labels"]) == setting), key=lambda r: r["seed"])
        cells = []
        for key in KEYS:
            values = [r["scores"][key] for r in runs if key in r["scores"]]
            if values:
                cells.append(f"{key} {np.mean(values):.3f} ({' / '.join(f'{v:.3f}' for v in values)})")
        print(f"labels={setting:9s} seeds={[r['seed'] for r in runs]}: " + "; ".join(cells))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/parted-learning")
    ap.add_argument("--labels", type=int, default=10_000, help="labelled images of the labelled run")
    ap.add_argument("--metrics", default="mig,dci", help="disentanglement scores (final protocol: dlib)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other Config field")
    ap.add_argument("--parts", default="labelled,untrained,unlabelled",
                    help="which of the three to run, in this order (two processes may split one seed)")
    ap.add_argument("--summary", action="store_true", help="print the table of every *.log in --out and exit")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.summary:
        summary(out)
        return
    overrides = dict(item.split("=", 1) for item in args.set)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def report(labels, scores) -> None:
        print(json.dumps({"preset": args.preset, "seed": args.seed, "labels": labels, "scores": scores,
                          "minutes": round((time.perf_counter() - start) / 60, 1)}), flush=True)

    parts = {"labelled": args.labels, "untrained": "untrained", "unlabelled": 0}
    unknown = sorted(set(args.parts.split(",")) - set(parts))
    if unknown:
        ap.error(f"--parts: unknown {unknown}; choose from {sorted(parts)}")
    for labels in (parts[p] for p in args.parts.split(",")):
        cfg = Config.from_preset(args.preset, seed=args.seed, eval_metrics=args.metrics, num_threads=args.threads,
                                 n_labelled=args.labels if labels == "untrained" else labels, **overrides)
        if labels == "untrained":
            report(labels, untrained_scores(cfg))
        else:
            report(labels, trained_scores(cfg, out / f"seed{args.seed}-labels{labels}", start))


if __name__ == "__main__":
    main()
