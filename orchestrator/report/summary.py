"""The text a study prints when it ends: trials, the best configuration (or Table 1's rows), the
Findings (:mod:`orchestrator.report.findings`), the failed trials and where every file is.

Example:
    >>> print("\n".join(summary_lines(study, run_dir, url, df, best, False, 10, run_data)))   # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..run_folder.layout import PARAM_PREFIX, REPORT_FILE, SELECTION_FILE, Status
from ..run_folder.tables import TABLE1_SCORES, comparison_table, format_params
from ..study_file.plan import Study
from .data import RunData
from .findings import findings_lines


def summary_lines(study: Study, run_dir: Path, url: str, df: pd.DataFrame, best: pd.DataFrame, interrupted: bool,
                  planned: int, run_data: RunData | None = None, extra: list[str] = ()) -> list[str]:
    """The study's closing text: trials, the best configuration, the Findings, where everything is."""
    counts = df["status"].value_counts().to_dict() if not df.empty else {}
    lines = ["", f"=== {study.name} ({study.preset}) ===",
             f"trials: {len(df)} of {planned} finished "
             f"({', '.join(f'{v} {k}' for k, v in sorted(counts.items())) or 'none'})"]
    if interrupted:
        lines.append("INTERRUPTED: not every planned trial finished; run the same command again to continue")
    if study.comparison:
        lines += _comparison_lines(study, df)
    elif not best.empty:
        top = best.iloc[0]
        m = study.objectives[0].metric
        lines.append(f"best configuration ({'by ' + m if len(study.objectives) == 1 else 'first objective'}): "
                     f"{format_params(top)}")
        for o in study.objectives:
            if f"{o.metric}_mean" in top:
                std = top[f"{o.metric}_std"]
                lines.append(f"  {o.metric} = {top[f'{o.metric}_mean']:.4g}"
                             + (f" ± {std:.2g}" if pd.notna(std) else "") + f" over {int(top['n_seeds'])} seed(s)")
        if "pareto" in best:
            lines.append(f"  {int(best['pareto'].sum())} configuration(s) on the Pareto front (see results.csv)")
    if study.kind in ("ablation", "comparison") and run_data is not None:  # the report's Findings: the decisions
        lines += findings_lines(run_data)
    failed = df[df["status"] == Status.FAIL.value] if not df.empty else df
    for _, r in failed.head(5).iterrows():
        lines.append(f"failed: trial {r['trial']} ({format_params(r)}, seed {r['seed']}): {r['error']}")
    lines += [f"results:  {run_dir / 'results.csv'}  (one row per trial)",
              f"curves:   {run_dir / 'curves.csv'}",
              f"trials:   {run_dir / 'trials'}/<trial>/"]
    if (run_dir / SELECTION_FILE).exists():
        lines.append(f"selection: {run_dir / SELECTION_FILE}  (UDR, ModelCentrality: scores without labels)")
    if (run_dir / REPORT_FILE).exists():
        lines.append(f"report:   {run_dir / 'report.html'}")
    lines += list(extra)
    lines.append(f"optuna:   optuna-dashboard {url} --host 127.0.0.1   (then open http://127.0.0.1:8080)")
    if study.budget != "paper":
        lines.append(f"WARNING: these scores come from the small {study.budget!r} budget ({study.steps_text}). "
                     "They are NOT comparable with 'paper'-budget scores or the paper's numbers; "
                     f"they show that the pipeline works, not how good a setting is.")
    return lines


def _comparison_lines(study: Study, df: pd.DataFrame) -> list[str]:
    """Each method's best configuration per dataset, mean ± std over its seeds (Table 1's rows)."""
    plain = df.rename(columns=lambda c: c.removeprefix(PARAM_PREFIX))
    objective = (study.objectives[0].metric, study.objectives[0].direction)
    scores = list(dict.fromkeys([objective[0], *TABLE1_SCORES]))
    params = list(dict.fromkeys(p for arm in study.arms for p in arm.space))
    table = comparison_table(plain, objective, scores, params, select="best")
    if table.empty:
        return []
    lines = [f"each method's best configuration by {objective[0]} (mean ± std over seeds; the report also pools "
             "every configuration):"]
    for _, r in table.iterrows():
        shown = ", ".join(f"{s} {r[f'{s}_mean']:.4g}" + (f" ± {r[f'{s}_std']:.2g}" if pd.notna(r[f"{s}_std"]) else "")
                          for s in scores if f"{s}_mean" in r)
        lines.append(f"  {r['method']:<12} {r['dataset']:<9} {r['configuration']}: {shown} (n={int(r['n'])})")
    return lines
