"""Time to quality (the way MLPerf Training and DAWNBench measure training): CPU seconds for one DiD
trial of the ``broadcast`` form, and the quality it reaches, for today's recipe against candidates.

Every recipe trains the same seeds side by side in this one invocation (``--jobs`` processes of one
thread each, so that load falls on every recipe alike). A trial's CPU seconds are split into
training, in-training evaluation and final evaluation (the process's CPU time between the events
its ``train`` yields: an evaluation's interval opens at the progress event of the same step). Per
recipe: mean CPU seconds and their ratio to the first recipe, the mean scores, the failing seeds
(MIG < 0.1), and the decision of the studies' own rule (Welch with Hsu's degrees of freedom, TOST
against ``--margin``) on each score, candidate against the first recipe.

    python benchmarks/time_to_quality.py --recipes today,upsample2 --seeds 5           # dSprites, dlib
    python benchmarks/time_to_quality.py --dataset squares --recipes today,upsample2 --seeds 5
    python benchmarks/time_to_quality.py --recipes today,bf16,upsample2 --seeds 3 --metrics mig   # a screen
    python benchmarks/time_to_quality.py --recipes "today;mine:g_upsample=2,batch_size=24"

What was measured with it, and every change tried: docs/did.md, "Time to quality".

A recipe is a name in :data:`RECIPES` (field overrides of ``did_core.models.did.Config``) or
``name:field=value,field=value`` on the command line.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

FAIL_MIG = 0.1  # a seed below this MIG learned nothing worth the name (today's recipe: ~0.07 against ~0.2)

# A recipe changes the dataset's base config (BASES): Config fields, and two scalings that keep a
# recipe meaningful on either dataset: ``steps_scale`` scales the steps and every step count tied to
# them (contrast start, warm-up), ``lr`` sets the four learning rates. "today" is the base itself.
RECIPES: dict[str, dict] = {
    "today": {},
    "bf16": dict(cpu_amp=True),
    "upsample2": dict(g_upsample=2),
    "short": dict(steps_scale=0.5, lr=1e-3),
    "ncritic1": dict(n_critic=1),
    "upsample2_short": dict(g_upsample=2, steps_scale=0.5, lr=1e-3),
    "upsample2_batch16": dict(g_upsample=2, batch_size=16),
    "upsample4_short": dict(g_upsample=4, steps_scale=0.5, lr=1e-3),
}

# Today's recipe on each dataset: dSprites at ablation_dims' settings (5 latents, its default k = 3,
# the quick budget of 1,500 steps, dlib final scores); Squares at the demo's (3 latents, k = 2,
# 1,200 steps, the contrast from step 900, fast scores).
BASES: dict[str, dict] = {
    "dsprites": dict(form="broadcast", n_latents=5, n_compare_dims=3, final_protocol="dlib", steps=1500,
                     batch_size=32, lr_g=5e-4, lr_d=5e-4, lr_h=5e-4, lr_e=5e-4, lambda_warmup=300,
                     contrast_start=375, eval_every=500, log_every=50),
    "squares": dict(form="broadcast", n_latents=3, n_compare_dims=2, final_protocol="fast", steps=1200,
                    batch_size=32, lr_g=5e-4, lr_d=5e-4, lr_h=5e-4, lr_e=5e-4, lambda_warmup=300,
                    contrast_start=900, eval_every=0, log_every=100),
}
STEP_FIELDS = ("steps", "contrast_start", "lambda_warmup", "eval_every")  # scaled by steps_scale


def parse_recipe(text: str) -> tuple[str, dict]:
    """``name`` from RECIPES, or ``name:field=value,...`` (values read as JSON where they parse)."""
    name, _, fields = text.partition(":")
    if not fields:
        if name not in RECIPES:
            raise SystemExit(f"--recipes: unknown recipe {name!r}; known: {', '.join(RECIPES)} (or name:field=value)")
        return name, dict(RECIPES[name])
    return name, {k: _value(v) for k, v in (item.split("=", 1) for item in fields.split(","))}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def config_for(dataset: str, recipe: dict, seed: int, metrics: str, extra: dict):
    """The recipe's Config on ``dataset`` for ``seed``."""
    from did_core.models.did import Config

    fields = {**BASES[dataset], **extra}
    recipe = dict(recipe)
    scale = recipe.pop("steps_scale", 1.0)
    for key in STEP_FIELDS:
        fields[key] = round(fields[key] * scale)
    lr = recipe.pop("lr", None)
    if lr is not None:
        fields.update(lr_g=lr, lr_d=lr, lr_h=lr, lr_e=lr)
    fields.update(recipe)
    if fields["steps"] % fields["log_every"]:
        raise SystemExit(f"{dataset}: log_every must divide the steps to split the CPU time")
    return Config.from_preset("quick", dataset=dataset, seed=seed, num_threads=1, eval_metrics=metrics, **fields)


def run_trial(dataset: str, name: str, recipe: dict, seed: int, metrics: str, extra: dict) -> dict:
    """One trial in this (fresh) process: its CPU seconds by phase and its final scores."""
    import torch

    from did_core.models.did import train

    torch.set_num_threads(1)
    cfg = config_for(dataset, recipe, seed, metrics, extra)
    cpu = {"train": 0.0, "eval": 0.0, "final": 0.0}
    scores = {}
    clock = time.process_time()
    for event in train(cfg, resume=False):
        now = time.process_time()
        if event.kind == "progress":
            cpu["train"] += now - clock
        else:  # the interval since the progress event of this step: the evaluation alone
            cpu["eval" if event.kind == "eval" else "final"] += now - clock
            if event.kind == "final":
                scores = dict(event.scores)
        clock = time.process_time()
    return {"recipe": name, "seed": seed, "cpu": cpu, "scores": scores, "steps": cfg.steps}


def summarise(rows: list[dict], names: list[str], score_names: list[str], margin: float, alpha: float) -> str:
    from orchestrator.verdicts.pairs import compare_samples
    from orchestrator.verdicts.sequential import DecisionRule

    lines = []
    header = f"{'recipe':<12} {'seed':>4} {'train s':>8} {'eval s':>7} {'final s':>8} {'total s':>8} " + \
        " ".join(f"{s:>10}" for s in score_names)
    lines.append(header)
    for r in sorted(rows, key=lambda r: (names.index(r["recipe"]), r["seed"])):
        c = r["cpu"]
        lines.append(f"{r['recipe']:<12} {r['seed']:>4} {c['train']:8.1f} {c['eval']:7.1f} {c['final']:8.1f} "
                     f"{sum(c.values()):8.1f} " + " ".join(f"{r['scores'].get(s, float('nan')):10.4f}" for s in score_names))
    lines.append("")
    base_cpu = None
    for name in names:
        mine = [r for r in rows if r["recipe"] == name]
        total = statistics.mean(sum(r["cpu"].values()) for r in mine)
        base_cpu = base_cpu or total
        parts = {k: statistics.mean(r["cpu"][k] for r in mine) for k in ("train", "eval", "final")}
        fails = sum(r["scores"].get("mig", 1.0) < FAIL_MIG for r in mine)
        means = " ".join(f"{s}={statistics.mean(r['scores'][s] for r in mine):.4f}" for s in score_names)
        lines.append(f"{name:<12} n={len(mine)} cpu={total:.0f}s (train {parts['train']:.0f}, eval {parts['eval']:.0f}, "
                     f"final {parts['final']:.0f}) ratio={total / base_cpu:.2f}x failing(MIG<{FAIL_MIG})={fails} {means}")
        if name == names[0]:
            continue
        base = [r for r in rows if r["recipe"] == names[0]]
        side = lambda trials: {"": {s: [r["scores"][s] for r in trials] for s in score_names}}
        for v in compare_samples(side(base), side(mine), {s: DecisionRule(alpha, margin) for s in score_names}):
            lines.append(f"    {v.score}: {v.decision} (vs {names[0]}: delta {v.diff:+.4f}, 95% CI "
                         f"[{v.ci_low:+.4f}, {v.ci_high:+.4f}], p {v.p_effect:.3f}, margin {margin})")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="dsprites", choices=sorted(BASES))
    ap.add_argument("--recipes", default="today,upsample2", help="comma-separated; the first is the reference")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="trials at a time, one thread each")
    ap.add_argument("--metrics", default="mig,dci", help="final scores to compute")
    ap.add_argument("--margin", type=float, default=0.03, help="equivalence margin of the decision (MIG units)")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a field for every recipe")
    ap.add_argument("--json", type=Path, help="also write every trial's record here")
    args = ap.parse_args(argv)
    recipes = dict(parse_recipe(t) for t in args.recipes.split(";" if ":" in args.recipes else ","))
    extra = {k: _value(v) for k, v in (item.split("=", 1) for item in args.set)}
    names = list(recipes)
    jobs = [(args.dataset, n, recipes[n], seed, args.metrics, extra) for seed in range(args.first_seed, args.first_seed + args.seeds)
            for n in names]
    start = time.perf_counter()
    rows = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        for row in pool.map(run_trial, *zip(*jobs)):
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    score_names = [s for s in ("mig", "dci_disentanglement") if all(s in r["scores"] for r in rows)]
    print(f"\n{args.dataset}, {args.seeds} seeds a recipe, {args.jobs} at a time, "
          f"{(time.perf_counter() - start) / 60:.1f} min wall\n")
    print(summarise(rows, names, score_names, args.margin, args.alpha))


if __name__ == "__main__":
    main()
