"""Does today's code train a kept run folder's trials as they were trained? The check behind reusing
kept trials in a campaign (a seed kept from an earlier round counts only if the code that trains
it is unchanged).

    python benchmarks/same_training.py results/baselines-quick [--steps 100] [--configs 0,2] [--seed 3]

For the lowest seed of each configuration (or ``--seed``), the trial's own ``trial.json`` config is
trained again with today's code until ``--steps``, and every logged loss is compared with the
folder's ``curves.csv``. The same code on the same CPU gives every loss bit for bit (deviation 0). A nonzero
deviation is the code or the CPU: run the script again from a checkout of the folder's revision
(``meta.json``'s ``git.rev``; ``git worktree add /tmp/old REV``, then
``PYTHONPATH=/tmp/old python benchmarks/same_training.py ...``). If that checkout gives the same
deviations, the code that trains the trials has not changed, and the folder was trained on another
CPU (same seed, other CPU: another draw of the same distribution; docs/reproduction.md).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from did_core.models import get_model
from did_core.models.config_error import ConfigError
from did_core.models.events import Progress
from orchestrator.run_folder.layout import TRIAL_FILE, TrialRecord, trial_dir
from orchestrator.run_folder.tables import load_curves, load_results


def deviation(folder: Path, trial: int, curves: pd.DataFrame, steps: int) -> tuple[float, int]:
    """(largest |today − kept| over the logged losses up to ``steps``, how many were compared)."""
    record = TrialRecord.read(trial_dir(folder, trial))
    spec = get_model(record.model)
    try:  # a field removed since: today's code cannot train this config, so it is not the same training
        config = spec.config_cls.from_dict(record.config)
    except ConfigError as err:
        raise SystemExit(f"{trial_dir(folder, trial) / TRIAL_FILE}: {err}") from None
    kept = curves[curves["trial"] == trial]
    worst, n = 0.0, 0
    with tempfile.TemporaryDirectory() as out:
        for event in spec.train(config, out_dir=out, resume=False):
            if not isinstance(event, Progress):
                continue
            at = kept[kept["step"] == event.step].set_index("name")["value"]
            for name, value in event.losses.items():
                if f"loss/{name}" in at.index:
                    worst, n = max(worst, abs(float(at[f"loss/{name}"]) - float(value))), n + 1
            if event.step >= steps:
                break
    return worst, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a kept run folder (results/NAME-PRESET)")
    parser.add_argument("--steps", type=int, default=100, help="train this far (default 100)")
    parser.add_argument("--configs", default=None, help="only these config ids, comma-separated")
    parser.add_argument("--seed", type=int, default=None, help="check this seed (default: each configuration's lowest)")
    args = parser.parse_args(argv)
    results, curves = load_results(args.folder), load_curves(args.folder)
    only = {int(c) for c in args.configs.split(",")} if args.configs else None
    differ = 0
    for config_id, rows in results.groupby("config_id"):
        if only is not None and int(config_id) not in only:
            continue
        rows = rows if args.seed is None else rows[rows["seed"] == args.seed]
        if rows.empty:
            continue
        row = rows.sort_values("seed").iloc[0]
        worst, n = deviation(args.folder, int(row["trial"]), curves, args.steps)
        differ += worst > 0
        print(f"config {config_id} (trial {int(row['trial'])}, seed {int(row['seed'])}): {n} losses to step "
              f"{args.steps}, largest |today - kept| {worst:.3g}", flush=True)
    print("identical" if not differ else f"{differ} configuration(s) differ: the code or the CPU (see --help)")
    return 0 if not differ else 1


if __name__ == "__main__":
    sys.exit(main())
