"""A run folder made by a real Optuna study over a cheap formula, in the documented layout.

For the report's tests and its size/speed benchmark, where training real models would take
minutes. The scores follow known formulas (plus seed noise), so tests can check the ranking.

Example:
    >>> run_dir = make_run_folder("/tmp/abl", kind="ablation", seeds=3)
    >>> sorted(p.name for p in run_dir.iterdir())[:3]
    ['curves.csv', 'meta.json', 'optuna.db']
"""
from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import yaml
from PIL import Image

DIMS = [1, 2, 3, 5, 10]  # the did model's Config default, 3, is one of them


def ablation_scores(dims: int, seed: int) -> dict[str, float]:
    """MIG rises with the number of compared dimensions; SAP does not depend on it."""
    noise = np.random.default_rng(1000 + seed).normal(0, 0.01, 3)
    return {"mig": 0.05 + 0.03 * dims + noise[0], "dci_disentanglement": 0.2 + 0.02 * dims + noise[1],
            "sap": 0.1 + noise[2]}


def search_scores(lambda_h: float, lambda_enc: float, contrast: str, seed: int) -> dict[str, float]:
    """MIG peaks at lambda_h = 1 and prefers infonce; lambda_enc barely matters."""
    noise = np.random.default_rng(2000 + seed).normal(0, 0.01, 3)
    mig = 0.4 - 0.1 * math.log10(lambda_h) ** 2 + (0.05 if contrast == "infonce" else 0.0) + noise[0]
    return {"mig": mig, "dci_disentanglement": 0.5 * mig + 0.01 * lambda_enc + noise[1],
            "dci_completeness": 0.4 * mig + noise[1], "dci_informativeness": 0.8 + noise[2],
            "sap": 0.2 + noise[2], "modularity": 0.9 - 0.1 * mig, "explicitness": 0.7 + noise[0],
            "gaussian_tc": 0.3 + 0.1 * lambda_h + noise[2]}


def make_run_folder(out: str | Path, kind: str = "ablation", seeds: int = 3, n_trials: int = 40,
                    fail_trials: tuple[int, ...] = (1,), steps: int = 20, log_points: int = 11,
                    images: bool = True, objectives: int = 1, default: int | None = None,
                    noisy_images_px: int = 0) -> Path:
    """Write study.yaml, meta.json, optuna.db, results.csv, curves.csv and trials/<n>/ under ``out``.

    ``kind="ablation"``: a grid over n_compare_dims x seeds (``n_trials`` ignored). ``kind="search"``: TPE over
    lambda_h, lambda_enc, contrast for ``n_trials`` trials, seeds cycled. ``fail_trials`` raise inside the
    objective (recorded as failed, with their error). ``objectives=2`` adds gaussian_tc (minimise). Curves: 3 losses
    at ``log_points`` steps, and fast/mig + fast/sap at 3 evaluations. ``default`` names the ablation's default;
    ``noisy_images_px`` > 0 makes each traversal.png that many pixels square of incompressible noise.
    """
    out = Path(out)
    (out / "trials").mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the deliberate failures would log
    name = "ablation_synth" if kind == "ablation" else "search_synth"
    objective_spec = [{"metric": "mig", "direction": "maximize"}]
    if objectives == 2:
        objective_spec.append({"metric": "gaussian_tc", "direction": "minimize"})
    if kind == "ablation":
        study_file = {"name": name, "model": "did", "dataset": "dsprites", "objective": objective_spec[0],
                      "search": {"sampler": "grid"}, "space": {"n_compare_dims": DIMS},
                      "seeds": list(range(seeds))}
        if default is not None:
            study_file["default"] = {"n_compare_dims": default}
        sampler = optuna.samplers.GridSampler({"n_compare_dims": DIMS, "seed": list(range(seeds))}, seed=0)
        n_trials = len(DIMS) * seeds
    else:
        study_file = {"name": name, "model": "did", "dataset": "dsprites",
                      "objectives": objective_spec if objectives == 2 else objective_spec[0],
                      "search": {"sampler": "tpe", "n_trials": n_trials},
                      "space": {"lambda_h": {"low": 0.01, "high": 100.0, "log": True},
                                "lambda_enc": {"low": 0.1, "high": 10.0},
                                "contrast": {"choices": ["infonce", "distance"]}},
                      "seeds": list(range(seeds))}
        sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=10, multivariate=True)
    (out / "study.yaml").write_text(yaml.safe_dump(study_file, sort_keys=False))
    directions = [o["direction"] for o in objective_spec]
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{(out / 'optuna.db').resolve()}",
                                sampler=sampler, directions=directions, load_if_exists=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([o["metric"] for o in objective_spec])
    rows, curves = [], []
    started = time.time()

    def objective(trial: optuna.Trial):
        if kind == "ablation":
            params = {"n_compare_dims": trial.suggest_categorical("n_compare_dims", DIMS),
                      "seed": trial.suggest_categorical("seed", list(range(seeds)))}
            seed = params.pop("seed")
            scores = ablation_scores(params["n_compare_dims"], seed)
        else:
            params = {"lambda_h": trial.suggest_float("lambda_h", 0.01, 100.0, log=True),
                      "lambda_enc": trial.suggest_float("lambda_enc", 0.1, 10.0),
                      "contrast": trial.suggest_categorical("contrast", ["infonce", "distance"])}
            seed = trial.number % seeds
            scores = search_scores(**params, seed=seed)
        row = {"trial": trial.number, **params, "seed": seed, "status": "COMPLETE", "error": "", "time_s": 0.01}
        rows.append(row)
        if trial.number in fail_trials:
            row.update(status="FAIL", error="Traceback (most recent call last):\n  ...\n"
                                            "TrainingDiverged: training diverged at step 7: loss 'L_G' is nan")
            raise RuntimeError(row["error"])
        row.update(scores)
        rng = np.random.default_rng(trial.number)
        at = np.unique(np.linspace(0, steps, log_points).astype(int))
        decay = np.exp(-at / max(steps, 1))
        for name, curve in (("L_G", 1.0 + decay), ("L_H", -0.5 * (1 - decay)), ("L_enc", 0.3 * decay)):
            noisy = curve + rng.normal(0, 0.03, len(at))
            curves.extend(zip([trial.number] * len(at), at.tolist(), [name] * len(at), noisy.tolist()))
        for step in np.linspace(0, steps, 3).astype(int).tolist():
            grown = 1 - math.exp(-3 * step / max(steps, 1))
            curves.append((trial.number, step, "fast/mig", scores["mig"] * grown + rng.normal(0, 0.01)))
            curves.append((trial.number, step, "fast/sap", scores["sap"] * grown + rng.normal(0, 0.01)))
        tdir = out / "trials" / str(trial.number)
        tdir.mkdir(exist_ok=True)
        (tdir / "config.json").write_text(json.dumps({"model": "did", **params, "seed": seed,
                                                      "final_protocol": "dlib", "eval_protocol": "fast"}))
        (tdir / "scores.json").write_text(json.dumps(scores))
        if images and noisy_images_px:  # worst case for the file size: a PNG that does not compress
            noise = np.random.default_rng(trial.number).integers(0, 256, (noisy_images_px, noisy_images_px))
            Image.fromarray(noise.astype(np.uint8)).save(tdir / "traversal.png")
        elif images:
            _traversal(trial.number).save(tdir / "traversal.png")
        values = [scores[o["metric"]] for o in objective_spec]
        return values if len(values) > 1 else values[0]

    study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    pd.DataFrame(curves, columns=["trial", "step", "name", "value"]).to_csv(out / "curves.csv", index=False)
    meta = {"study": name, "preset": "synthetic", "started": time.strftime("%Y-%m-%dT%H:%M:%S",
                                                                          time.localtime(started)),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": "test-host", "gpu": None,
            "versions": {"optuna": optuna.__version__, "pandas": pd.__version__}, "git_revision": "synthetic"}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return out


def _traversal(seed: int, n: int = 6, size: int = 32) -> Image.Image:
    """A small grid image standing in for a latent traversal (rows: a bar moving across)."""
    grid = np.zeros((n * size, n * size), dtype=np.uint8)
    for r in range(n):
        for c in range(n):
            x = int((c + 0.5) / n * (size - 8)) if (r + seed) % 2 == 0 else size // 2 - 4
            grid[r * size + 8: r * size + 24, c * size + x: c * size + x + 8] = 255
    return Image.fromarray(grid)
