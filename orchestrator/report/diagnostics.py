"""The report's "Shortcut diagnostics" section, for studies of models that record them (DiD).

One row per finished trial, ranked by the first objective: H's moved-axis accuracy and E's error on
G's images as they are and degraded, the distances from G's samples to the nearest real image and from
real images to the nearest sample, each against the floor of real images, and the plain-language flags of
:func:`did_core.models.did.diagnostics.shortcut_flags`. A box above the table says when a trial
near the top met its objectives through a shortcut.

Example:
    >>> diagnostics_section(page, load_run("runs/did_small_search-quick"))
"""
from __future__ import annotations

import functools
import json

from did_core.models.did.diagnostics import DIAGNOSTICS, shortcut_flags
from did_core.training import CONFIG

from ..run_folder import trial_dir
from .data import RunData
from .html import Page, fmt, table
from .stats import config_label

TOP = 5  # a flag among this many best trials gets the warning box
MAX_ROWS = 40


def _dataset_of(run: RunData, trial: int) -> str | None:
    """The trial's dataset, from its config.json."""
    try:
        return json.loads((trial_dir(run.run_dir, trial) / CONFIG).read_text())["dataset"]
    except (OSError, ValueError, KeyError):
        return None


@functools.lru_cache(maxsize=None)
def _pixels(dataset: str | None) -> int | None:
    """Values per image of ``dataset`` (for the realism flag's margin); built once per name."""
    from did_core.data import get_dataset

    try:
        ds = get_dataset(dataset) if dataset else None  # the procedural source: no file needed
    except ValueError:
        return None
    return ds.num_channels * ds.image_size ** 2 if ds else None


def _n(x) -> str:
    return fmt(x, 3)


def diagnostics_section(page: Page, run: RunData) -> None:
    done = run.finished
    if done.empty or "h_acc_raw" not in done.columns:  # not a model that records them
        return
    if run.objectives:
        score, direction = run.objectives[0]
        if score in done.columns:
            done = done.sort_values(score, ascending=direction == "minimize", na_position="last")
    objective = run.objectives[0][0] if run.objectives else None
    rows, flagged_top = [], []
    for rank, (_, r) in enumerate(done.iterrows()):
        values = {k: float(r[k]) for k in DIAGNOSTICS if k in r and r[k] == r[k]}
        flags = shortcut_flags(values, _pixels(_dataset_of(run, int(r["trial"]))))
        if flags and rank < TOP:
            flagged_top.append(int(r["trial"]))
        if rank < MAX_ROWS:
            rows.append([int(r["trial"]), config_label(r, run.params), int(r["seed"]),
                         _n(r.get(objective)) if objective else "–",
                         f"{_n(values.get('h_acc_raw'))} → {_n(values.get('h_acc_degraded'))} "
                         f"(chance {_n(values.get('h_acc_chance'))})",
                         f"{_n(values.get('e_mse_raw'))} → {_n(values.get('e_mse_degraded'))}",
                         f"{_n(values.get('nn_dist_fake'))} (real {_n(values.get('nn_dist_real'))})",
                         f"{_n(values.get('nn_cover_fake'))} (real {_n(values.get('nn_cover_real'))})",
                         "; ".join(flags) or "none"])
    intro = ('<p class="muted">Does the model meet its objectives through what a real image can show? '
             "H's moved-axis accuracy and E's squared error per latent on G's images, raw → degraded "
             "(binarised for a binary dataset, else 8 grey levels): a skill that dies when the images are "
             "degraded was met through sub-visible detail. Realism: mean distance in pixels from G's "
             "degraded samples to the nearest of 2,048 real images (unrealistic marks), and from 256 real "
             "images to the nearest of 256 samples (data G does not draw), each beside the same for real "
             "images (the floor). Final evaluation of each trial, ranked by the first objective.</p>")
    box = ""
    if flagged_top:
        box = (f'<div class="bad">Among the {TOP} best trials, {len(flagged_top)} met their objectives through a '
               f"shortcut (trials {', '.join(map(str, flagged_top))}): their scores do not show the method "
               "working as intended.</div>")
    headers = ["trial", "configuration", "seed", objective or "objective", "H axis accuracy raw → degraded",
               "E error raw → degraded", "samples to nearest real", "real to nearest sample", "flags"]
    page.section("Shortcut diagnostics", intro, box, table(headers, rows))
