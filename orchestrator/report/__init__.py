"""The study report: one self-contained HTML file (plotly.js inside, images inline, no network).

    python -m orchestrator.report RUN_DIR [--out FILE.html]

It imports :mod:`orchestrator.run_folder` (the files and tables it reads) and ``did_core``; never
``running`` (no Ray) nor the commands.

It reads what ``python -m orchestrator.study`` wrote (docs/architecture.md, "Run folder") and
shows: where and how the study ran, the leaderboard (mean ± std over seeds), for an ablation
every score against the ablated parameter with a Welch test of each setting against the
default, for a search Optuna's history / importances / parallel coordinates / slices / contour
(/ Pareto front), for a comparison Table 1 and total correlation against MIG (Figure 2), the
sections the run's models own (``report_sections`` of their spec: DiD's shortcut diagnostics, V3's
codebook; :mod:`orchestrator.report.model_parts`), training curves of every trial, the best model's
latent traversal with the images its model adds (PartedVAE's swap grid; V3 calls its traversals
swap grids), the failed trials, and the study file. A folder with nothing finished still gets a
report that says so.

Example:
    >>> path = build_report("runs/ablation_dims-smoke")
    >>> path.name
    'report.html'
"""
from __future__ import annotations

import math
from pathlib import Path

from did_core.atomic import atomic_path

from did_core.models import ModelSpec

from ..run_folder.layout import REPORT_FILE, TRAVERSAL_FILE, Status, held, trial_dir
from .comparison import comparison_sections
from .data import RunData, load_run
from .export import EXPORT_DIR, export_run
from .figures import IMPORTANCE_EVALUATOR, MAX_CURVE_POINTS, ablation_figure, curve_figures, search_figures
from ..verdicts.findings import digits
from .findings import findings_html, fold
from .header import header_table
from .score_order import order_scores
from .selection import add_selection_section
from .html import Page, Raw, esc, fmt, image, table
from .model_parts import gallery, model_sections, run_models
from .stats import (ablation_default, ablation_tests, best_trial, config_label, leaderboard,
                           trial_counts, with_config)

MAX_LEADERBOARD = 30  # rows shown; the rest are in results.csv
MAX_TRAVERSALS = 12  # images: the best model, then the best seed of each other setting, up to this many


def build_report(run_dir: str | Path, out: str | Path | None = None, models: list[ModelSpec] | None = None,
                 storage: str | None = None) -> Path:
    """Write the report of the run folder ``run_dir`` to ``out`` (default RUN_DIR/report.html).
    ``models`` replace the registry lookup of the run's models of their names (tests); ``storage``:
    the Optuna storage, when the folder holds no ``optuna.db`` of its own.

    Raises ``ReportError`` only when ``run_dir`` does not exist; anything else missing is said in the report.
    """
    return write_report(load_run(run_dir, storage), out, models)


def write_report(run: RunData, out: str | Path | None = None, models: list[ModelSpec] | None = None,
                 export: str | Path | None = None) -> Path:
    """Write the report of ``run`` to ``out`` (default RUN_DIR/report.html); with ``export`` (a folder)
    also its paper-ready exports there, from the same figures, before the page that links to them."""
    out = Path(out) if out else run.run_dir / REPORT_FILE
    page, header = compose(run, models)
    if export is not None:
        export_run(run, Path(export), page.figures)
    _exports_section(page, run)
    with atomic_path(out) as tmp:  # a browser open on the old report never sees half a file
        tmp.write_text(page.render(header), encoding="utf-8")
    return out


def export_report(run: RunData, out: str | Path | None = None, models: list[ModelSpec] | None = None) -> list[Path]:
    """The paper-ready exports (:mod:`orchestrator.report.export`) into ``out`` (default RUN_DIR/export)."""
    page, _ = compose(run, models)
    return export_run(run, Path(out) if out else run.run_dir / EXPORT_DIR, page.figures)


def compose(run: RunData, models: list[ModelSpec] | None = None) -> tuple[Page, str]:
    """The report's page and its header, not yet written."""
    models = run_models(run, models)  # before the header: a model that cannot be had is a problem it lists
    arrange_scores(run)  # after the models: their modules register their own scores and diagnostics
    page = Page(f"Study report: {run.name} ({run.preset})")
    counts = trial_counts(run)
    # the answer first (the decisions of the objective), then what is wrong, then how and where it ran (folded)
    header = findings_html(run) + _notes(run, counts) + fold(header_table(run, counts), "How, where and with what "
                                                             "code this ran (meta.json)")

    board = leaderboard(run)
    page.section("Leaderboard", _leaderboard_html(run, board))
    if not run.finished.empty and run.kind == "ablation" and run.params and run.scores:
        _ablation_section(page, run)
    elif not run.finished.empty and run.kind == "search":
        _search_section(page, run)
    elif not run.finished.empty and run.kind == "comparison":
        comparison_sections(page, run)
    model_sections(page, run, models)
    add_selection_section(page, run)  # selection.csv's label-free scores (orchestrator/report/selection.py)
    _curves_section(page, run)
    _traversal_section(page, run, models)
    _failed_section(page, run)
    _study_section(page, run)
    return page, header


def _exports_section(page: Page, run: RunData) -> None:
    """Links to the files of ``--export`` when the run folder holds them (RUN_DIR/export)."""
    folder = run.run_dir / EXPORT_DIR
    inside = folder.is_dir() and not folder.is_symlink()
    files = sorted(p for p in folder.iterdir() if held(run.run_dir, p)) if inside else []
    if not files:
        return
    links = " ".join(f'<a href="{esc(EXPORT_DIR + "/" + p.name)}">{esc(p.name)}</a>' for p in files)
    page.section("Exports", '<p class="muted">Written by <code>python -m orchestrator.report RUN_DIR --export</code>: '
                 "tables as LaTeX (booktabs) and CSV, figures as SVG and PDF. Relative links: they open while this "
                 f"report is in its run folder.</p><p>{links}</p>")


def arrange_scores(run: RunData) -> None:
    """The report's order of the final scores (:mod:`orchestrator.report.score_order`): objectives,
    published metrics, the models' own scores; diagnostics and constants set apart. Once per run."""
    if run.diagnostic_scores or run.constant_scores:
        return
    order = order_scores(run.scores, run.objectives, run.finished)
    run.scores, run.diagnostic_scores, run.constant_scores = order.shown, order.diagnostics, order.constant


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
    places = {s: digits(float(board[f"{s} mean"].abs().max())) for s in run.scores}  # one format per column
    for _, r in board.head(MAX_LEADERBOARD).iterrows():
        scores = [Raw(f'<span class="num">{_mean_sd(r[f"{s} mean"], r[f"{s} std"], places[s])}</span>')
                  for s in run.scores]
        rows.append([int(r["rank"]), *[fmt(r[p]) for p in run.params], int(r["seeds"]), *scores, r["trials"]])
    ranked = f"ranked by {objective[0]} ({objective[1]}), " if objective else ""
    caption = (f'<p class="muted">One row per configuration, {ranked}each score the mean ± standard deviation '
               "over seeds (finished trials only; no ± where one seed finished). ★ = the objective.</p>")
    more = (f'<p class="muted">… and {len(board) - MAX_LEADERBOARD} more configurations (results.csv has them '
            "all).</p>" if len(board) > MAX_LEADERBOARD else "")
    return caption + table(headers, rows, ["best"] + [""] * (len(rows) - 1), cls="scores") + more + _set_apart(run)


def _mean_sd(mean: float, sd: float, places: int) -> str:
    if mean != mean:
        return "–"
    return f"{mean:.{places}f}" + (f" ± {sd:.{places}f}" if sd == sd else "")


def _set_apart(run: RunData) -> str:
    """The scores that are not columns or panels: constants (named once, with their value) and a
    model's diagnostics (in its own section)."""
    notes = []
    if run.constant_scores:
        notes.append("Equal in every finished trial, so not plotted: "
                     + ", ".join(f"{k} = {fmt(v)}" for k, v in run.constant_scores.items()) + ".")
    if run.diagnostic_scores:
        notes.append(f"Diagnostics of the model's own training ({', '.join(run.diagnostic_scores)}) are in "
                     "its own section below, not among the scores.")
    return "".join(f'<p class="muted">{esc(n)}</p>' for n in notes)


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
               "compared with it by Welch's two-sided t-test over seeds (unequal variances), a description of each "
               "score; the decisions are the Findings' at the top. Δ = setting mean "
               "− default mean. Holm = p adjusted for testing every setting of that score; bold red where the "
               "adjusted p &lt; 0.05. With 2–3 seeds only large effects can reach significance: a high p "
               "means 'not distinguishable from seed noise', not 'no effect'.</p>")
    if run.meta is not None and run.meta.controls:
        explain += ("<p>Controls (diamonds, '(control)' rows): configurations the study runs beside its grid, "
                    f"every parameter not named at its default; each is tested against {esc(param)}={esc(default)} "
                    "in the same family as the settings.</p>")
    if untestable:
        explain += ('<div class="note">n too small: one finished seed per setting, so no test can separate an '
                    "effect from seed noise. Only the differences are shown; run a preset with at least 2 seeds "
                    "per setting.</div>")
    page.section(f"Ablation: scores against {param}", fig, explain, _set_apart(run),
                 table([param, *run.scores], rows, cls="tests") if rows else "<p>Only one setting finished.</p>")


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
             "configuration. A trial resumed after an interruption is one line: the interrupted trial's "
             "steps up to the checkpoint it continued from, then its own. Curves longer than "
             f"{MAX_CURVE_POINTS} points are thinned evenly for drawing. In-training scores use the monitoring "
             "protocol and are not comparable with the final scores.</p>")
    page.section("Training curves", intro, *[page.figure(f) for _, f in figs])


def _traversal_section(page: Page, run: RunData, models: list[ModelSpec]) -> None:
    shows = gallery(models)  # the title and introduction of the models' images, and their extra images
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
    shown = set()
    for trial, why in picks[:MAX_TRAVERSALS]:
        png = trial_dir(run.run_dir, trial) / TRAVERSAL_FILE
        row = run.results[run.results["trial"] == trial].iloc[0]
        caption = f"trial {trial} ({why}): {config_label(row, run.params)}, seed {row.get('seed', '?')}"
        if run.objectives:
            caption += f", {run.objectives[0][0]} = {fmt(row.get(run.objectives[0][0]))}"
        full = png.relative_to(run.run_dir).as_posix()  # the report lives in the run folder
        blocks.append(image(png, caption, thumb=trial != best, link=full) if held(run.run_dir, png)
                      else f'<div class="note">{esc(caption)}: no traversal.png</div>')
        for extra in shows.extra:
            path = trial_dir(run.run_dir, trial) / extra.file
            if held(run.run_dir, path):
                blocks.append(image(path, f"trial {trial}: {extra.caption}", thumb=trial != best,
                                    link=path.relative_to(run.run_dir).as_posix()))
                shown.add(extra)
    intro = "".join(f'<p class="muted">{esc(text)}</p>' for text in
                    [shows.intro, *[x.explain for x in shows.extra if x in shown and x.explain],
                     "Images are shrunk to the page; click one for the full-size file (while this report "
                     "is in its run folder)."])
    images = f'<div class="gallery">{"".join(blocks)}</div>' if blocks else '<p class="muted">No finished trial.</p>'
    page.section(shows.title, intro if blocks else "", images)


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
