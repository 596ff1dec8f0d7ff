"""Train one model and write its run folder: ``checkpoint.pt``, ``scores.json``, ``config.json``,
``traversal.png``. One line per event on stdout; a rerun with the same ``--out`` resumes.

Example:
    python -m did_core.train --dataset dsprites --preset smoke --out runs/did-smoke
    python -m did_core.train --model did --preset quick --out runs/q --set n_compare_dims=4 --set seed=1
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .checkpoint import CheckpointError
from .data import DATASETS, DatasetError
from .models import MODELS, ConfigError, TrainingDiverged, get_model
from .models.events import Event, Progress
from .plugins import PluginError


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` -> dict; the config coerces the strings to each field's type."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def format_event(event: Event) -> str:
    if isinstance(event, Progress):
        losses = " ".join(f"{k}={v:.4g}" for k, v in event.losses.items())
        return f"step {event.step:>7}  {losses}  ({event.images_per_sec:.0f} img/s)"
    scores = " ".join(f"{k}={v:.4f}" for k, v in event.scores.items())
    return f"{event.kind} step {event.step} [{event.protocol}]  {scores}"


def registered(registry) -> str:
    """``name (package), ...`` of a registry's names, sorted, nothing imported."""
    return ", ".join(f"{name} ({package})" for name, package in sorted(registry.packages().items()))


def _make_out(out: Path) -> None:
    """``--out`` as a folder (made if missing); a file there, or a folder that cannot be made, is a ConfigError."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot make the folder ({e.strerror or e})") from None


def main(argv: list[str] | None = None) -> int:
    try:
        models, datasets = registered(MODELS), registered(DATASETS)
    except PluginError as err:  # two packages declare one name
        print(f"error: {err}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m did_core.train", description=__doc__.split("\n\n")[0],
                                     epilog=f"registered models: {models}. registered datasets: {datasets}; "
                                            "or file:PATH, an .npz / .h5 of images and factor indices "
                                            "(docs/extending.md).")
    parser.add_argument("--model", default="did", help="a registered model (see below; default: did)")
    parser.add_argument("--dataset", default=None, help="a registered dataset or file:PATH (default: the config's)")
    parser.add_argument("--preset", default="smoke", help="budget preset: smoke, quick or paper (default: smoke)")
    parser.add_argument("--out", required=True, help="run folder for checkpoint, scores and images")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (repeatable), e.g. --set lambda_h=0.5")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if OUT has a checkpoint")
    parser.add_argument("--json", action="store_true", help="print each event as one JSON line")
    args = parser.parse_args(argv)
    try:
        spec = get_model(args.model)
        overrides = parse_sets(args.set)
        if args.dataset is not None:
            overrides["dataset"] = args.dataset
        config = spec.config_cls.from_preset(args.preset, **overrides)
        _make_out(Path(args.out))
        for event in spec.train(config, out_dir=args.out, resume=not args.no_resume):
            print(json.dumps(event.to_dict()) if args.json else format_event(event), flush=True)
    except (ConfigError, CheckpointError, DatasetError, PluginError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    print(f"wrote {args.out}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
