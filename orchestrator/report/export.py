"""Paper-ready exports of a run folder: tables as LaTeX (booktabs) and CSV, figures as SVG and PDF.

    python -m orchestrator.report RUN_DIR --export [DIR]        (default DIR: RUN_DIR/export)

What it writes, with names a paper's source can ``\\input`` / ``\\includegraphics`` as they are:
- ``leaderboard.tex`` / ``.csv``: one row per configuration, each score's mean ± sd over seeds, the
  best mean of each score in bold (its direction from the metric registry);
- a comparison: ``table1-best.tex`` / ``.csv`` (each method at its best configuration) and
  ``table1-all.tex`` / ``.csv`` (every configuration pooled), MIG, DCI-D and SAP per method and dataset;
- ``fig-01-<title>.svg`` / ``.pdf`` ...: every figure of the report, in its order (Plotly's static
  export through kaleido, which drives the system's Chromium; nothing is downloaded).
The LaTeX needs ``\\usepackage{booktabs}``. The CSV files hold the numbers unrounded.

Example:
    >>> files = export_run(load_run("runs/baselines-smoke"), Path("runs/baselines-smoke/export"))
    >>> sorted(f.name for f in files)[:2]
    ['fig-01-final-scores-against-method.pdf', 'fig-01-final-scores-against-method.svg']
"""
from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from did_core.atomic import atomic_path

from ..run_folder.layout import EXPORT_DIR, META_FILE
from ..run_folder.tables import TABLE1_SCORES, comparison_table, write_csv
from .data import ReportError, RunData, direction
from .stats import leaderboard

FIGURE_FORMATS = ("svg", "pdf")
_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def slug(title: str, limit: int = 60) -> str:
    """A file-name part of a title: lower-case letters, digits and hyphens only."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:limit].strip("-") or "figure"


def mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    if mean is None or not math.isfinite(mean):
        return "--"
    return f"{mean:.{digits}f} \\pm {sd:.{digits}f}" if sd is not None and math.isfinite(sd) else f"{mean:.{digits}f}"


def latex_table(headers: list[str], rows: list[list[str]], bold: set[tuple[int, int]], numeric_from: int,
                caption: str) -> str:
    """A booktabs tabular; ``rows`` hold text cells (escaped here) up to column ``numeric_from`` and math
    cells after it; ``bold`` = (row, column) cells set in bold."""
    spec = "l" * numeric_from + "r" * (len(headers) - numeric_from)
    lines = [f"% {caption}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & ".join(latex_escape(h) for h in headers) + " \\\\", "\\midrule"]
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            if j < numeric_from:
                cells.append(latex_escape(cell))
            elif cell == "--":
                cells.append("--")
            else:
                cells.append(f"$\\mathbf{{{cell}}}$" if (i, j) in bold else f"${cell}$")
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def best_cells(means: list[list[float]], scores: list[str], offset: int) -> set[tuple[int, int]]:
    """(row, column) of the best mean of each score column (``means[row][k]`` for ``scores[k]``)."""
    bold = set()
    for k, score in enumerate(scores):
        column = [(m[k], i) for i, m in enumerate(means) if m[k] is not None and math.isfinite(m[k])]
        if column:
            best = (min if direction(score) == "minimize" else max)(v for v, _ in column)
            bold |= {(i, offset + k) for v, i in column if v == best}
    return bold


def leaderboard_files(run: RunData, out: Path) -> list[Path]:
    board = leaderboard(run)
    if board.empty:
        return []
    scores = list(run.scores)
    headers = ["rank", *run.params, "seeds", *scores]
    rows, means = [], []
    for _, r in board.iterrows():
        rows.append([str(int(r["rank"])), *[_text(r[p]) for p in run.params], str(int(r["seeds"])),
                     *[mean_sd(r[f"{s} mean"], r[f"{s} std"]) for s in scores]])
        means.append([r[f"{s} mean"] for s in scores])
    offset = 2 + len(run.params)
    tex = latex_table(headers, rows, best_cells(means, scores, offset), offset,
                      f"{run.name} ({run.preset}): mean \\pm sd over seeds; best mean of each score in bold")
    csv = board.drop(columns=["config", "trials"], errors="ignore")
    return _write(out / "leaderboard.tex", tex) + _write_csv(out / "leaderboard.csv", csv)


def table1_files(run: RunData, out: Path) -> list[Path]:
    objective = run.objectives[0] if run.objectives else ("mig", "maximize")
    scores = [s for s in TABLE1_SCORES if s in run.results]
    arm_params = [p for p in run.params if p not in ("method", "dataset")]
    files = []
    for select in ("best", "all"):
        df = comparison_table(run.finished, objective, scores, arm_params, select=select)
        if df.empty:
            continue
        datasets = list(dict.fromkeys(df["dataset"]))
        methods = list(dict.fromkeys(df["method"]))
        headers = ["method", *[f"{s} ({d})" for d in datasets for s in scores]]
        rows, means = [], []
        for m in methods:
            row, mrow = [m], []
            for d in datasets:
                cell = df[(df["method"] == m) & (df["dataset"] == d)]
                for s in scores:
                    mean = float(cell[f"{s}_mean"].iloc[0]) if len(cell) else float("nan")
                    sd = float(cell[f"{s}_std"].iloc[0]) if len(cell) else float("nan")
                    row.append(mean_sd(mean, sd))
                    mrow.append(mean)
            rows.append(row)
            means.append(mrow)
        keys = [s for _ in datasets for s in scores]
        # the best of each (dataset, score) column
        bold = best_cells(means, keys, 1)
        caption = (f"Table 1 of {run.name} ({run.preset}), {'each method at its best configuration by ' + objective[0] if select == 'best' else 'every configuration pooled'}: "
                   "mean \\pm sd over seeds; best in bold")
        files += _write(out / f"table1-{select}.tex", latex_table(headers, rows, bold, 1, caption))
        files += _write_csv(out / f"table1-{select}.csv", df)
    return files


def figure_files(figures: list[go.Figure | dict], out: Path) -> list[Path]:
    """Every figure as SVG and PDF, drawn in one kaleido session (one browser for all of them)."""
    figs, files = [], []
    for i, fig in enumerate(figures, 1):
        fig = go.Figure(fig) if isinstance(fig, dict) else fig
        title = (fig.layout.title.text or "") if fig.layout.title else ""
        stem = f"fig-{i:02d}-{slug(title)}"
        for fmt in FIGURE_FORMATS:
            figs.append((fig, fmt))
            files.append(out / f"{stem}.{fmt}")
    if not figs:
        return []
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(path)) for path in files]
        args = dict(fig=[f for f, _ in figs], file=[str(t) for t in tmps], format=[fmt for _, fmt in figs],
                    width=[f.layout.width or 1100 for f, _ in figs], height=[f.layout.height or 500 for f, _ in figs])
        try:
            pio.write_images(**args)
        except Exception as e:  # kaleido's browser tab can be asked to draw before its script has loaded
            if type(e).__name__ != "JavascriptError":  # (ReferenceError: kaleido_scopes), on a loaded machine:
                raise                                  # that one error is tried once more, nothing else
            pio.write_images(**args)
    return files


def export_problem(run: RunData, out: Path) -> str | None:
    """Why ``run`` may not be exported into ``out``, or None: a file there, a folder of another run
    (a run folder, or one inside it: its files are that study's), or no finished trial to export."""
    if out.exists() and not out.is_dir():
        return f"--export {out}: a file, not a folder"
    mine = run.run_dir.resolve()
    for folder in (out.resolve(), *out.resolve().parents):
        if folder != mine and (folder / META_FILE).is_file():
            return (f"--export {out}: inside the run folder {folder} of another study; give a folder of its own "
                    f"(default {run.run_dir / EXPORT_DIR})")
    if run.finished.empty:
        return f"--export: no trial of {run.run_dir} finished, so there is nothing to export"
    return None


def export_run(run: RunData, out: Path, figures: list[go.Figure | dict]) -> list[Path]:
    """Every export of ``run`` into ``out`` (made if missing); ``figures`` are the report's, in order.
    A target :func:`export_problem` refuses is a :class:`ReportError`, before anything is written."""
    why = export_problem(run, out)
    if why:
        raise ReportError(why)
    out.mkdir(parents=True, exist_ok=True)
    files = leaderboard_files(run, out)
    if run.kind == "comparison":
        files += table1_files(run, out)
    return files + figure_files(figures, out)


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _write(path: Path, text: str) -> list[Path]:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return [path]


def _write_csv(path: Path, df: pd.DataFrame) -> list[Path]:
    return [write_csv(path, df)]  # the run folder's own spreadsheet-safe writer
