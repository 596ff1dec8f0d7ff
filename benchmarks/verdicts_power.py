"""What the sequential decision rule costs and buys, against fixed designs: a table of simulated studies.

    python benchmarks/verdicts_power.py [--studies 10000] [--m 5] [--margin 1.0]

For each design (the campaign's sequential plan, looks at 3, 5, 7, 9, 10 seeds a side; a fixed
10 seeds, the sequential plan's maximum; a fixed 3, today's studies) it prints, over simulated
studies of m comparisons against one reference (scores in reference sds; the margin in the same
units): the false-effect rate under the null in each scenario (normal, skewed with unequal
spreads, 15% failing seeds), the false-equivalence rate with every difference on the margin,
the power (comparisons decided "effect" with the right sign) and the mean seeds per arm at
effects of 1 and 2 sds, and the share decided "equivalent" at Δ = 0. The simulation is
orchestrator.verdicts.simulation, which calls the study's own look function.
"""
from __future__ import annotations

import argparse

from orchestrator.verdicts.sequential import DecisionRule, SeedPlan
from orchestrator.verdicts.simulation import SCENARIOS, simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=int, default=10_000)
    ap.add_argument("--m", type=int, default=5, help="comparisons per study")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--margin", type=float, default=1.0, help="equivalence margin, in sds")
    args = ap.parse_args()
    rule = DecisionRule(args.alpha, args.margin)
    designs = {"sequential 3,5,7,9,10": SeedPlan.sequential(3, 2, 10), "fixed 10": SeedPlan.fixed(list(range(10))),
               "fixed 3": SeedPlan.fixed([0, 1, 2])}
    print(f"{args.studies} simulated studies a cell, {args.m} comparisons each, alpha {args.alpha}, "
          f"margin {args.margin} sd\n")
    head = (["design"] + [f"false effect ({s})" for s in SCENARIOS] + ["false equiv (Δ = margin)"]
            + ["power 1 sd", "seeds/arm 1 sd", "power 2 sd", "seeds/arm 2 sd", "equivalent at Δ = 0"])
    rows = []
    for name, plan in designs.items():
        run = lambda scenario, effect, seed: simulate(plan, rule, scenario, effect, args.m, args.studies, seed)
        null = [run(s, 0.0, 1).any_effect for s in SCENARIOS]
        margin = run("normal", args.margin, 2).any_equivalent
        one, two = run("normal", 1.0, 3), run("normal", 2.0, 4)
        same = run("normal", 0.0, 5).equivalent
        rows.append([name, *(f"{r:.4f}" for r in null), f"{margin:.4f}", f"{one.power:.3f}",
                     f"{one.mean_seeds_per_arm:.2f}", f"{two.power:.3f}", f"{two.mean_seeds_per_arm:.2f}", f"{same:.3f}"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
