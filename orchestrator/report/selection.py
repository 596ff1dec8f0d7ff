"""The report's section "Selecting without labels": the label-free scores of ``selection.csv``
(UDR, ModelCentrality; :mod:`orchestrator.select`) against the supervised ones the study has.

- each configuration's UDR (lasso, spearman) and ModelCentrality beside its MIG and DCI-D
  (means over its seeds);
- Spearman's ρ between each label-free score and each supervised one across configurations,
  with n and p (per dataset when a comparison has several);
- which configuration each label-free score would pick, and that pick's MIG regret against the
  best configuration by MIG;
- what ρ can say at this n, in words.

:func:`selection_section` is a pure function of the two tables; :func:`add_selection_section`
puts it on the page.

Example:
    >>> section = selection_section(read_selection(run_dir), run.results)
    >>> section.title, [c.rho for c in section.correlations]          # doctest: +SKIP
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from ..run_folder.layout import SELECTION_SCORES, Status, read_selection
from .html import Page, esc, fmt, table

TITLE = "Selecting without labels"
SUPERVISED = ("mig", "dci_disentanglement")
LABELS = {"udr_lasso": "UDR (lasso)", "udr_spearman": "UDR (spearman)", "model_centrality": "ModelCentrality",
          "mig": "MIG", "dci_disentanglement": "DCI-D"}
EXACT_UP_TO = 8  # configurations: ρ's null distribution by enumerating every ranking, else Student's t


@dataclass(frozen=True)
class Correlation:
    group: str  # "all configurations" or a dataset
    unsupervised: str
    supervised: str
    n: int
    rho: float  # nan with fewer than 3 configurations or no spread
    p: float


@dataclass(frozen=True)
class Pick:
    group: str
    score: str  # the label-free score (or "mig": the best by MIG itself)
    configuration: str
    mig: float
    regret: float  # best MIG of the group minus this pick's MIG
    n: int  # configurations the score was available for


@dataclass
class SelectionSection:
    """What the section shows: its blocks in order (escaped HTML strings and Plotly figures), and
    the numbers behind them."""

    title: str
    blocks: list = field(default_factory=list)
    configurations: pd.DataFrame = field(default_factory=pd.DataFrame)
    correlations: list[Correlation] = field(default_factory=list)
    picks: list[Pick] = field(default_factory=list)


def configuration_table(selection: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: dataset, configuration, seeds, then the mean over its seeds of
    every label-free and supervised score present."""
    done = results[results["status"] == Status.COMPLETE.value] if "status" in results else results
    supervised = [s for s in SUPERVISED if s in done]
    df = selection.merge(done[["trial", *supervised]], on="trial", how="left")
    scores = [*SELECTION_SCORES, *supervised]
    rows = []
    for (dataset, config), group in df.groupby(["dataset", "configuration"], sort=False, dropna=False):
        rows.append({"dataset": dataset, "configuration": config, "seeds": len(group),
                     **{s: group[s].mean() for s in scores}})
    return pd.DataFrame(rows, columns=["dataset", "configuration", "seeds", *scores])


def spearman(x: pd.Series, y: pd.Series) -> tuple[int, float, float]:
    """(n, ρ, two-sided p) over the rows where both are present; ρ and p nan with n < 3 or no
    spread. p is exact for n <= 8 (every ranking enumerated, ties aside), from Student's t above."""
    both = pd.concat([x, y], axis=1).dropna()
    n = len(both)
    if n < 3 or both.iloc[:, 0].nunique() < 2 or both.iloc[:, 1].nunique() < 2:
        return n, math.nan, math.nan
    result = stats.spearmanr(both.iloc[:, 0], both.iloc[:, 1])
    rho = float(result.statistic)
    p = float(np.mean(null_rhos(n) >= abs(rho) - 1e-9)) if n <= EXACT_UP_TO else float(result.pvalue)
    return n, rho, p


@functools.lru_cache(maxsize=None)
def null_rhos(n: int) -> np.ndarray:
    """|ρ| of every ranking of n items against the identity: ρ's exact null distribution."""
    d2 = ((np.array(list(itertools.permutations(range(n)))) - np.arange(n)) ** 2).sum(axis=1)
    return np.abs(1 - 6 * d2 / (n * (n * n - 1)))


def critical_rho(n: int, alpha: float = 0.05) -> float | None:
    """The smallest |ρ| of n ranks whose two-sided p is below ``alpha`` (None: none is). Exact for
    n <= 8, from Student's t above.

    Example:
        >>> critical_rho(4) is None, round(critical_rho(6), 3)
        (True, 0.886)
    """
    if n < 3:
        return None
    if n <= EXACT_UP_TO:
        rhos = null_rhos(n)
        for r in np.unique(rhos.round(12)):  # ascending: the first whose tail is rare enough
            if np.mean(rhos >= r - 1e-9) < alpha:
                return float(r)
        return None
    t = stats.t.ppf(1 - alpha / 2, n - 2)
    return float(t / math.sqrt(n - 2 + t * t))


def _groups(configs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    datasets = configs["dataset"].dropna().unique()
    if len(datasets) <= 1:
        return [("all configurations", configs)]
    return [(f"{d}", configs[configs["dataset"] == d]) for d in datasets]


def _picks(name: str, configs: pd.DataFrame) -> list[Pick]:
    if "mig" not in configs or configs["mig"].dropna().empty:
        return []
    best = configs["mig"].max()
    picks = []
    for score in (*SELECTION_SCORES, "mig"):
        have = configs.dropna(subset=[score])
        if have.empty:
            continue
        row = have.loc[have[score].idxmax()]
        picks.append(Pick(name, score, str(row["configuration"]), float(row["mig"]), float(best - row["mig"]), len(have)))
    return picks


def _meaning(ns: list[int]) -> str:
    """What ρ says, in words, at each n the section's correlations have."""
    words = ["ρ is the rank agreement across configurations: +1 when the label-free score orders them exactly "
             "as the supervised one does, 0 when the two orders are unrelated, −1 when reversed."]
    for n in ns:
        crit = critical_rho(n)
        if n < 3:
            words.append(f"With {n} configuration(s) ρ is not defined.")
        elif crit is None:
            words.append(f"At n = {n} no ρ can reach p < 0.05: even a perfect ±1 arises by chance too often, so ρ "
                         "describes these few configurations and is no evidence that the score selects well.")
        else:
            words.append(f"At n = {n}, |ρ| must reach {crit:.2f} for p < 0.05; a smaller |ρ| is what chance alone "
                         "often gives, no evidence either way (neither that the score works nor that it fails).")
    return " ".join(words)


def _figure(name: str, configs: pd.DataFrame) -> go.Figure | None:
    scores = [s for s in SELECTION_SCORES if configs[s].notna().any()]
    if "mig" not in configs or not scores or configs["mig"].dropna().empty:
        return None
    fig = make_subplots(rows=1, cols=len(scores), shared_yaxes=True, subplot_titles=[LABELS[s] for s in scores])
    for k, s in enumerate(scores, start=1):
        part = configs.dropna(subset=[s, "mig"])
        fig.add_trace(go.Scatter(x=part[s].round(6).tolist(), y=part["mig"].round(6).tolist(), mode="markers",
                                 text=[str(c) for c in part["configuration"]], name=LABELS[s], showlegend=False,
                                 marker=dict(size=10), hovertemplate="%{text}<br>%{x:.4g}, MIG %{y:.4g}<extra></extra>"),
                      row=1, col=k)
        fig.update_xaxes(title_text=LABELS[s], row=1, col=k)
    fig.update_yaxes(title_text="MIG (mean over seeds)", row=1, col=1)
    fig.update_layout(title=f"Label-free scores against MIG, one point per configuration ({name})",
                      template="plotly_white", height=420)
    return fig


def selection_section(selection: pd.DataFrame | None, results: pd.DataFrame) -> SelectionSection | None:
    """The section's content from ``selection.csv`` (run_folder.read_selection) and the results
    table (report or results.csv form: ``trial``, ``status``, the scores); None without a selection."""
    if selection is None or selection.empty:
        return None
    section = SelectionSection(TITLE)
    protocol = ", ".join(sorted(set(selection["protocol"].dropna().astype(str)))) or "?"
    section.blocks.append(
        f'<p class="muted">Scores computed from the trained models alone, no labels ({esc(protocol)} protocol): '
        "UDR compares each model with the other seeds of its configuration (Duan et al. 2020, as disentanglement_lib); "
        "ModelCentrality asks how well the other models' encoders read each model's generator (Lin et al. 2020, "
        "InfoGAN-CR). Higher is better for both; each column is the mean over the configuration's seeds.</p>")
    configs = configuration_table(selection, results)
    section.configurations = configs
    present = [s for s in (*SELECTION_SCORES, *SUPERVISED) if s in configs and configs[s].notna().any()]
    rows = [[r["dataset"], r["configuration"], int(r["seeds"]), *[fmt(r[s]) for s in present]] for _, r in configs.iterrows()]
    section.blocks.append(table(["dataset", "configuration", "seeds", *[LABELS[s] for s in present]], rows, cls="scores"))
    notes = selection.loc[selection["note"].astype(str) != "", "note"].astype(str)
    for part, count in pd.Series([p for n in notes for p in n.split("; ")]).value_counts().items():
        section.blocks.append(f'<div class="note">{esc(part)} ({count} trial{"s" if count != 1 else ""})</div>')
    supervised = [s for s in SUPERVISED if s in configs]
    for name, group in _groups(configs):
        for u in SELECTION_SCORES:
            for s in supervised:
                n, rho, p = spearman(group[u], group[s])
                section.correlations.append(Correlation(name, u, s, n, rho, p))
        section.picks += _picks(name, group)
    if section.correlations:
        rows = [[c.group, LABELS[c.unsupervised], LABELS[c.supervised], c.n,
                 "–" if math.isnan(c.rho) else f"{c.rho:+.3f}", "–" if math.isnan(c.p) else f"{c.p:.2g}"]
                for c in section.correlations]
        section.blocks.append("<h3>Spearman's ρ across configurations</h3>"
                              + table(["configurations", "label-free", "supervised", "n", "ρ", "p"], rows))
        section.blocks.append(f"<p>{esc(_meaning(sorted({c.n for c in section.correlations})))}</p>")
    if section.picks:
        rows = [[p.group, "MIG itself (the best by labels)" if p.score == "mig" else LABELS[p.score], p.configuration,
                 fmt(p.mig), fmt(p.regret), p.n] for p in section.picks]
        section.blocks.append("<h3>What each score would pick</h3>"
                              + '<p class="muted">The configuration with the highest mean of each score, its MIG, and '
                              "its regret: the best configuration's MIG minus the pick's (0 = the score picked the "
                              "best).</p>" + table(["configurations", "picked by", "configuration", "MIG", "MIG regret",
                                                    "scored configurations"], rows))
    for name, group in _groups(configs):
        fig = _figure(name, group)
        if fig is not None:
            section.blocks.append(fig)
    return section


def add_selection_section(page: Page, run) -> None:
    """The section on ``page`` when the run folder has a ``selection.csv`` (nothing otherwise)."""
    try:
        section = selection_section(read_selection(run.run_dir), run.results)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        page.section(TITLE, f'<div class="note">selection.csv: unreadable ({esc(e)})</div>')
        return
    if section is not None:
        page.section(section.title, *[page.figure(b) if isinstance(b, go.Figure) else b for b in section.blocks])
