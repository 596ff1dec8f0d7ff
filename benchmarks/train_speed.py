"""Training throughput of one trial's loop: this tree's code against a reference revision, side by side.

For each case (a model and form, a dataset, a thread count) a worker process runs the model's own
``train()`` at the ``quick`` preset (no evaluation) and times the steps between its progress events;
workers of the reference tree and of this tree alternate, round after round, so that the load of
the machine falls on both alike. Printed per case: real training images per second (wall clock)
and milliseconds of CPU time per step for both trees, and their ratios (new / ref for images/s).

Also printed, for this tree: the FLOPs of one step (counted with ``torch.utils.flop_counter`` over a
few whole steps of the loop, gradient penalty included) and their share of the machine's measured
one- and two-thread sgemm rate (1024 x 1024 matrices, measured in this run).

``--whole-trial`` adds the wall time of a whole quick Squares trial of the form that learns,
evaluation included, for both trees (``python -m did_core.train``; several minutes each).

``--same-scores N`` instead trains N seeds of the quick trial of the form that learns in both trees
(``--dataset``, two trials at a time) and prints their final ``dlib`` MIG and the decision between
the trees that ``python -m orchestrator.compare`` makes (effect, equivalent within ±0.03, undecided): the check for a change whose numbers differ from the reference's at the rounding level
(a GAN amplifies those within tens of steps), that what a seed learns is unchanged within seed noise.

The reference tree is a git worktree of ``--ref`` (default: the revision before this round's speed
work) made in a temporary folder and removed afterwards, or an existing checkout (``--ref-path``).

Usage:
    python benchmarks/train_speed.py                        # every case, 2 rounds
    python benchmarks/train_speed.py --cases did-learns-squares --threads 1 --rounds 3
    python benchmarks/train_speed.py --ref-path /path/to/old/checkout --whole-trial
    python benchmarks/train_speed.py --same-scores 3 --dataset squares
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF_REV = "56ee104"  # main before the training-speed round (issue 24)

# The DiD form that learns on these machines (the options of did_small_contrast), as plain fields so
# that a reference tree without form names runs it too.
LEARNS = dict(g_arch="broadcast", lambda_rec=1.0, view="noise", encoder="critic_head", n_latents=3,
              n_compare_dims=2, lambda_enc=0.24, lambda_h=1.34)
# bf16 autocast on the CPU: oneDNN runs convolutions and matmuls on AMX / AVX512-BF16 where the CPU
# has them. It changes the numbers (bf16 rounding), so it is a case of its own; a reference tree whose
# Config lacks `cpu_amp` runs the case in float32, so its ratio is this tree's whole gain.
BF16 = dict(amp=True, cpu_amp=True)
# name -> (model, dataset, fields, log_every: steps per timed interval)
CASES = {
    "did-learns-squares": ("did", "squares", LEARNS, 10),
    "did-learns-dsprites": ("did", "dsprites", LEARNS, 4),
    "did-learns-squares-bf16": ("did", "squares", {**LEARNS, **BF16}, 10),
    "did-learns-dsprites-bf16": ("did", "dsprites", {**LEARNS, **BF16}, 4),
    "did-paper-squares": ("did", "squares", {}, 10),
    "did-paper-dsprites": ("did", "dsprites", {}, 4),
    "beta_vae-dsprites": ("beta_vae", "dsprites", {}, 20),
    "parted_vae-dsprites": ("parted_vae", "dsprites", {}, 10),
}


# ----- the worker: runs inside the tree under test (PYTHONPATH) ----------------------------------------
def worker(case: str, threads: int, intervals: int, flops: bool) -> dict:
    import torch

    from did_core.models import get_model

    model, dataset, fields, log_every = CASES[case]
    torch.set_num_threads(threads)
    spec = get_model(model)
    known = set(spec.config_cls.field_names())  # a reference tree's Config may lack this tree's fields
    cfg = spec.config_cls.from_preset("quick", dataset=dataset, steps=10 ** 6, log_every=log_every,
                                      eval_every=0, num_threads=threads,
                                      **{k: v for k, v in fields.items() if k in known})
    events = spec.train(cfg)
    next(events)  # warm-up interval: first allocations, caches
    wall, cpu, images = [], [], []
    for _ in range(intervals):
        w, c = time.perf_counter(), time.process_time()
        event = next(events)
        wall.append((time.perf_counter() - w) / log_every)
        cpu.append((time.process_time() - c) / log_every)
        images.append(round(event.images_per_sec * wall[-1]))  # the loop's own count of real images a step
    out = {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu),
           "images_per_step": statistics.median(images), "dropped": sorted(set(fields) - known)}
    if flops:
        counter = FlopCount()
        with counter:
            next(events)
        out["gflop_per_step"] = counter.total / log_every / 1e9
    events.close()
    return out


def FlopCount():
    """A dispatch mode that adds up ``torch.utils.flop_counter``'s FLOPs of every op it sees.
    (FlopCounterMode itself tracks modules with hooks that ``autograd.grad``, used by the gradient
    penalty, does not support.)"""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            count = flop_registry.get(func._overloadpacket)
            if count is not None:
                self.total += count(*args, **kwargs, out_val=out)
            return out

    return Count()


def sgemm_gflops(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    n, t = 20, time.perf_counter()
    for _ in range(n):
        a @ b
    return 2 * 1024 ** 3 * n / (time.perf_counter() - t) / 1e9


# ----- the driver -------------------------------------------------------------------------------------
def run_worker(tree: Path, case: str, threads: int, intervals: int, flops: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--worker", case, "--threads", str(threads), "--intervals", str(intervals)]
    if flops:
        cmd.append("--flops")
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"worker {case} in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def trial_command(tree: Path, out: Path, dataset: str = "squares", seed: int = 0) -> list[str]:
    """A whole quick trial of the form that learns in ``tree``, final ``dlib`` MIG, DCI and SAP included."""
    sets = [f"--set={k}={v}" for k, v in LEARNS.items()]
    return [sys.executable, "-m", "did_core.train", "--preset", "quick", "--dataset", dataset, "--out", str(out),
            "--no-resume", *sets, "--set=eval_metrics=mig,dci,sap", "--set=num_threads=1", f"--set=seed={seed}"]


def whole_trial(tree: Path, out: Path) -> float:
    t = time.perf_counter()
    subprocess.run(trial_command(tree, out), env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True,
                   capture_output=True)
    return time.perf_counter() - t


def same_scores(new: Path, ref: Path, dataset: str, seeds: int, out: Path) -> None:
    """The acceptance's check for numbers that differ at the rounding level: the quick MIG of seeds
    0 .. seeds-1 in both trees (two trials at a time, one thread each), decided as
    ``python -m orchestrator.compare`` decides two run folders (orchestrator.verdicts.pairs)."""
    from orchestrator.verdicts.pairs import compare_samples
    from orchestrator.verdicts.sequential import DecisionRule

    jobs = [(name, tree, seed) for seed in range(seeds) for name, tree in (("ref", ref), ("new", new))]
    mig: dict[str, list[float]] = {"ref": [], "new": []}
    running: list[tuple[str, int, Path, subprocess.Popen]] = []
    while jobs or running:
        while jobs and len(running) < 2:
            name, tree, seed = jobs.pop(0)
            folder = out / f"{name}-{seed}"
            with open(out / f"{name}-{seed}.log", "w") as log:  # the child keeps its own handle
                proc = subprocess.Popen(trial_command(tree, folder, dataset, seed), cwd=tree, stdout=log,
                                        stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(tree)})
            running.append((name, seed, folder, proc))
        name, seed, folder, proc = running.pop(0)
        if proc.wait() != 0:
            raise SystemExit(f"{name} trial seed {seed} failed:\n{(out / f'{name}-{seed}.log').read_text()[-3000:]}")
        saved = json.loads((folder / "scores.json").read_text())
        mig[name].append(saved["scores"]["mig"])
        print(f"  {dataset} seed {seed} {name}: dlib MIG {mig[name][-1]:.4f}", flush=True)
    verdict = compare_samples({"quick": {"mig": mig["ref"]}}, {"quick": {"mig": mig["new"]}},
                              {"mig": DecisionRule(0.05, margin=0.03)})[0]
    print(f"quick {dataset} MIG over seeds 0-{seeds - 1}, form that learns: ref {statistics.mean(mig['ref']):.3f} ± "
          f"{statistics.stdev(mig['ref']):.3f}, new {statistics.mean(mig['new']):.3f} ± "
          f"{statistics.stdev(mig['new']):.3f}; Δ {verdict.diff:+.3f} [{verdict.ci_low:+.3f}, {verdict.ci_high:+.3f}]: "
          f"{verdict.decision} (margin ±0.03, as python -m orchestrator.compare decides)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default=REF_REV, help=f"reference git revision (default {REF_REV})")
    parser.add_argument("--ref-path", type=Path, help="an existing checkout to use as the reference instead")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {list(CASES)}")
    parser.add_argument("--threads", default="1,2", help="thread counts to measure (default 1,2)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating ref/new rounds per case")
    parser.add_argument("--intervals", type=int, default=3, help="timed intervals per worker (median)")
    parser.add_argument("--whole-trial", action="store_true", help="also time a whole quick Squares trial")
    parser.add_argument("--same-scores", type=int, metavar="SEEDS",
                        help="only compare the trees' quick MIG (form that learns) over this many seeds, on --dataset")
    parser.add_argument("--dataset", default="squares", help="the dataset of --same-scores (default squares)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--flops", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sgemm", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, int(args.threads), args.intervals, args.flops)))
        return
    if args.sgemm:
        print(json.dumps({"gflops": sgemm_gflops(args.sgemm)}))
        return

    with tempfile.TemporaryDirectory(prefix="train-speed-ref-") as tmp:
        ref = args.ref_path
        if ref is None:
            ref = Path(tmp) / "ref"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(ref), args.ref],
                           check=True, capture_output=True)
        try:
            if args.same_scores:
                (Path(tmp) / "trials").mkdir()
                same_scores(ROOT, ref.resolve(), args.dataset, args.same_scores, Path(tmp) / "trials")
            else:
                report(ROOT, ref.resolve(), args)
        finally:
            if args.ref_path is None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref)], capture_output=True)


def report(new: Path, ref: Path, args) -> None:
    threads = [int(t) for t in args.threads.split(",")]
    sgemm = {}
    for t in threads:
        done = subprocess.run([sys.executable, __file__, "--sgemm", str(t)], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": str(t)}, check=True)
        sgemm[t] = json.loads(done.stdout)["gflops"]
    print(f"reference {ref} ({args.ref if args.ref_path is None else 'checkout'}) against {new}; "
          f"sgemm 1024^2: " + ", ".join(f"{t} thread(s) {g:.0f} GFLOP/s" for t, g in sgemm.items()))
    print(f"{'case':<22} {'thr':>3} {'ref img/s':>9} {'new img/s':>9} {'ratio':>6} {'ref cpu ms':>10} "
          f"{'new cpu ms':>10} {'ratio':>6} {'GFLOP/step':>10} {'% sgemm':>7}")
    for case in args.cases.split(","):
        for t in threads:
            ref_runs, new_runs = [], []
            for _ in range(args.rounds):  # alternate, so that load falls on both alike
                ref_runs.append(run_worker(ref, case, t, args.intervals))
                new_runs.append(run_worker(new, case, t, args.intervals))
            flop = run_worker(new, case, t, 1, flops=True)["gflop_per_step"]
            r_wall = statistics.median(r["wall_s"] for r in ref_runs)
            n_wall = statistics.median(r["wall_s"] for r in new_runs)
            r_cpu = statistics.median(r["cpu_s"] for r in ref_runs)
            n_cpu = statistics.median(r["cpu_s"] for r in new_runs)
            per_step = new_runs[0]["images_per_step"]
            if ref_runs[0]["dropped"]:
                print(f"  ({case}: the reference's Config has no {', '.join(ref_runs[0]['dropped'])}; it runs without)")
            share = flop / n_wall / sgemm[t] * 100
            print(f"{case:<22} {t:>3} {per_step / r_wall:>9.0f} {per_step / n_wall:>9.0f} {r_wall / n_wall:>6.2f} "
                  f"{r_cpu * 1e3:>10.1f} {n_cpu * 1e3:>10.1f} {r_cpu / n_cpu:>6.2f} {flop:>10.2f} {share:>6.0f}%",
                  flush=True)
    if args.whole_trial:
        with tempfile.TemporaryDirectory(prefix="train-speed-trial-") as out:
            r = whole_trial(ref, Path(out) / "ref")
            n = whole_trial(new, Path(out) / "new")
        print(f"whole quick Squares trial (form that learns, final dlib mig/dci/sap, 1 thread): "
              f"ref {r / 60:.1f} min, new {n / 60:.1f} min, ratio {r / n:.2f}")


if __name__ == "__main__":
    main()
