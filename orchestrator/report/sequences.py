"""The report's sections for a sequence model (V3): what its own scores say, and its codebook.

Shown when the finished trials carry V3's scores (``codebook_accuracy``): one row per trial with
the codebook's purity, the retrieval PR-AUC of content and style codes against digit and colour,
and the swap accuracies; then the atom x digit count matrix of the best trials
(``trials/<n>/codebook.json``, test fragments), as heatmaps. The swap grids themselves are the
``traversal.png`` of those trials, in the traversal section (:func:`traversal_text` gives its words).

Example:
    >>> sequence_section(page, load_run("runs/v3_ablation-quick"))
"""
from __future__ import annotations

import json

import plotly.graph_objects as go

from did_core.models.v3.trainer import CODEBOOK_FILE

from ..run_folder import held, trial_dir
from .data import RunData
from .html import Page, esc, fmt, table
from .stats import config_label

MARKER = "codebook_accuracy"  # a run whose trials have this score is a sequence model's
MAX_ROWS = 40
MAX_MATRICES = 4
COLUMNS = [("codebook_accuracy", "codebook accuracy"), ("codebook_purity", "purity (weighted)"),
           ("codebook_hungarian", "one-to-one"), ("codebook_atoms_used", "atoms used"),
           ("prauc_content_digit", "PR-AUC z_c·digit ↑"), ("prauc_style_colour", "PR-AUC z_s·colour ↑"),
           ("prauc_style_digit", "PR-AUC z_s·digit ↓"), ("prauc_content_colour", "PR-AUC z_c·colour ↓"),
           ("swap_accuracy", "swap"), ("swap_content_accuracy", "swap digit"),
           ("swap_style_accuracy", "swap colour"), ("swap_reader_accuracy", "readers on real")]


def is_sequence_run(run: RunData) -> bool:
    return not run.finished.empty and MARKER in run.finished.columns


def traversal_text(run: RunData) -> tuple[str, str]:
    """(section title, intro) of the image section: latent traversals, or a sequence model's swap grids."""
    if is_sequence_run(run):
        return "Swap grids", ('<p class="muted">Top row: fragments of test samples, one per colour (their '
                              "style is used); left column: the fragments of one test sample in digit order "
                              "(their content is used). Each other cell decodes that row's content code with "
                              "that column's style code: a disentangled model draws the row's digit in the "
                              "column's colour.</p>")
    return "Latent traversals", ('<p class="muted">Each row moves one latent dimension across its range with the '
                                 "others fixed: a disentangled model changes one factor of the image per row.</p>")


def _ranked(run: RunData):
    done = run.finished
    if run.objectives and run.objectives[0][0] in done.columns:
        score, direction = run.objectives[0]
        done = done.sort_values(score, ascending=direction == "minimize", na_position="last")
    return done


def _codebook(run: RunData, trial: int) -> dict | None:
    path = trial_dir(run.run_dir, trial) / CODEBOOK_FILE
    if not held(run.run_dir, path):
        return None
    try:
        data = json.loads(path.read_text())
        counts = data["counts"]
        if not (isinstance(counts, list) and all(isinstance(r, list) for r in counts)):
            return None
        return data
    except (OSError, ValueError, KeyError):
        return None


def codebook_figure(counts: list[list[int]], title: str) -> go.Figure:
    """Heatmap of atoms (rows) x digits (columns); each cell the count, coloured by the row's share."""
    shares = [[c / max(sum(row), 1) for c in row] for row in counts]
    fig = go.Figure(go.Heatmap(z=shares, text=counts, texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=1,
                               x=[str(d) for d in range(len(counts[0]) if counts else 0)],
                               y=[f"atom {k}" for k in range(len(counts))], colorbar={"title": "row share"},
                               hovertemplate="%{y}, digit %{x}: %{text} fragments<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="digit", yaxis_autorange="reversed", height=420,
                      margin={"l": 70, "r": 20, "t": 50, "b": 40})
    return fig


def sequence_section(page: Page, run: RunData) -> None:
    if not is_sequence_run(run):
        return
    done = _ranked(run)
    shown = [(k, label) for k, label in COLUMNS if k in done.columns]
    rows = [[int(r["trial"]), config_label(r, run.params), int(r["seed"]), *[fmt(r.get(k), 3) for k, _ in shown]]
            for _, r in done.head(MAX_ROWS).iterrows()]
    intro = ('<p class="muted">The model\'s own scores on held-out test fragments (digit instances never seen in '
             "training). Codebook accuracy: mean over the atoms used of the share of the atom's fragments that "
             "show its most frequent digit (the authors' definition; chance about 0.1 with 10 atoms); purity: "
             "the same weighted by atom size; one-to-one: the best matching of atoms to digits. PR-AUC: "
             "nearest-neighbour retrieval among test fragments, high for (content, digit) and (style, colour), "
             "low for the crossed pairs (chance about 0.1 and 0.125). Swap: content of one fragment decoded "
             "with the style of a fragment of another sample, read back by a digit classifier fitted on real "
             "fragments and the nearest palette colour; 'readers on real' is the readers' accuracy on real "
             "fragments, the ceiling. Final evaluation of each trial, ranked by the first objective.</p>")
    blocks = [intro, table(["trial", "configuration", "seed", *[label for _, label in shown]], rows)]
    for _, r in done.head(MAX_MATRICES).iterrows():
        trial = int(r["trial"])
        data = _codebook(run, trial)
        if data is None:
            blocks.append(f'<div class="note">trial {trial}: no codebook.json</div>')
            continue
        kind = "codebook atoms" if data.get("quantized", True) else "k-means clusters of z_c (no quantisation)"
        title = (f"trial {trial} ({config_label(r, run.params)}, seed {int(r['seed'])}): {kind} x digits, "
                 f"codebook accuracy {fmt(r.get(MARKER), 3)}")
        blocks.append(page.figure(codebook_figure(data["counts"], title)))
    page.section("Content and style (sequence model)", *blocks)
