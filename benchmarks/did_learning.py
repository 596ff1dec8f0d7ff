"""Does DiD learn at a given budget? Scores of the trained Samples Encoder E against the same E
untrained (same seed, same initial weights), both with the ``dlib`` protocol on real images.

    python benchmarks/did_learning.py --preset quick --seed 0 --out runs/did-learning/seed0
    python benchmarks/did_learning.py --preset quick --seed 1 --out runs/did-learning/seed1
    python benchmarks/did_learning.py --dataset squares --steps 6000 --set lambda_h=0 --out runs/x


Run one seed per process (two processes use the two cores of a small machine). Each prints one
line per progress/eval event and ends with a JSON line: the config, the untrained scores, every
evaluation's scores, the final ones, minutes, and the environment (packages, code revision).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from did_core.data import get_dataset
from did_core.metrics import evaluate
from did_core.models.did import Config, train
from did_core.models.did.trainer import build_nets


def untrained_scores(cfg: Config) -> dict[str, float]:
    """E exactly as the training run initialises it (``Run`` seeds torch with ``cfg.seed``)."""
    dataset = get_dataset(cfg.dataset, source=cfg.data_source, path=cfg.data_path)
    torch.manual_seed(cfg.seed)
    nets = build_nets(cfg, dataset.num_channels, dataset.image_size)
    encoder = nets["E"] if "E" in nets else nets["D"].encode
    with torch.no_grad():
        return dict(evaluate(dataset, encoder, protocol=cfg.final_protocol, metrics=cfg.metric_names(), seed=cfg.seed))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--metrics", default="mig,dci,sap", help="scores to compute (final protocol: dlib)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None, help="generator steps (default: the preset's)")
    ap.add_argument("--dataset", default="dsprites")
    ap.add_argument("--protocol", default="dlib", help="final protocol")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other Config field")
    args = ap.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    cfg = Config.from_preset(args.preset, seed=args.seed, final_protocol=args.protocol, eval_metrics=args.metrics,
                             num_threads=args.threads, dataset=args.dataset, **overrides)
    if args.steps is not None:
        cfg = cfg.replace(steps=args.steps)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    before = untrained_scores(cfg)
    print("untrained", json.dumps({k: round(v, 4) for k, v in before.items()}), flush=True)
    after, curve = {}, []
    for event in train(cfg, out_dir=args.out, resume=False):
        minutes = (time.perf_counter() - start) / 60
        if event["kind"] == "progress":
            losses = " ".join(f"{k}={v:.3f}" for k, v in event["losses"].items())
            print(f"{minutes:6.1f} min step {event['step']:5d} {losses} img/s={event['images_per_sec']:.0f}", flush=True)
        else:
            scores = " ".join(f"{k}={v:.4f}" for k, v in event["scores"].items())
            print(f"{minutes:6.1f} min {event['kind']} ({event['protocol']}) step {event['step']}: {scores}", flush=True)
            after = event["scores"]
            curve.append({"step": event["step"], "protocol": event["protocol"], "scores": dict(event["scores"])})
    from orchestrator.run_folder.environment import capture  # packages, code revision, host

    print(json.dumps({"preset": args.preset, "seed": args.seed, "config": cfg.to_dict(), "untrained": before,
                      "evaluations": curve, "trained": after, "minutes": round((time.perf_counter() - start) / 60, 1),
                      "environment": capture()}), flush=True)


if __name__ == "__main__":
    main()
