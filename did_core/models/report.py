"""What a model adds to the study report: typed records the report renders, and the view of the
run folder a model reads them from.

A model module may define

- ``report_sections(run: RunView) -> list[ReportSection]``: its own sections (DiD's shortcut
  diagnostics, V3's codebook); called once per report with a view of the run folder; return ``[]``
  when the run holds nothing of yours (e.g. a comparison where your model's trials all failed);
- ``REPORT_IMAGES = ReportImages(...)``: what its ``traversal.png`` is called in the image gallery,
  and the other PNGs each trial writes that the gallery shows beside it (PartedVAE's ``swap.png``).

A section is a title and blocks: :class:`Text`, :class:`Table`, :class:`Figure` (a Plotly figure
as a dict), :class:`Image` (a PNG of the run folder). Every text is escaped by the report; no
HTML goes in. The report (``orchestrator/report/model_parts.py``) places the sections of the
run's models after the study's own analysis, in the order of the run's models, and draws a
section whose hook raises as a note naming the model and the error.

Example:
    >>> def report_sections(run: RunView) -> list[ReportSection]:
    ...     done = run.ranked()
    ...     if done.empty or "recon_error" not in done:
    ...         return []
    ...     rows = [[int(r["trial"]), run.label(r), fmt(r["recon_error"], 3)] for _, r in done.iterrows()]
    ...     return [ReportSection("plain_ae.reconstruction", "Reconstruction",
    ...                           [Text("Mean squared error per pixel, final evaluation."),
    ...                            Table(["trial", "configuration", "error"], rows)])]
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, Union

if TYPE_CHECKING:
    import pandas as pd

TEXT_STYLES = ("plain", "muted", "note", "warning")  # a paragraph, small grey, a yellow box, a red box
KEY = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")


def fmt(x: Any, digits: int = 4) -> str:
    """A number for a table cell: floats to ``digits`` significant digits, a missing value as –."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text (escaped), in one of :data:`TEXT_STYLES`."""

    text: str
    style: str = "muted"

    def __post_init__(self):
        if self.style not in TEXT_STYLES:
            raise ValueError(f"Text.style must be one of {TEXT_STYLES}, got {self.style!r}")


@dataclass(frozen=True)
class Table:
    """A table: header cells and rows of cells (text, or numbers, which are right-aligned)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str | int | float]]

    def __post_init__(self):
        bad = [i for i, row in enumerate(self.rows) if len(row) != len(self.headers)]
        if bad:
            raise ValueError(f"Table: row {bad[0]} has {len(self.rows[bad[0]])} cells for {len(self.headers)} headers")


@dataclass(frozen=True)
class Figure:
    """A Plotly figure as a dict (``{"data": [...], "layout": {...}}``; a ``go.Figure`` works too)."""

    figure: Any


@dataclass(frozen=True)
class Image:
    """A PNG of the run folder (e.g. ``run.trial_file(3, "recon.png")``); one the folder does not hold
    is shown as a note instead."""

    path: Path
    caption: str
    thumb: bool = False


Block = Union[Text, Table, Figure, Image]


@dataclass(frozen=True)
class ReportSection:
    """One section of the report. ``key`` names it for good (``"<model>.<what>"``, lower case),
    so that the report can order and export sections by it; ``title`` is its heading."""

    key: str
    title: str
    blocks: Sequence[Block] = ()

    def __post_init__(self):
        if not KEY.fullmatch(self.key):
            raise ValueError(f"ReportSection.key must be dotted lower-case words (e.g. 'my_vae.recon'), got {self.key!r}")
        if not self.title.strip():
            raise ValueError(f"ReportSection {self.key!r}: empty title")
        bad = [type(b).__name__ for b in self.blocks if not isinstance(b, (Text, Table, Figure, Image))]
        if bad:
            raise ValueError(f"ReportSection {self.key!r}: blocks must be Text, Table, Figure or Image, got {bad}")


@dataclass(frozen=True)
class TrialImage:
    """A PNG each trial of the model writes into its folder (``file``), shown in the image gallery
    after the trial's traversal as ``trial <n>: <caption>``; ``explain`` goes under the gallery's
    introduction once, when any of them is shown."""

    file: str
    caption: str
    explain: str = ""


@dataclass(frozen=True)
class ReportImages:
    """The image gallery of a model's trials: its title and introduction (what ``traversal.png``
    shows), and the other images of each trial."""

    title: str = "Latent traversals"
    intro: str = ("Each row moves one latent dimension across its range with the others fixed: a "
                  "disentangled model changes one factor of the image per row.")
    extra: Sequence[TrialImage] = field(default_factory=tuple)


TRAVERSALS = ReportImages()  # the gallery of a model that declares nothing


class RunView(Protocol):
    """What a model's ``report_sections`` sees of a run folder (the report provides it).

    ``finished`` has one row per finished trial: ``trial``, ``seed``, each parameter by its plain
    name, each final score, and the model's own scores under their names."""

    run_dir: Path
    kind: str  # "ablation" | "search" | "comparison"
    params: list[str]  # the parameters that vary across trials
    scores: list[str]  # the final-score columns
    objectives: list[tuple[str, str]]  # (score, "maximize" | "minimize"), the first one ranks

    @property
    def finished(self) -> pd.DataFrame: ...

    def ranked(self) -> pd.DataFrame:
        """``finished``, best first by the first objective (unranked when there is none)."""

    def label(self, row: pd.Series) -> str:
        """A trial's configuration as text (``n_compare_dims=4``)."""

    def trial_file(self, trial: int, name: str) -> Path | None:
        """``trials/<trial>/<name>`` when the run folder holds it (no link out of it), else None."""

    def trial_config(self, trial: int) -> dict[str, Any] | None:
        """The trial's model config (its ``config.json``), or None when unreadable."""
