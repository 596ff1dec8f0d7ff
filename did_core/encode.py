"""Encode images with a trained trial: ``python -m did_core.encode TRIAL_DIR IMAGES.npz --out CODES.npz``.

IMAGES.npz holds ``images`` [N, C, S, S] floats in [0, 1] (the layout the trial's dataset yields),
optionally ``factors`` [N, K] and ``images_test`` / ``factors_test``. CODES.npz gets ``codes``
[N, d] (and ``codes_test``) from the trial's encoder (did_core/encoders.py) with the factors carried
over: the file ``python -m did_core.metrics`` scores. ``--evaluation-images FILE`` writes the images
and factors the trial's final evaluation scored, so that the round trip gives the trial's scores:

    python -m did_core.encode runs/x --evaluation-images eval.npz
    python -m did_core.encode runs/x eval.npz --out codes.npz
    python -m did_core.metrics codes.npz --protocol fast --seed 0 --metrics mig    # the trial's mig

Errors (not a trial, a checkpoint that cannot be loaded, images of the wrong shape) are one line
on stderr naming the file, exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .encoders import TrialError, evaluation_sample, load_encoder, read_trial
from .npz import read_npz

PAIRS = (("images", "codes", "factors"), ("images_test", "codes_test", "factors_test"))


def write_npz(path: Path, arrays: dict[str, np.ndarray], compress: bool = False) -> None:
    """``arrays`` as an .npz archive at ``path``, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        (np.savez_compressed if compress else np.savez)(f, **arrays)


def encode_file(trial_dir: str | Path, images_path: str | Path, device: str = "cpu") -> dict[str, np.ndarray]:
    """The arrays of CODES.npz for the images in ``images_path``."""
    encoder = load_encoder(trial_dir, device)  # the trial first: its errors say more than the images'
    images_path = Path(images_path)
    arrays = read_npz(images_path, TrialError)
    if "images" not in arrays:
        raise TrialError(f"{images_path}: missing array 'images' (found: {', '.join(sorted(arrays)) or 'none'})")
    out: dict[str, np.ndarray] = {}
    for images, codes, factors in PAIRS:
        if images not in arrays:
            continue
        if factors in arrays and len(arrays[factors]) != len(arrays[images]):
            raise TrialError(f"{images_path}: {factors!r} has {len(arrays[factors])} rows, {images!r} {len(arrays[images])}")
        try:
            out[codes] = encoder(arrays[images]).cpu().numpy()
        except ValueError as err:  # images of another shape or type than the dataset's
            raise TrialError(f"{images_path}: {images!r}: {err}") from None
        if factors in arrays:
            out[factors] = np.asarray(arrays[factors])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m did_core.encode", description=__doc__.split("\n\n")[0])
    ap.add_argument("trial", metavar="TRIAL_DIR", help="a finished trial folder (checkpoint.pt, config.json, scores.json)")
    ap.add_argument("images", metavar="IMAGES.npz", nargs="?", help="images to encode (with --out)")
    ap.add_argument("--out", metavar="CODES.npz", help="where to write the codes")
    ap.add_argument("--evaluation-images", metavar="FILE.npz",
                    help="write the images and factors of the trial's final evaluation to FILE.npz")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    args = ap.parse_args(argv)
    if (args.images is None) != (args.out is None) or (args.images is None and args.evaluation_images is None):
        ap.error("give IMAGES.npz with --out CODES.npz, or --evaluation-images FILE.npz (or both)")
    try:
        if args.evaluation_images:
            sample = evaluation_sample(args.trial)
            write_npz(Path(args.evaluation_images), sample)
            print(f"wrote {args.evaluation_images}: {len(sample['images'])} + {len(sample['images_test'])} images "
                  f"of the final evaluation", file=sys.stderr)
        if args.images:
            codes = encode_file(args.trial, args.images, args.device)
            write_npz(Path(args.out), codes)
            model, _, config, summary = read_trial(args.trial)
            print(f"wrote {args.out}: codes {list(codes['codes'].shape)} of {model} "
                  f"(score: python -m did_core.metrics {args.out} --protocol {summary.get('protocol', 'dlib')} "
                  f"--seed {config.seed})", file=sys.stderr)
    except (TrialError, ValueError) as err:  # TrialError, an unavailable --device (ConfigError)
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
