"""Draw a :class:`~did_core.models.report.ReportSection` into the page: the one renderer of the typed
section records, for the sections the run's models own and for any the report builds itself.

Blocks become HTML in order: :class:`Text` a paragraph (``plain``, ``muted``) or a box (``note``
yellow, ``warning`` red), escaped; :class:`Table` a table (cells escaped, numbers right-aligned);
:class:`Figure` a Plotly figure, validated (``go.Figure``); :class:`Image` an inline PNG if the run
folder holds it, else a note. A section whose blocks cannot be drawn (a figure Plotly refuses)
becomes a note that says why, under the same title; the rest of the report is drawn as usual.

Example:
    >>> section = ReportSection("my_vae.recon", "Reconstruction", [Text("Per pixel."), Table(["trial"], [[3]])])
    >>> render_section(page, run.run_dir, section)
"""
from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from did_core.models.report import Figure, Image, ReportSection, Table, Text

from ..run_folder.layout import held
from .html import Page, esc, image, table

TEXT_HTML = {"plain": "<p>{}</p>", "muted": '<p class="muted">{}</p>', "note": '<div class="note">{}</div>',
             "warning": '<div class="bad">{}</div>'}


def block_html(page: Page, run_dir: Path, block) -> str:
    """One block's HTML (a figure is counted on ``page``)."""
    if isinstance(block, Text):
        return TEXT_HTML[block.style].format(esc(block.text))
    if isinstance(block, Table):
        return table(list(block.headers), [list(row) for row in block.rows])
    if isinstance(block, Figure):
        return page.figure(go.Figure(block.figure))
    if isinstance(block, Image):
        if held(run_dir, Path(block.path)):
            return image(Path(block.path), block.caption, thumb=block.thumb)
        return TEXT_HTML["note"].format(esc(f"{block.caption}: not in the run folder"))
    raise TypeError(f"not a report block: {type(block).__name__}")


def render_section(page: Page, run_dir: Path, section: ReportSection, owner: str = "") -> None:
    """Add ``section`` to ``page``; ``owner`` (a model's name) is named when it cannot be drawn."""
    figures = page.n_figures
    try:
        blocks = [block_html(page, run_dir, b) for b in section.blocks]
    except Exception as e:  # a plugin's figure or table that cannot be drawn must not cost the report
        page.n_figures = figures  # the figures drawn before it are not on the page
        who = f"model {owner!r}: " if owner else ""
        blocks = [TEXT_HTML["note"].format(esc(f"{who}section {section.key!r} cannot be drawn "
                                                f"({type(e).__name__}: {e})"))]
    page.section(section.title, *blocks)
