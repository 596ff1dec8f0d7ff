"""V3's part of the study report: what its own scores say, its codebook, and its swap grids.

Shown when the finished trials carry V3's scores (``codebook_accuracy``): one row per trial with
the codebook's purity, the retrieval PR-AUC of content and style codes against digit and colour,
and the swap accuracies; then the atom x digit count matrix of the best trials
(``trials/<n>/codebook.json``, test fragments), as heatmaps. A V3 trial's ``traversal.png`` is a
swap grid: :data:`REPORT_IMAGES` says so in the image gallery.

Example:
    >>> [s.title for s in report_sections(view_of("runs/v3_ablation-quick"))]
    ['Content and style (sequence model)']
"""
from __future__ import annotations

import json

from ..report import Figure, ReportImages, ReportSection, RunView, Table, Text, fmt
from .trainer import CODEBOOK_FILE

MARKER = "codebook_accuracy"  # a run whose trials have this score holds V3's
MAX_ROWS = 40
MAX_MATRICES = 4
COLUMNS = [("codebook_accuracy", "codebook accuracy"), ("codebook_purity", "purity (weighted)"),
           ("codebook_hungarian", "one-to-one"), ("codebook_atoms_used", "atoms used"),
           ("prauc_content_digit", "PR-AUC z_c·digit ↑"), ("prauc_style_colour", "PR-AUC z_s·colour ↑"),
           ("prauc_style_digit", "PR-AUC z_s·digit ↓"), ("prauc_content_colour", "PR-AUC z_c·colour ↓"),
           ("swap_accuracy", "swap"), ("swap_content_accuracy", "swap digit"),
           ("swap_style_accuracy", "swap colour"), ("swap_reader_accuracy", "readers on real")]
INTRO = ("The model's own scores on held-out test fragments (digit instances never seen in "
         "training). Codebook accuracy: mean over the atoms used of the share of the atom's fragments that "
         "show its most frequent digit (the authors' definition; chance about 0.1 with 10 atoms); purity: "
         "the same weighted by atom size; one-to-one: the best matching of atoms to digits. PR-AUC: "
         "nearest-neighbour retrieval among test fragments, high for (content, digit) and (style, colour), "
         "low for the crossed pairs (chance about 0.1 and 0.125). Swap: content of one fragment decoded "
         "with the style of a fragment of another sample, read back by a digit classifier fitted on real "
         "fragments and the nearest palette colour; 'readers on real' is the readers' accuracy on real "
         "fragments, the ceiling. Final evaluation of each trial, ranked by the first objective.")
REPORT_IMAGES = ReportImages(
    title="Swap grids",
    intro=("Top row: fragments of test samples, one per colour (their style is used); left column: the "
           "fragments of one test sample in digit order (their content is used). Each other cell decodes "
           "that row's content code with that column's style code: a disentangled model draws the row's "
           "digit in the column's colour."))


def _codebook(run: RunView, trial: int) -> dict | None:
    path = run.trial_file(trial, CODEBOOK_FILE)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
        counts = data["counts"]
        if not (isinstance(counts, list) and all(isinstance(r, list) for r in counts)):
            return None
        return data
    except (OSError, ValueError, KeyError):
        return None


def codebook_figure(counts: list[list[int]], title: str) -> dict:
    """Heatmap of atoms (rows) x digits (columns); each cell the count, coloured by the row's share."""
    shares = [[c / max(sum(row), 1) for c in row] for row in counts]
    heatmap = {"type": "heatmap", "z": shares, "text": counts, "texttemplate": "%{text}", "colorscale": "Blues",
               "zmin": 0, "zmax": 1, "x": [str(d) for d in range(len(counts[0]) if counts else 0)],
               "y": [f"atom {k}" for k in range(len(counts))], "colorbar": {"title": {"text": "row share"}},
               "hovertemplate": "%{y}, digit %{x}: %{text} fragments<extra></extra>"}
    layout = {"title": {"text": title}, "xaxis": {"title": {"text": "digit"}}, "yaxis": {"autorange": "reversed"},
              "height": 420, "margin": {"l": 70, "r": 20, "t": 50, "b": 40}}
    return {"data": [heatmap], "layout": layout}


def report_sections(run: RunView) -> list[ReportSection]:
    done = run.ranked()
    if done.empty or MARKER not in done.columns:
        return []
    shown = [(k, label) for k, label in COLUMNS if k in done.columns]
    rows = [[int(r["trial"]), run.label(r), int(r["seed"]), *[fmt(r.get(k), 3) for k, _ in shown]]
            for _, r in done.head(MAX_ROWS).iterrows()]
    blocks = [Text(INTRO), Table(["trial", "configuration", "seed", *[label for _, label in shown]], rows)]
    for _, r in done.head(MAX_MATRICES).iterrows():
        trial = int(r["trial"])
        data = _codebook(run, trial)
        if data is None:
            blocks.append(Text(f"trial {trial}: no codebook.json", style="note"))
            continue
        kind = "codebook atoms" if data.get("quantized", True) else "k-means clusters of z_c (no quantisation)"
        title = (f"trial {trial} ({run.label(r)}, seed {int(r['seed'])}): {kind} x digits, "
                 f"codebook accuracy {fmt(r.get(MARKER), 3)}")
        blocks.append(Figure(codebook_figure(data["counts"], title)))
    return [ReportSection("v3.content_and_style", "Content and style (sequence model)", blocks)]
