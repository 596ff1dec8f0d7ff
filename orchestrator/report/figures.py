"""The report's Plotly figures. Each builder returns figures, or a sentence saying why it cannot.

Example:
    >>> run = load_run("runs/ablation_dims-smoke")
    >>> fig = ablation_figure(run, default=10)
    >>> fig.layout.title.text
    'Final scores against n_compare_dims'
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale
from plotly.subplots import make_subplots

from ..run_folder.layout import LOSS_PREFIX, THROUGHPUT, is_in_training
from ..verdicts.comparisons import is_number
from .data import RunData, grid_rows
from .stats import ablation_settings, control_rows, leaderboard, mean_ci, with_config

IMPORTANCE_EVALUATOR = "fANOVA: optuna.importance.FanovaImportanceEvaluator(n_trees=64, max_depth=64, seed=0)"
COLS = 3
CONTROL_COLOURS = ("#ff7f0e", "#2ca02c", "#9467bd")  # a control's points beside the grid's blue
MAX_CURVE_POINTS = 200  # per trial and curve; longer curves are thinned evenly (first and last kept)


def _grid(n: int, titles: list[str], row_height: int = 300, **kw) -> go.Figure:
    rows = max(1, math.ceil(n / COLS))
    fig = make_subplots(rows=rows, cols=min(COLS, max(n, 1)), subplot_titles=titles,
                        vertical_spacing=min(0.3 / rows + 0.05, 0.15), horizontal_spacing=0.07, **kw)
    fig.update_layout(height=row_height * rows + 120, template="plotly_white", margin=dict(t=80, b=40))
    return fig


def _rc(i: int) -> dict:
    return dict(row=i // COLS + 1, col=i % COLS + 1)


def spans_decades(settings, decades: float = 2.0) -> bool:
    """Whether numeric settings reach over ``decades`` powers of ten (0, 100, 1,000, 10,000 does):
    a linear axis would crowd the small ones together, so the figure spaces them evenly instead."""
    values = [abs(float(s)) for s in settings]
    positive = [v for v in values if v > 0]
    return len(positive) > 1 and max(positive) / min(positive) >= 10 ** decades


def ablation_figure(run: RunData, default) -> go.Figure:
    """Each final score against the ablated parameter: every seed's point, and the mean with its 95% CI
    (settings spanning several decades, e.g. a number of labels 0 / 100 / 1,000 / 10,000, are evenly
    spaced in their order rather than on a linear axis). A control of the study (a configuration run
    beside the grid) is a diamond of its own colour at its value of the parameter."""
    param = run.params[0]
    settings = ablation_settings(run)
    numbers = all(is_number(s) for s in settings)
    numeric = numbers and not spans_decades(settings)
    label = (lambda v: f"{float(v):g}") if numbers else str
    # on a category axis a shape's x is the category's position: plotly.js reads a numeric-looking
    # name such as "10000" as a position, which would stretch the axis to 10,000
    labels = [label(s) for s in settings]
    default_at = default if numeric else (labels.index(label(default)) if label(default) in labels else None)
    df = grid_rows(run, run.finished)
    controls = control_rows(run, run.finished)
    fig = _grid(len(run.scores), run.scores)
    rng = np.random.default_rng(0)
    spread = (0.02 * (float(max(settings)) - float(min(settings))) if numeric and len(settings) > 1 else 0.0)
    for i, score in enumerate(run.scores):
        xs, means, halves = [], [], []
        for s in settings:
            vals = df.loc[df[param] == s, score].dropna()
            m, h = mean_ci(vals.to_list())
            xs.append(s if numeric else label(s))
            means.append(m)
            halves.append(0.0 if math.isnan(h) else h)
        first = i == 0
        fig.add_trace(go.Scatter(
            x=xs, y=_r(means), error_y=dict(type="data", array=_r(halves), visible=True),
            mode="lines+markers", name="mean, 95% CI over seeds", legendgroup="mean", showlegend=first,
            line=dict(color="#1f77b4"), marker=dict(size=9)), **_rc(i))
        pts = df.dropna(subset=[score])
        jitter = rng.uniform(-spread, spread, len(pts)) if numeric else 0.0
        px = (pts[param].astype(float) + jitter) if numeric else pts[param].map(label)
        seeds = pts["seed"] if "seed" in pts else pts["trial"]
        fig.add_trace(go.Scatter(
            x=px, y=_r(pts[score]), mode="markers", name="one seed", legendgroup="seed", showlegend=first,
            marker=dict(color="rgba(80,80,80,0.55)", size=6, symbol="circle-open"),
            text=[f"trial {int(t)}, seed {s}" for t, s in zip(pts["trial"], seeds)],
            hovertemplate="%{text}<br>%{y:.4f}<extra></extra>"), **_rc(i))
        for j, (name, point, trials) in enumerate(controls):
            vals = trials[score].dropna()
            if vals.empty or param not in point:
                continue
            m, h = mean_ci(vals.to_list())
            at = float(point[param]) + spread * (j + 2) if numeric else label(point[param])
            fig.add_trace(go.Scatter(
                x=[at] * len(vals), y=_r(vals), mode="markers", name=name, legendgroup=name, showlegend=False,
                marker=dict(color=CONTROL_COLOURS[j % len(CONTROL_COLOURS)], size=6, symbol="diamond-open"),
                text=[name] * len(vals), hovertemplate="%{text}<br>%{y:.4f}<extra></extra>"), **_rc(i))
            fig.add_trace(go.Scatter(
                x=[at], y=_r([m]), error_y=dict(type="data", array=_r([0.0 if math.isnan(h) else h]), visible=True),
                mode="markers", name=f"{name}: mean, 95% CI", legendgroup=name, showlegend=first,
                marker=dict(color=CONTROL_COLOURS[j % len(CONTROL_COLOURS)], size=11, symbol="diamond")), **_rc(i))
        if default_at is not None:
            fig.add_vline(x=default_at, line_dash="dot", line_color="#d62728", **_rc(i))
        fig.update_xaxes(title_text=param, type="linear" if numeric else "category", **_rc(i))
    fig.update_layout(title=f"Final scores against {param}",
                      annotations=list(fig.layout.annotations) + [dict(
                          text=f"red dotted line: the reference setting, which every other is compared with ({param}={default})", showarrow=False,
                          xref="paper", yref="paper", x=1, y=1.0, yanchor="bottom", xanchor="right",
                          yshift=40, font=dict(color="#d62728", size=12))])
    return fig


def _config_colours(run: RunData, configs: list[str]) -> dict[str, str]:
    if len(configs) <= len(qualitative.D3):
        return dict(zip(configs, qualitative.D3))
    ranked = [c for c in leaderboard(run).get("config", []) if c in configs]
    ranked += [c for c in configs if c not in ranked]
    positions = [i / max(len(ranked) - 1, 1) for i in range(len(ranked))]
    return dict(zip(ranked, sample_colorscale("Viridis_r", positions)))


def curve_figures(run: RunData) -> list[tuple[str, dict]]:
    """Losses, and in-training scores, against step: one panel per name, one line per trial,
    coloured and grouped (one legend entry) by configuration.

    Returned as plain figure dicts: hundreds of traces go through Plotly's validation too slowly.
    """
    if run.curves.empty:
        return []
    trials = with_config(run.results, run.params) if not run.results.empty else pd.DataFrame(
        {"trial": run.curves["trial"].unique(), "config": "(unknown configuration)"})
    if run.params:  # legend in parameter order
        trials = trials.sort_values(run.params, kind="stable", key=lambda c: pd.to_numeric(c, errors="coerce")
                                    if pd.to_numeric(c, errors="coerce").notna().all() else c.astype(str))
    label = dict(zip(trials["trial"], trials["config"]))
    curves = _thin(run.curves.dropna(subset=["value"]).sort_values(["name", "trial", "step"]))
    curves["config"] = curves["trial"].map(label).fillna("(trial not in results.csv)")
    configs = list(dict.fromkeys(trials["config"])) + [c for c in curves["config"].unique()
                                                       if c not in set(trials["config"])]
    colour = _config_colours(run, configs)
    many = len(configs) > len(qualitative.D3)
    names = list(dict.fromkeys(curves["name"]))
    losses = [n for n in names if n.startswith(LOSS_PREFIX)]
    scores = [n for n in names if is_in_training(n) and n not in losses]
    groups = [("Training losses", losses), ("In-training scores (monitoring protocol)", scores),
              ("Training speed", [n for n in names if n == THROUGHPUT])]
    by_name = dict(tuple(curves.groupby("name", sort=False)))
    out = []
    for title, group in groups:
        if not group:
            continue
        grid = _grid(len(group), group, row_height=260)
        for i in range(len(group)):
            grid.update_xaxes(title_text="step", **_rc(i))
        note = " (colour: configuration rank by the objective, yellow = best)" if many else ""
        grid.update_layout(title=title + note)
        fig = grid.to_plotly_json()
        mode = "lines" if title == "Training losses" else "lines+markers"  # evaluations are few points
        shown = set()
        for i, name in enumerate(group):
            axis = "" if i == 0 else str(i + 1)
            for config, rows in by_name[name].groupby("config", sort=False):
                x, y, trial = _broken_lines(rows)
                fig["data"].append(dict(
                    type="scatter", x=x, y=y, customdata=trial, mode=mode, marker=dict(size=5), name=config,
                    legendgroup=config,
                    showlegend=(config not in shown) and not many, xaxis="x" + axis, yaxis="y" + axis,
                    line=dict(color=colour.get(config), width=1.2),
                    hovertemplate=f"{config}<br>trial %{{customdata}}, step %{{x}}: %{{y:.4g}}<extra></extra>"))
                shown.add(config)
        out.append((title, fig))
    return out


def _thin(curves: pd.DataFrame) -> pd.DataFrame:
    """Keep at most MAX_CURVE_POINTS evenly spaced points (first and last included) per trial and name."""
    groups = curves.groupby(["trial", "name"], sort=False)["step"]
    pos = groups.cumcount().to_numpy()
    last = groups.transform("size").to_numpy() - 1
    scale = np.maximum(last, 1) / (MAX_CURVE_POINTS - 1)
    nearest = np.round(np.round(pos / scale) * scale)
    return curves[(last < MAX_CURVE_POINTS) | (nearest == pos)].copy()


def _broken_lines(rows: pd.DataFrame):
    """One trace for many trials (rows sorted by trial, step): each trial's line, then a gap."""
    trial = rows["trial"].to_numpy()
    breaks = np.flatnonzero(trial[1:] != trial[:-1]) + 1
    gap = lambda a: np.insert(np.asarray(a, dtype=object), breaks, None).tolist()  # noqa: E731
    return gap(rows["step"].tolist()), gap(_r(rows["value"])), gap(trial.tolist())


def search_figures(run: RunData) -> list[tuple[str, go.Figure | str]]:
    """Optuna's views of the search; a string in place of a figure says why that view is missing."""
    import optuna
    import optuna.visualization as vis

    study = run.optuna_study
    if study is None:
        return [("Search history", "no Optuna storage could be read (see the notes at the top)")]
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return [("Search history", "no trial of the Optuna study completed")]
    names = list(study.metric_names or []) or [m for m, _ in run.objectives] or ["objective"]
    multi = len(study.directions) > 1
    target = (lambda t: t.values[0]) if multi else None
    tname = names[0] if names else "objective"
    params = sorted({p for t in done for p in t.params})
    out = []

    def attempt(title, make):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = make()
            fig.update_layout(template="plotly_white", title=title)
            out.append((title, fig))
        except Exception as e:  # too few trials, one-valued parameters, ...: say so in place of the figure
            out.append((title, f"not drawn: {type(e).__name__}: {e}"))

    attempt(f"Optimisation history ({tname})",
            lambda: vis.plot_optimization_history(study, target=target, target_name=tname))
    importances = {}  # of the first objective, for choosing the contour's parameters
    per_objective = {}
    for k, name in enumerate(names[:len(study.directions)]):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                per_objective[name] = optuna.importance.get_param_importances(
                    study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
                    target=(lambda t, k=k: t.values[k]) if multi else None)
        except Exception as e:  # too few trials or a single-valued space
            out.append((f"Parameter importances for {name}", f"not computed: {type(e).__name__}: {e}"))
    if per_objective:
        importances = next(iter(per_objective.values()))
        out.append(("Parameter importances", importance_figure(per_objective)))
    attempt("Parallel coordinates", lambda: vis.plot_parallel_coordinate(study, target=target, target_name=tname))
    attempt("Slices", lambda: vis.plot_slice(study, target=target, target_name=tname))
    top = list(importances)[:2] if len(importances) >= 2 else params[:2]
    if len(top) == 2:
        attempt(f"Contour of {top[0]} and {top[1]}",
                lambda: vis.plot_contour(study, params=top, target=target, target_name=tname))
    else:
        out.append(("Contour", "needs at least two searched parameters"))
    if multi:
        attempt("Pareto front", lambda: vis.plot_pareto_front(study, target_names=names[:len(study.directions)]))
    return out


def importance_figure(per_objective: dict[str, dict[str, float]]) -> go.Figure:
    """Horizontal bars: each parameter's importance for each objective (the evaluator in the title)."""
    fig = go.Figure()
    params = list(next(iter(per_objective.values())))[::-1]  # most important on top
    for name, imp in per_objective.items():
        fig.add_trace(go.Bar(y=params, x=_r([imp.get(p, 0.0) for p in params]), orientation="h", name=name,
                             text=[f"{imp.get(p, 0.0):.2f}" for p in params], textposition="outside"))
    fig.update_layout(title=f"Parameter importances ({IMPORTANCE_EVALUATOR.split(':')[0]})", barmode="group",
                      template="plotly_white", height=160 + 40 * len(params) * len(per_objective),
                      xaxis_title="importance (fraction of the objective's variance)", showlegend=True)
    return fig


def _r(values) -> list:
    """Round to 6 significant digits so the embedded JSON stays small; nan -> None."""
    out = []
    for v in (values.tolist() if hasattr(values, "tolist") else values):
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            out.append(None)
        else:
            out.append(float(f"{float(v):.6g}"))
    return out
