"""The report's comparison sections (a study with `arms`): the paper's Table 1 and Figure 2.

- Table 1: MIG, DCI disentanglement and SAP, mean ± std per method and dataset, the best mean of
  each column marked; once at each method's best configuration and once over all of them.
- Welch's tests of Table 1's ordering: in each column (dataset and score), every method at its best
  configuration against the column's leader (★), Holm-corrected over the methods of that column;
  descriptive only (no bold) where the study has a seed plan, whose decisions are the Findings'.
- Figure 2: Gaussian total correlation of each trained model's codes against its MIG, coloured
  by method, with Spearman's rank correlation over all models, within each dataset and within
  each method.

Example:
    >>> run = load_run("runs/baselines-smoke")
    >>> tc_mig_correlations(run)[0].rho  # doctest: +SKIP
    >>> [(t.method, t.p_holm) for t in leader_tests(run) if t.score == "mig"]  # doctest: +SKIP
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from scipy import stats

from .data import RunData, direction
from .findings import plan_of
from .html import Page, Raw, esc, table
from .stats import holm, welch
from ..run_folder.tables import TABLE1_SCORES, comparison_table, selected_trials

TC, MIG = "gaussian_tc", "mig"
SELECTIONS = {
    "best": "At each method's best configuration on that dataset (by the mean {objective} over seeds; "
            "the pick favours {objective} itself), mean ± std over that configuration's seeds",
    "all": "Over every configuration and seed of each method pooled (no selection)",
}


def comparison_sections(page: Page, run: RunData) -> None:
    page.section("Comparison (Table 1)", *[_table_block(run, select) for select in SELECTIONS], _tests_block(run))
    page.section("Total correlation against MIG (Figure 2)", *_tc_blocks(page, run))


def _arm_params(run: RunData) -> list[str]:
    return [p for p in run.params if p not in ("method", "dataset")]


def _table_block(run: RunData, select: str) -> str:
    objective = run.objectives[0] if run.objectives else (MIG, "maximize")
    scores = [s for s in TABLE1_SCORES if s in run.results]
    df = comparison_table(run.finished, objective, scores, _arm_params(run), select=select)
    caption = f'<p class="muted">{esc(SELECTIONS[select].format(objective=objective[0]))}. ★ = best mean in its column.</p>'
    if df.empty:
        return caption + '<p class="muted">No finished trial with these scores.</p>'
    datasets = list(dict.fromkeys(df["dataset"]))
    methods = list(dict.fromkeys(df["method"]))
    headers = ["method"] + [f"{s} · {d}" for d in datasets for s in scores]
    best = {}
    for d in datasets:
        for s in scores:
            col = df.loc[df["dataset"] == d, f"{s}_mean"].dropna()
            if len(col):
                best[(d, s)] = col.min() if direction(s) == "minimize" else col.max()
    rows = []
    for m in methods:
        row = [m]
        for d in datasets:
            match = df[(df["method"] == m) & (df["dataset"] == d)]
            for s in scores:
                row.append(_cell(match.iloc[0], s, best.get((d, s))) if len(match) else "–")
        rows.append(row)
    configs = df[["method", "dataset", "configuration", "n"]].rename(columns={"n": "trials"})
    detail = table(list(configs.columns), configs.values.tolist())
    title = "At each method's best configuration" if select == "best" else "Over all configurations"
    return (f"<h3>{esc(title)}</h3>" + caption + table(headers, rows, cls="scores")
            + f"<details><summary>which configurations and how many trials</summary>{detail}</details>")


def _cell(row: pd.Series, score: str, best: float | None) -> Raw | str:
    mean, std = row[f"{score}_mean"], row[f"{score}_std"]
    if mean != mean:
        return "–"
    text = f"{mean:.3g}" + (f" ± {std:.2g}" if std == std else "")
    return Raw(f"<b>{esc(text)} ★</b>") if best is not None and mean == best else text


@dataclass
class LeaderTest:
    dataset: str
    score: str
    method: str
    leader: str  # the method with the column's best mean (★)
    n: int
    n_leader: int
    diff: float  # mean(method) - mean(leader)
    p: float  # Welch's two-sided t-test (nan with fewer than 2 trials on a side, or no variance)
    p_holm: float  # Holm-adjusted over the other methods of this dataset and score
    note: str = ""


def leader_tests(run: RunData) -> list[LeaderTest]:
    """Table 1's ordering tested: in each (dataset, score), every method at its best configuration
    (picked by the first objective, as the table does) against the method with the best mean."""
    objective = run.objectives[0] if run.objectives else (MIG, "maximize")
    picked = list(selected_trials(run.finished, objective, _arm_params(run), select="best"))
    out = []
    for dataset in dict.fromkeys(d for _, d, _, _ in picked):
        here = [(m, g) for m, d, _, g in picked if d == dataset]
        for score in (s for s in TABLE1_SCORES if s in run.results):
            values = {m: g[score].dropna().to_numpy() for m, g in here if g[score].notna().any()}
            if len(values) < 2:
                continue
            pick = min if direction(score) == "minimize" else max
            leader = pick(values, key=lambda m: values[m].mean())
            rows = []
            for method, x in values.items():
                if method != leader:
                    c = welch(x, values[leader])
                    rows.append(LeaderTest(str(dataset), score, str(method), str(leader), c.n, c.n_default,
                                           c.diff, c.p, math.nan, c.note))
            for row, ph in zip(rows, holm([r.p for r in rows])):
                row.p_holm = ph
            out.extend(rows)
    return out


def _tests_block(run: RunData) -> str:
    tests = leader_tests(run)
    sequential = plan_of(run).is_sequential
    method = ("In each column, every method at its best configuration against the column's leader (★), "
              "both picked after seeing the data: difference of means, Welch's two-sided t-test on every seed "
              "in the folder, Holm-corrected over the methods of the column.")
    verdict = (" Descriptive only: the study added seeds in rounds, and a test at a fixed sample size on the "
               "seeds so gathered ignores those looks (its p-values come out too small). The decisions are the "
               "Findings', which spend alpha over the looks." if sequential else
               " Bold: Holm p < 0.05; with few seeds a side only large gaps reach it.")
    intro = f'<h3>Is the ordering beyond seed noise?</h3><p class="muted">{esc(method + verdict)}</p>'
    if not tests:
        return intro + '<p class="muted">Needs at least two methods with finished trials.</p>'
    rows = []
    for t in tests:
        holm_text = "–" if math.isnan(t.p_holm) else f"{t.p_holm:.2g}"
        rows.append([t.dataset, t.score, t.method, t.leader, f"{t.n} vs {t.n_leader}", f"{t.diff:+.3g}",
                     "–" if math.isnan(t.p) else f"{t.p:.2g}",
                     Raw(f"<b>{esc(holm_text)}</b>") if t.p_holm < 0.05 and not sequential else holm_text, t.note])
    return intro + table(["dataset", "score", "method", "against", "trials", "difference", "p", "Holm p", "note"], rows)


@dataclass
class RankCorrelation:
    group: str  # "all models" or a method
    n: int
    rho: float  # Spearman's rank correlation of TC and MIG (nan with fewer than 3 models or no spread)
    p: float


def tc_mig_correlations(run: RunData) -> list[RankCorrelation]:
    """Spearman's rank correlation of Gaussian TC and MIG over all finished models, then per dataset
    (when there are several), then per method."""
    df = run.finished.dropna(subset=[TC, MIG]) if {TC, MIG} <= set(run.finished.columns) else pd.DataFrame()
    if df.empty:
        return []
    groups = [("all models", df)]
    if "dataset" in df and df["dataset"].nunique() > 1:  # scales of TC differ between datasets
        groups += [(f"all models on {d}", g) for d, g in df.groupby("dataset", sort=False)]
    if "method" in df:
        groups += [(str(m), g) for m, g in df.groupby("method", sort=False)]
    return [_spearman(name, g[TC], g[MIG]) for name, g in groups]


def tc_counterexamples(run: RunData) -> tuple[int, int]:
    """Figure 2's claim, "a lower TC does not consistently guarantee improved disentanglement", is a
    "not always" statement: (k, n), the n pairs of models of one method (same configuration and
    dataset, other seeds: Gaussian TC is summed over the same latents) of which k have the lower TC
    and the lower MIG. Any k > 0 is an instance of the claim; only k = 0 over many pairs would
    contradict it. (Across methods TC sums over other numbers of latents and is not comparable.)"""
    df = run.finished.dropna(subset=[TC, MIG]) if {TC, MIG} <= set(run.finished.columns) else pd.DataFrame()
    keys = [c for c in ("method", "dataset", *_arm_params(run)) if c in df]
    k = n = 0
    for _, g in (df.groupby(keys, sort=False, dropna=False) if keys else [(None, df)]):
        tc, mig = g[TC].to_numpy(), g[MIG].to_numpy()
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                n += 1
                k += bool((tc[i] - tc[j]) * (mig[i] - mig[j]) > 0)
    return k, n


def _spearman(name: str, x: pd.Series, y: pd.Series) -> RankCorrelation:
    if len(x) < 3 or x.nunique() < 2 or y.nunique() < 2:
        return RankCorrelation(name, len(x), math.nan, math.nan)
    result = stats.spearmanr(x, y)
    return RankCorrelation(name, len(x), float(result.statistic), float(result.pvalue))


def _tc_blocks(page: Page, run: RunData) -> list[str]:
    if not {TC, MIG} <= set(run.finished.columns):
        return ['<p class="muted">Needs both gaussian_tc and mig among the final scores (add them to the '
                "study's eval_metrics).</p>"]
    df = run.finished.dropna(subset=[TC, MIG])
    if df.empty:
        return ['<p class="muted">No finished trial has both scores.</p>']
    correlations = tc_mig_correlations(run)
    rows = [[c.group, c.n, "–" if math.isnan(c.rho) else f"{c.rho:+.3f}", "–" if math.isnan(c.p) else f"{c.p:.2g}"]
            for c in correlations]
    overall = correlations[0]
    headline = (f"Spearman rank correlation of total correlation and MIG over all {overall.n} models: "
                + ("not defined (fewer than 3 models, or no spread)" if math.isnan(overall.rho)
                   else f"ρ = {overall.rho:+.3f} (p = {overall.p:.2g})"))
    k, n = tc_counterexamples(run)
    pairs = (f"Pairs of models of one method (other seeds, the same latents): {k} of {n} have the lower total "
             "correlation and the lower MIG.")
    explain = ('<p class="muted">Each point is one trained model (one trial). Gaussian total correlation of '
               "the codes (lower = statistically more independent) against MIG (higher = more disentangled). "
               "The paper's claim is that a lower total correlation does not always give a higher MIG: each "
               "pair above with the lower TC and the lower MIG is an instance of it; only none over many pairs "
               "would contradict it. A correlation across methods does not test it (the claim is about single "
               "models, and TC sums over each method's own number of latents).</p>")
    return [f"<p><b>{esc(headline)}</b></p>", f"<p><b>{esc(pairs)}</b></p>", explain, page.figure(_tc_figure(df)),
            table(["models", "n", "Spearman ρ", "p"], rows)]


def _tc_figure(df: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    symbols = ["circle", "diamond", "square", "triangle-up", "x", "cross"]
    datasets = list(dict.fromkeys(df["dataset"])) if "dataset" in df else [None]
    methods = list(dict.fromkeys(df["method"])) if "method" in df else [None]
    for i, method in enumerate(methods):
        for j, dataset in enumerate(datasets):
            part = df
            if method is not None:
                part = part[part["method"] == method]
            if dataset is not None:
                part = part[part["dataset"] == dataset]
            if part.empty:
                continue
            name = " · ".join(str(v) for v in (method, dataset) if v is not None) or "models"
            text = [f"trial {int(r['trial'])}, seed {r.get('seed', '?')}" for _, r in part.iterrows()]
            fig.add_trace(go.Scatter(
                x=part[TC].round(6).tolist(), y=part[MIG].round(6).tolist(), mode="markers", name=name, text=text,
                marker=dict(size=10, color=qualitative.Plotly[i % 10], symbol=symbols[j % len(symbols)],
                            line=dict(width=1, color="white")),
                hovertemplate="%{text}<br>gaussian_tc=%{x:.4g}<br>mig=%{y:.4g}<extra>" + name + "</extra>"))
    fig.update_layout(title="Gaussian total correlation against MIG", xaxis_title="Gaussian total correlation (nats)",
                      yaxis_title="MIG", template="plotly_white", height=480)
    return fig
