"""DiD's section of the study report: "Shortcut diagnostics", for runs whose trials record them.

One row per finished trial, ranked by the first objective: H's moved-axis accuracy and E's error on
G's images as they are and degraded, the distances from G's samples to the nearest real image and from
real images to the nearest sample, each against the floor of real images, and the plain-language flags of
:func:`~did_core.models.did.diagnostics.shortcut_flags`. A box above the table says when a trial
near the top met its objectives through a shortcut.

Example:
    >>> [s.title for s in report_sections(view_of("runs/did_small_search-quick"))]
    ['Shortcut diagnostics']
"""
from __future__ import annotations

import functools

from ..report import Figure, ReportSection, RunView, Table, Text, fmt
from .diagnostics import DIAGNOSTICS, shortcut_flags

TOP = 5  # a flag among this many best trials gets the warning box
MAX_ROWS = 40
INTRO = ("Does the model meet its objectives through what a real image can show? "
         "H's moved-axis accuracy and E's squared error per latent on G's images, raw → degraded "
         "(binarised for a binary dataset, else 8 grey levels): a skill that dies when the images are "
         "degraded was met through sub-visible detail. Realism: mean distance in pixels from G's "
         "degraded samples to the nearest of 2,048 real images (unrealistic marks), and from 256 real "
         "images to the nearest of 256 samples (data G does not draw), each beside the same for real "
         "images (the floor). Final evaluation of each trial, ranked by the first objective.")


@functools.lru_cache(maxsize=None)
def _pixels(dataset: str | None) -> int | None:
    """Values per image of a registered ``dataset`` (for the realism flag's margin); built once per
    name. A file a run folder names (``file:PATH``) is never opened for a report."""
    from ...data import FILE_PREFIX, get_dataset

    if not dataset or dataset.startswith(FILE_PREFIX):
        return None
    try:
        ds = get_dataset(dataset)  # the procedural source: no file needed
    except ValueError:
        return None
    return ds.num_channels * ds.image_size ** 2


def _n(x) -> str:
    return fmt(x, 3)


def report_sections(run: RunView) -> list[ReportSection]:
    done = run.ranked()
    if done.empty or "h_acc_raw" not in done.columns:  # no trial recorded them
        return []
    objective = run.objectives[0][0] if run.objectives else None
    rows, flagged_top = [], []
    for rank, (_, r) in enumerate(done.iterrows()):
        values = {k: float(r[k]) for k in DIAGNOSTICS if k in r and r[k] == r[k]}
        config = run.trial_config(int(r["trial"])) or {}
        flags = shortcut_flags(values, _pixels(config.get("dataset")))
        if flags and rank < TOP:
            flagged_top.append(int(r["trial"]))
        if rank < MAX_ROWS:
            rows.append([int(r["trial"]), run.label(r), int(r["seed"]),
                         _n(r.get(objective)) if objective else "–",
                         f"{_n(values.get('h_acc_raw'))} → {_n(values.get('h_acc_degraded'))} "
                         f"(chance {_n(values.get('h_acc_chance'))})",
                         f"{_n(values.get('e_mse_raw'))} → {_n(values.get('e_mse_degraded'))}",
                         f"{_n(values.get('nn_dist_fake'))} (real {_n(values.get('nn_dist_real'))})",
                         f"{_n(values.get('nn_cover_fake'))} (real {_n(values.get('nn_cover_real'))})",
                         "; ".join(flags) or "none"])
    blocks = [Text(INTRO)]
    if flagged_top:
        blocks.append(Text(f"Among the {TOP} best trials, {len(flagged_top)} met their objectives through a "
                           f"shortcut (trials {', '.join(map(str, flagged_top))}): their scores do not show the "
                           "method working as intended.", style="warning"))
    headers = ["trial", "configuration", "seed", objective or "objective", "H axis accuracy raw → degraded",
               "E error raw → degraded", "samples to nearest real", "real to nearest sample", "flags"]
    blocks.append(Table(headers, rows))
    labels = [f"trial {int(r['trial'])}" for _, r in done.head(MAX_ROWS).iterrows()]
    column = lambda k: [float(r[k]) if k in r and r[k] == r[k] else None for _, r in done.head(MAX_ROWS).iterrows()]
    blocks.append(Figure(_against_floor(
        "Realism: mean distance (pixels) from G's samples to the nearest real image", labels,
        {"samples to nearest real": column("nn_dist_fake"), "real to nearest sample": column("nn_cover_fake")},
        floors={"real to nearest real (floor)": column("nn_dist_real")})))
    blocks.append(Figure(_against_floor(
        "H's moved-axis accuracy on G's images, raw and degraded", labels,
        {"raw": column("h_acc_raw"), "degraded": column("h_acc_degraded")},
        floors={"chance": column("h_acc_chance")})))
    return [ReportSection("did.shortcut_diagnostics", "Shortcut diagnostics", blocks)]


def _against_floor(title: str, labels: list[str], series: dict[str, list], floors: dict[str, list]) -> dict:
    """A Plotly figure (as a dict): each series a marker per trial, each floor a dashed reference line
    at its mean over the trials (a floor is a property of the data, not of a trial)."""
    data = [{"type": "scatter", "mode": "markers", "name": name, "x": labels, "y": ys, "marker": {"size": 9}}
            for name, ys in series.items()]
    shapes, notes = [], []
    for name, ys in floors.items():
        values = [y for y in ys if y is not None]
        if not values:
            continue
        level = sum(values) / len(values)
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": level, "y1": level,
                       "line": {"dash": "dash", "color": "#555"}})
        notes.append({"xref": "paper", "x": 1, "y": level, "xanchor": "right", "yanchor": "bottom",
                      "text": f"{name}: {level:.3g}", "showarrow": False, "font": {"color": "#555"}})
    return {"data": data, "layout": {"title": {"text": title}, "shapes": shapes, "annotations": notes,
                                     "height": 360, "template": "plotly_white", "xaxis": {"type": "category"}}}
