"""The study report: one self-contained HTML file (plotly.js inside, images inline, no network).

    python -m orchestrator.report RUN_DIR [--out FILE.html]

It reads what ``python -m orchestrator.study`` wrote (docs/architecture.md, "Run folder") and
shows: where and how the study ran, the leaderboard (mean ± std over seeds), for an ablation
every score against the ablated parameter with a Welch test of each setting against the
default, for a search Optuna's history / importances / parallel coordinates / slices / contour
(/ Pareto front), for a comparison Table 1 and total correlation against MIG (Figure 2), DiD's
shortcut diagnostics with their flags, a sequence model's (V3's) own scores and codebook matrices,
training curves of every trial, the best model's latent traversal (a sequence model's swap grid), the failed trials, and the
study file. A folder with nothing finished still gets a report that says so.

Example:
    >>> path = build_report("runs/ablation_dims-smoke")
    >>> path.name
    'report.html'
"""
from __future__ import annotations

import math
from pathlib import Path

from did_core.atomic import atomic_path

from ..run_folder import REPORT_FILE, SWAP_FILE, TRAVERSAL_FILE, Status, held, trial_dir
from .comparison import comparison_sections
from .data import RunData, load_run
from .diagnostics import diagnostics_section
from .figures import IMPORTANCE_EVALUATOR, MAX_CURVE_POINTS, ablation_figure, curve_figures, search_figures
from .header import header_table
from .html import Page, Raw, esc, fmt, image, table
from .sequences import sequence_section, traversal_text
from .stats import (ablation_default, ablation_tests, best_trial, config_label, leaderboard,
                           trial_counts, with_config)

MAX_LEADERBOARD = 30  # rows shown; the rest are in results.csv
MAX_TRAVERSALS = 12  # images: the best model, then the best seed of each other setting, up to this many


def build_report(run_dir: str | Path, out: str | Path | None = None, storage: str | None = None) -> Path:
    """Write the report of the run folder ``run_dir`` to ``out`` (default RUN_DIR/report.html);
    ``storage``: the Optuna storage, when the folder holds no ``optuna.db`` of its own.

    Raises ``ReportError`` only when ``run_dir`` does not exist; anything else missing is said in the report.
    """
    return write_report(load_run(run_dir, storage), out)


def write_report(run: RunData, out: str | Path | None = None) -> Path:
    out = Path(out) if out else run.run_dir / REPORT_FILE
    page = Page(f"Study report: {run.name} ({run.preset})")
    counts = trial_counts(run)
    header = header_table(run, counts) + _notes(run, counts)

    board = leaderboard(run)
    page.section("Leaderboard", _leaderboard_html(run, board))
    if not run.finished.empty and run.kind == "ablation" and run.params and run.scores:
        _ablation_section(page, run)
    elif not run.finished.empty and run.kind == "search":
        _search_section(page, run)
    elif not run.finished.empty and run.kind == "comparison":
        comparison_sections(page, run)
    diagnostics_section(page, run)
    sequence_section(page, run)
    _curves_section(page, run)
    _traversal_section(page, run)
    _failed_section(page, run)
    _study_section(page, run)

    with atomic_path(out) as tmp:  # a browser open on the old report never sees half a file
        tmp.write_text(page.render(header), encoding="utf-8")
    return out


def _notes(run: RunData, counts: dict[str, int]) -> str:
    notes = []
    if run.results.empty:
        notes.append("No trial results: the study wrote no results.csv rows. Nothing below can rank or compare.")
    elif run.finished.empty:
        notes.append(f"No trial finished ({', '.join(f'{v} {k}' for k, v in counts.items() if v)}). "
                     "See the failed trials below for why.")
    html = "".join(f'<div class="bad">{esc(n)}</div>' for n in notes)
    html += "".join(f'<div class="note">{esc(p)}</div>' for p in run.problems)
    return html


def _leaderboard_html(run: RunData, board) -> str:
    if board.empty:
        return '<p class="muted">No finished trial to rank.</p>'
    objective = run.objectives[0] if run.objectives else None
    headers = ["rank", *run.params, "seeds", *[s + (" ★" if objective and s == objective[0] else "")
                                                for s in run.scores], "trials"]
    rows = []
    for _, r in board.head(MAX_LEADERBOARD).iterrows():
        scores = [fmt(r[f"{s} mean"]) + (f" ± {fmt(r[f'{s} std'], 2)}" if r[f"{s} std"] == r[f"{s} std"] else "")
                  for s in run.scores]
        rows.append([int(r["rank"]), *[fmt(r[p]) for p in run.params], int(r["seeds"]), *scores, r["trials"]])
    ranked = f"ranked by {objective[0]} ({objective[1]}), " if objective else ""
    caption = (f'<p class="muted">One row per configuration, {ranked}each score the mean ± standard deviation '
               "over seeds (finished trials only; no ± where one seed finished). ★ = the objective.</p>")
    more = (f'<p class="muted">… and {len(board) - MAX_LEADERBOARD} more configurations (results.csv has them '
            "all).</p>" if len(board) > MAX_LEADERBOARD else "")
    return caption + table(headers, rows, ["best"] + [""] * (len(rows) - 1), cls="scores") + more


def _ablation_section(page: Page, run: RunData) -> None:
    param = run.params[0]
    default, source = ablation_default(run)
    fig = page.figure(ablation_figure(run, default))
    tests = ablation_tests(run, default)
    settings = list(dict.fromkeys(c.setting for c in tests))
    untestable = bool(tests) and all(c.note == "n too small" for c in tests)
    rows = []
    for s in settings:
        row = [s]
        for score in run.scores:
            c = next(c for c in tests if c.setting == s and c.score == score)
            diff = "–" if math.isnan(c.diff) else f"Δ {_tidy(c.diff):+.3g}"
            if c.note:
                row.append(diff if untestable else f"{diff}; {c.note} (n={c.n} vs {c.n_default})")
                continue
            text = f"{diff}; p = {c.p:.2g} (Holm {c.p_holm:.2g}), n={c.n} vs {c.n_default}"
            row.append(Raw(f'<span class="sig">{esc(text)}</span>') if c.p_holm < 0.05 else text)
        rows.append(row)
    explain = (f"<p>Default setting: <b>{esc(param)}={esc(default)}</b> — {esc(source)}. Each other setting is "
               "compared with it by Welch's two-sided t-test over seeds (unequal variances). Δ = setting mean "
               "− default mean. Holm = p adjusted for testing every setting of that score; bold red where the "
               "adjusted p &lt; 0.05. With 2–3 seeds only large effects can reach significance: a high p "
               "means 'not distinguishable from seed noise', not 'no effect'.</p>")
    if untestable:
        explain += ('<div class="note">n too small: one finished seed per setting, so no test can separate an '
                    "effect from seed noise. Only the differences are shown; run a preset with at least 2 seeds "
                    "per setting.</div>")
    page.section(f"Ablation: scores against {param}", fig, explain,
                 table([param, *run.scores], rows, cls="scores") if rows else "<p>Only one setting finished.</p>")


def _tidy(x: float) -> float:
    """Differences of equal floats print as 0, not 8.7e-19."""
    return 0.0 if abs(x) < 1e-12 else x


def _search_section(page: Page, run: RunData) -> None:
    blocks = [f'<p class="muted">Parameter importances: {esc(IMPORTANCE_EVALUATOR)}, fixed so that the numbers do '
              "not change with an Optuna upgrade. Importances and plots use every completed Optuna trial "
              "(each seed its own point).</p>"]
    n_done = len(run.finished)
    if n_done < 20:
        blocks.append(f'<div class="note">Only {n_done} finished trials: importances, slices and the contour rest on '
                      "too few points to be trusted; read them as a check that the pipeline works.</div>")
    for title, fig in search_figures(run):
        blocks.append(page.figure(fig) if not isinstance(fig, str) else f'<div class="note">{esc(title)}: {esc(fig)}</div>')
    page.section("Search", *blocks)


def _curves_section(page: Page, run: RunData) -> None:
    figs = curve_figures(run)
    if not figs:
        page.section("Training curves", '<p class="muted">No curves recorded (curves.csv missing or empty).</p>')
        return
    intro = ('<p class="muted">One line per trial, coloured by configuration; click a legend entry to hide a '
             f"configuration. Curves longer than {MAX_CURVE_POINTS} points are thinned evenly for drawing. "
             "In-training scores use the monitoring protocol and are not comparable with the final scores.</p>")
    page.section("Training curves", intro, *[page.figure(f) for _, f in figs])


def _traversal_section(page: Page, run: RunData) -> None:
    best = best_trial(run)
    blocks = []
    picks = [(best, "best model")] if best is not None else []
    # an ablation: the best seed of each setting; a comparison: the best model of each method and dataset
    by = run.params if run.kind == "ablation" else [p for p in ("method", "dataset") if p in run.params]
    if run.kind in ("ablation", "comparison") and by and run.objectives:
        score, direction = run.objectives[0]
        df = with_config(run.finished.dropna(subset=[score]), by)
        for config, group in df.groupby("config", sort=False):
            idx = group[score].idxmin() if direction == "minimize" else group[score].idxmax()
            t = int(group.loc[idx, "trial"])
            if t != best:
                picks.append((t, f"best seed of {config}" if run.kind == "ablation" else f"best of {config}"))
    for trial, why in picks[:MAX_TRAVERSALS]:
        png = trial_dir(run.run_dir, trial) / TRAVERSAL_FILE
        row = run.results[run.results["trial"] == trial].iloc[0]
        caption = f"trial {trial} ({why}): {config_label(row, run.params)}, seed {row.get('seed', '?')}"
        if run.objectives:
            caption += f", {run.objectives[0][0]} = {fmt(row.get(run.objectives[0][0]))}"
        blocks.append(image(png, caption, thumb=trial != best) if held(run.run_dir, png) else f'<div class="note">{esc(caption)}: no traversal.png</div>')
        swap = trial_dir(run.run_dir, trial) / SWAP_FILE
        if held(run.run_dir, swap):  # PartedVAE's: z of the top row's image, u of the left column's
            blocks.append(image(swap, f"trial {trial}: swap grid", thumb=trial != best))
    title, intro = traversal_text(run)  # a sequence model's images are swap grids
    if any("swap grid" in b for b in blocks):
        intro += ('<p class="muted">A swap grid (PartedVAE) decodes the class-independent z of the top row\'s image '
                  "with the class-related u of the left column's image: each row should draw the left image's class "
                  "(shape) in the pose, size and place of the image above.</p>")
    gallery = f'<div class="gallery">{"".join(blocks)}</div>' if blocks else '<p class="muted">No finished trial.</p>'
    page.section(title, intro if blocks else "", gallery)


def _failed_section(page: Page, run: RunData) -> None:
    failed = run.results[run.results["status"] == Status.FAIL.value] if not run.results.empty else run.results
    if failed.empty:
        page.section("Failed trials", '<p class="muted">None.</p>')
        return
    rows = []
    for _, r in failed.iterrows():
        err = r["error"].strip() or "(no error recorded)"
        first = err.splitlines()[-1] if err else ""
        rows.append([int(r["trial"]), config_label(r, run.params), r.get("seed", "?"),
                     Raw(f"<details><summary>{esc(first[:200])}</summary><pre>{esc(err[-4000:])}</pre></details>")])
    page.section(f"Failed trials ({len(rows)})", table(["trial", "configuration", "seed", "error"], rows))


def _study_section(page: Page, run: RunData) -> None:
    """The run folder's study.yaml. The study file it names (``meta.source``) is never read: a
    report embeds only what the run folder holds (a folder handed over could name any local file)."""
    if not run.study_text:
        page.section("Study file", '<p class="muted">study.yaml is missing from the run folder.</p>')
        return
    source = run.meta.source if run.meta else None
    rerun = f"python -m orchestrator.study {source or run.run_dir / 'study.yaml'} --preset {run.preset}"
    blocks = [f"<p>To rerun: <code>{esc(rerun)}</code></p>"]
    blocks.append(f"<h3>study.yaml in the run folder (the study as run{', from ' + esc(source) + ', preset applied' if source else ''})</h3>"
                  f"<pre>{esc(run.study_text)}</pre>")
    page.section("Study file", *blocks)
