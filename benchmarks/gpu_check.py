"""The one command for a machine with a GPU: does the GPU path work, and what does it deliver?

Steps (``--dry-run`` prints them and runs nothing; each step's result is a row of one table):
1. ``study``: a DiD smoke study on Squares with ``gpus: 0.25`` and 4 trials at once (8 trials), with
   ``compile`` off; one trial's worker is killed with SIGKILL half way and the same command run again,
   which must finish every trial and resume the killed one from its checkpoint (``resumed_from``).
2. ``study-compile``: the same study with ``compile: true`` (a fresh run folder).
3. ``throughput``: DiD ``paper`` preset on dSprites, training images per second of one trial alone,
   then of 4 trials packed on the GPU at once (each capped at a quarter of its memory): the aggregate.
4. ``paper-steps``: a few thousand ``paper``-preset DiD steps with the shortcut diagnostics at each
   evaluation (``fast`` protocol), through ``python -m did_core.train``.

Ray, Optuna and Plotly are not on the GPU machine's image: carry them as wheels (the device tool's
README, "Notes"); without Ray the two study steps are reported as skipped and the others still run.
Meant to finish in under 8 minutes on one H200.

Usage:
    python benchmarks/gpu_check.py --dry-run
    python benchmarks/gpu_check.py --out /tmp/gpu_check            # on the GPU machine
    python benchmarks/gpu_check.py --steps 2000 --throughput-s 45
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def study_file(folder: Path, compile_nets: bool) -> Path:
    study = {
        "name": "gpu_check" + ("_compile" if compile_nets else ""), "kind": "ablation", "model": "did",
        "dataset": "squares", "description": "benchmarks/gpu_check.py: four DiD trials packed on one GPU",
        "fixed": {"compile": compile_nets, "steps": 400, "log_every": 20, "eval_metrics": "mig"},
        "search": {"sampler": "grid", "space": {"n_compare_dims": {"type": "int", "low": 1, "high": 3}}},
        "seeds": 3 if not compile_nets else 1, "objectives": [{"metric": "mig", "direction": "maximize"}],
        "resources": {"cpus": 1, "gpus": 0.25}, "max_concurrent": 4,
        "evaluation": {"protocol": "fast", "interval": 200, "final_protocol": "fast"},
    }
    path = folder / f"{study['name']}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def run_study(path: Path, out: Path, kill_after_s: float | None = None) -> tuple[int, float]:
    """The study command; with ``kill_after_s`` one trial worker is SIGKILLed after that long."""
    cmd = [PY, "-m", "orchestrator.study", str(path), "--preset", "smoke", "--out", str(out)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    if kill_after_s is not None:
        time.sleep(kill_after_s)
        workers = subprocess.run(["pgrep", "-f", "ray::ImplicitFunc.train"], capture_output=True, text=True).stdout.split()
        if workers:
            os.kill(int(workers[0]), signal.SIGKILL)
    return proc.wait(), time.perf_counter() - t


def study_rows(path: Path, out: Path, kill: bool) -> list[tuple[str, str]]:
    code, first = run_study(path, out, kill_after_s=60 if kill else None)
    rows = [("exit code (first run)", str(code)), ("wall (first run)", f"{first:.0f} s")]
    if kill:
        code, second = run_study(path, out)
        rows += [("exit code (rerun)", str(code)), ("wall (rerun)", f"{second:.0f} s")]
    import pandas as pd

    results = pd.read_csv(out / "results.csv")
    rows += [("trials COMPLETE", f"{(results['status'] == 'COMPLETE').sum()} of {len(results)}"),
             ("resumed trials", str(int(results.get("resumed_from", pd.Series(dtype=float)).notna().sum()))),
             ("mean images/s a trial", f"{results.get('images_per_sec', pd.Series([float('nan')])).mean():.0f}")]
    return rows


def throughput(packed: int, seconds: float) -> float:
    """Aggregate training images/s of ``packed`` DiD paper-preset trials on the GPU at once."""
    code = (
        "import sys, time, json, torch\n"
        "from did_core.models.did import Config, train\n"
        f"cfg = Config.from_preset('paper', dataset='dsprites', steps=10**6, log_every=50, eval_every=0, "
        f"gpu_memory_fraction={1.0 / packed if packed > 1 else 0.0})\n"
        "events, rates, t0 = train(cfg), [], time.perf_counter()\n"
        "next(events)\n"
        f"while time.perf_counter() - t0 < {seconds}:\n"
        "    rates.append(next(events).images_per_sec)\n"
        "print(json.dumps(sorted(rates)[len(rates) // 2]))\n"
    )
    procs = [subprocess.Popen([PY, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(packed)]
    return sum(json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs)


def paper_steps(steps: int, out: Path) -> list[tuple[str, str]]:
    cmd = [PY, "-m", "did_core.train", "--preset", "paper", "--dataset", "dsprites", "--out", str(out), "--json",
           "--no-resume", f"--set=steps={steps}", f"--set=eval_every={max(steps // 3, 1)}", "--set=eval_protocol=fast",
           "--set=final_protocol=fast", "--set=eval_metrics=mig,dci"]  # the shortcut diagnostics always come with DiD
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        return [("error", done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    rows = [("wall", f"{wall:.0f} s ({steps} steps)")]
    for e in events:
        if e.get("kind") in ("eval", "final"):
            s = e["scores"]
            keys = [k for k in ("mig", "dci_disentanglement", "h_acc_raw", "h_acc_degraded", "e_mse_raw",
                                "e_mse_degraded", "nn_dist_fake", "nn_dist_real") if k in s]
            rows.append((f"{e['kind']} step {e['step']}", " ".join(f"{k}={s[k]:.3f}" for k in keys)))
    return rows


PLAN = [
    ("study", "DiD smoke study, gpus 0.25 x 4 at once, a worker SIGKILLed at 60 s, then the same command again"),
    ("study-compile", "the same study with compile: true"),
    ("throughput", "DiD paper preset on dSprites: 1 trial alone, then 4 packed (aggregate images/s)"),
    ("paper-steps", "paper-preset DiD steps with the shortcut diagnostics at each evaluation"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    parser.add_argument("--out", type=Path, help="folder for the run folders (default: a temporary one)")
    parser.add_argument("--steps", type=int, default=3000, help="paper-preset steps of the last step (default 3000)")
    parser.add_argument("--throughput-s", type=float, default=60.0, help="seconds each throughput measurement runs")
    parser.add_argument("--only", default=",".join(name for name, _ in PLAN), help="comma-separated steps to run")
    args = parser.parse_args()
    wanted = args.only.split(",")
    if args.dry_run:
        print("benchmarks/gpu_check.py would run, in order:")
        for i, (name, what) in enumerate((p for p in PLAN if p[0] in wanted), 1):
            print(f"  {i}. {name}: {what}")
        print(f"  paper steps: {args.steps}; throughput: {args.throughput_s:.0f} s per measurement; "
              f"needs CUDA, and Ray/Optuna/Plotly for the study steps")
        return
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device here (use --dry-run to see the plan)")
    try:
        import optuna, plotly, ray  # noqa: F401  (the study steps need them)
        have_ray = True
    except ImportError as err:
        have_ray, missing = False, err.name
    table: list[tuple[str, str, str]] = [("device", "", torch.cuda.get_device_name(0)),
                                        ("torch", "", f"{torch.__version__} (CUDA {torch.version.cuda})")]
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        for name, _ in PLAN:
            if name not in wanted:
                continue
            t = time.perf_counter()
            if name.startswith("study") and not have_ray:
                rows = [("skipped", f"{missing} is not installed (carry it as a wheel)")]
            elif name == "study":
                rows = study_rows(study_file(out, False), out / "study", kill=True)
            elif name == "study-compile":
                rows = study_rows(study_file(out, True), out / "study-compile", kill=False)
            elif name == "throughput":
                alone, packed = throughput(1, args.throughput_s), throughput(4, args.throughput_s)
                rows = [("1 trial alone", f"{alone:.0f} img/s"), ("4 packed, aggregate", f"{packed:.0f} img/s"),
                        ("packed / alone", f"{packed / alone:.2f}")]
            else:
                rows = paper_steps(args.steps, out / "paper")
            table += [(name, k, v) for k, v in rows] + [(name, "step wall", f"{time.perf_counter() - t:.0f} s")]
            print(f"done: {name}", file=sys.stderr, flush=True)
    width = max(len(a) + len(b) for a, b, _ in table) + 3
    for step, key, value in table:
        print(f"{(step + '  ' + key):<{width}} {value}")


if __name__ == "__main__":
    main()
