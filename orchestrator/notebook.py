"""A run folder opened for a notebook: its tables as pandas DataFrames, the report's figures as
Plotly figures, its metadata, and a summary with the leaderboard when Jupyter shows it.

It reads the folder the way the report does (:func:`orchestrator.report.data.load_run`): a partial
folder (a study still running, or one that failed early) opens too, and what is missing is listed
in :attr:`RunView.problems`. The Optuna storage read is the folder's own ``optuna.db``, or the one
given (``storage``), never the one ``meta.json`` names.

Example (a Jupyter cell; examples/notebook.ipynb runs these)::

    import orchestrator
    orchestrator.run_study("ablation_dims", preset="smoke", out="runs/dims")
    run = orchestrator.open_run("runs/dims")
    run                                   # the summary and the leaderboard
    run.results[["trial", "params_n_compare_dims", "mig"]]
    run.best.head()                       # per configuration: <score>_mean, <score>_std, n_seeds
    run.figures["Final scores against n_compare_dims"].show()
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from .report.data import RunData, load_run
from .report.html import esc, fmt, table
from .report.stats import leaderboard, trial_counts
from .run_folder.layout import RESULTS_FILE, RunMeta, held
from .run_folder.tables import best_configurations, load_results

MAX_ROWS = 10  # leaderboard rows shown in the notebook's summary (.leaderboard has them all)


def open_run(path: str | Path, storage: str | None = None) -> "RunView":
    """Open the run folder ``path`` (what ``python -m orchestrator.study`` or
    :func:`orchestrator.run_study` wrote); ``storage``: the Optuna storage of a study run with
    ``--storage`` (the folder then holds no ``optuna.db``). ``ReportError`` when there is no such folder."""
    return RunView(load_run(path, storage=storage))


@dataclass
class RunView:
    """One run folder, read once; the figures are drawn the first time they are asked for."""

    data: RunData  # the report's reading of the folder

    @property
    def path(self) -> Path:
        return self.data.run_dir

    @property
    def meta(self) -> RunMeta | None:
        """``meta.json``: what ran (study, preset, models, objectives), where, when, with which code."""
        return self.data.meta

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def preset(self) -> str:
        return self.data.preset

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """``[(score, "maximize" | "minimize"), ...]``, the first the one the tables rank by."""
        return list(self.data.objectives)

    @property
    def problems(self) -> list[str]:
        """What is missing or unreadable in the folder (empty for a whole one)."""
        return list(self.data.problems)

    @cached_property
    def results(self) -> pd.DataFrame:
        """``results.csv``: one row per trial, as :func:`orchestrator.run_study` returns it
        (``trial, config_id, seed, status, params_<name>..., <score>..., <protocol>/<score>..., ...``)."""
        if not held(self.path, self.path / RESULTS_FILE):
            return pd.DataFrame()
        return load_results(self.path)

    @cached_property
    def best(self) -> pd.DataFrame:
        """The finished trials grouped by configuration, best first by the first objective:
        ``params_<name>...``, ``n_seeds``, ``<score>_mean``, ``<score>_std`` (and ``pareto`` with several
        objectives); as :func:`orchestrator.run_study` returns it."""
        if self.results.empty or "status" not in self.results:
            return pd.DataFrame()
        return best_configurations(self.results, self.objectives)

    @property
    def curves(self) -> pd.DataFrame:
        """``curves.csv``: ``trial, step, name, value`` (losses ``loss/<name>``, in-training scores)."""
        return self.data.curves

    @cached_property
    def leaderboard(self) -> pd.DataFrame:
        """The report's leaderboard: one row per configuration, ``rank``, the parameters by plain name,
        ``seeds``, ``<score> mean`` / ``<score> std`` for every final score, ``trials``."""
        self._arranged()
        return leaderboard(self.data)

    @cached_property
    def figures(self) -> dict[str, Any]:
        """The report's figures as ``plotly.graph_objects.Figure``, by title, in the report's order
        (the ablation or search figures, then the training curves, ...)."""
        import plotly.graph_objects as go

        from .report import compose

        page, _ = compose(self.data)
        out: dict[str, Any] = {}
        for fig in page.figures:
            # the report keeps its many-trace figures as plain dicts (validated once, when drawn)
            fig = go.Figure(fig, _validate=False) if isinstance(fig, dict) else fig
            title = fig.layout.title.text or f"Figure {len(out) + 1}"
            key, n = title, 2
            while key in out:
                key, n = f"{title} ({n})", n + 1
            out[key] = fig
        return out

    @property
    def decisions(self) -> list:
        """The decisions recorded for this run (what was concluded from it, and on what evidence), in
        the order they were made; an empty list when the run has none."""
        return []

    def _arranged(self) -> None:
        from .report import arrange_scores

        arrange_scores(self.data)  # the report's order of the scores: objectives first

    def _repr_html_(self) -> str:
        """Jupyter's view: what ran and how its trials ended, then the top of the leaderboard."""
        m, counts = self.meta, trial_counts(self.data)
        title = f"{self.name} ({self.preset})"
        facts = [("kind", self.data.kind), ("models", ", ".join(m.models) if m else "unknown"),
                 ("objectives", ", ".join(f"{s} ({d})" for s, d in self.objectives) or "unknown"),
                 ("trials", ", ".join(f"{v} {k}" for k, v in counts.items())
                  + (f" (of {m.planned_trials} planned)" if m else "")),
                 ("run folder", self.path.name)]
        parts = [f"<h3>{esc(title)}</h3>", table(["", ""], [list(f) for f in facts])]
        if m is not None and m.description:
            parts.insert(1, f"<p>{esc(m.description)}</p>")
        board = self.leaderboard
        if board.empty:
            parts.append("<p>No finished trial to rank.</p>")
        else:
            scores = self.data.scores
            headers = ["rank", *self.data.params, "seeds", *scores]
            rows = [[int(r["rank"]), *[fmt(r[p]) for p in self.data.params], int(r["seeds"]),
                     *[fmt(r[f"{s} mean"]) + (f" ± {fmt(r[f'{s} std'], 2)}" if pd.notna(r[f"{s} std"]) else "")
                       for s in scores]] for _, r in board.head(MAX_ROWS).iterrows()]
            more = f" (top {MAX_ROWS} of {len(board)}; .leaderboard has them all)" if len(board) > MAX_ROWS else ""
            parts.append(f"<p>Leaderboard: mean ± std over seeds{esc(more)}</p>" + table(headers, rows))
        parts += [f"<p><i>{esc(p)}</i></p>" for p in self.problems]
        return "".join(parts)
