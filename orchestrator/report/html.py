"""The HTML around the figures: one page, plotly.js inlined once, images as data URIs, no network.

The page checks itself: it records every JavaScript error (``window.onerror``) and, once loaded,
counts the Plotly figures that drew an SVG, into ``<div id="report-status" data-expected=...
data-rendered=... data-errors=...>``, which a headless browser test reads back.

Example:
    >>> page = Page("my study")
    >>> page.section("Leaderboard", table(["rank", "mig"], [[1, "0.31 ± 0.02"]]))
    >>> Path("report.html").write_text(page.render())
"""
from __future__ import annotations

import base64
import io
import html
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from did_core.models.report import fmt  # one number format for the report and the models' sections
MAX_IMAGE_BYTES = 4 * 2**20  # a traversal grid is tens of kB
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1400px;box-sizing:border-box;padding:0 24px 48px;color:#222}
h1{margin-top:24px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:40px}
table{border-collapse:collapse;margin:8px 0;font-size:14px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}table.scores td{white-space:nowrap}td pre{white-space:pre-wrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#eef7ee}.sig{font-weight:bold;color:#a01010}
.note{background:#fff6e0;border-left:4px solid #e0a000;padding:8px 12px;margin:8px 0}
.bad{background:#fde8e8;border-left:4px solid #c00000;padding:8px 12px;margin:8px 0}
pre{background:#f7f7f7;padding:10px;overflow-x:auto;font-size:13px;max-height:600px}
nav a{margin-right:14px}.gallery{display:flex;flex-wrap:wrap;gap:20px}figure{margin:12px 0;max-width:660px}figure.thumb{max-width:400px}figure img{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}
.muted{color:#666;font-size:13px}#report-status{margin-top:32px;color:#666;font-size:13px}
table{max-width:100%}th{overflow-wrap:break-word}table.tests td{min-width:9em}.num{font-variant-numeric:tabular-nums;white-space:nowrap}
ul.findings{font-size:16px;line-height:1.6;padding-left:22px}li.finding b{color:#7a5a00}
li.finding.effect b{color:#a01010}li.finding.equivalent b{color:#106010}.bad-text{color:#a01010}
details>summary{cursor:pointer;font-weight:600;margin:14px 0 6px}
"""

# Runs before plotly.js so that an error while loading it is caught too.
ERROR_HOOK = """<script>
window.__reportErrors = [];
window.addEventListener('error', function (e) { window.__reportErrors.push(String(e.message || e)); });
window.addEventListener('unhandledrejection', function (e) { window.__reportErrors.push('unhandled promise: ' + String(e.reason)); });
</script>"""

CHECK = """<script>
function __reportCheck() {
  var figs = document.querySelectorAll('.plotly-graph-div'), drawn = 0;
  figs.forEach(function (f) { if (f.querySelector('.main-svg')) drawn += 1; });
  var imgs = document.querySelectorAll('img.report-img'), loaded = 0;
  imgs.forEach(function (i) { if (i.complete && i.naturalWidth > 0) loaded += 1; });
  var el = document.getElementById('report-status');
  el.setAttribute('data-figures', figs.length); el.setAttribute('data-rendered', drawn);
  el.setAttribute('data-images', imgs.length); el.setAttribute('data-images-loaded', loaded);
  el.setAttribute('data-errors', window.__reportErrors.join(' | '));
  el.setAttribute('data-checked', 'yes');
  el.textContent = 'Figures drawn: ' + drawn + ' of ' + el.getAttribute('data-expected') + '. Images shown: ' +
    loaded + ' of ' + imgs.length + '. JavaScript errors: ' +
    (window.__reportErrors.length ? window.__reportErrors.join(' | ') : 'none') + '.';
}
window.addEventListener('load', function () { setTimeout(__reportCheck, 300); });
</script>"""


def esc(x) -> str:
    return html.escape(str(x))


def table(headers: list[str], rows: list[list], row_classes: list[str] | None = None, cls: str = "") -> str:
    """A plain HTML table; cells are escaped unless given as ``Raw``; numbers are right-aligned. A
    header may wrap only after an underscore (``n_compare_<wbr>dims``), never one letter a line above
    a narrow column."""
    head = "".join(f"<th>{esc(h).replace('_', '_<wbr>')}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        row_cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{row_cls}>{''.join(_cell(c) for c in row)}</tr>")
    table_cls = f' class="{cls}"' if cls else ""
    return f"<table{table_cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Raw(str):
    """HTML that must not be escaped."""


def _cell(c) -> str:
    if isinstance(c, Raw):
        return f"<td>{c}</td>"
    if isinstance(c, (int, float)) and not isinstance(c, bool):
        return f'<td class="num">{esc(c)}</td>'
    return f"<td>{esc(c)}</td>"


IMAGE_WIDTH, THUMB_WIDTH = 960, 400  # pixels an embedded image is shrunk to, at most (page width; a gallery tile)


def image(path: Path, caption: str, thumb: bool = False, link: str | None = None) -> str:
    """The PNG file ``path`` inline with its caption, shrunk to the width it is shown at; ``link`` (a
    path relative to the report, e.g. ``trials/3/traversal.png``) makes it open the full-size file
    while the report is in its run folder. A note in its place when it is no PNG or larger than
    :data:`MAX_IMAGE_BYTES` (a run folder someone hands you could hold anything under that name)."""
    with open(path, "rb") as f:
        raw = f.read(MAX_IMAGE_BYTES + 1)
    why = ("larger than " + f"{MAX_IMAGE_BYTES // 2**20} MiB" if len(raw) > MAX_IMAGE_BYTES else
           "not a PNG image" if not raw.startswith(PNG_SIGNATURE) else None)
    if why:
        return f'<div class="note">{esc(caption)}: {esc(Path(path).name)} not shown ({why})</div>'
    data = base64.b64encode(shrunk_png(raw, THUMB_WIDTH if thumb else IMAGE_WIDTH)).decode("ascii")
    img = f'<img class="report-img" alt="{esc(caption)}" src="data:image/png;base64,{data}">'
    if link:
        img = f'<a href="{esc(link)}" title="full size">{img}</a>'
    return f'<figure{" class=thumb" if thumb else ""}>{img}<figcaption>{esc(caption)}</figcaption></figure>'


def shrunk_png(data: bytes, width: int) -> bytes:
    """``data`` (a PNG) at most ``width`` pixels wide, re-encoded only when it is wider."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as im:
        if im.width <= width:
            return data
        small = im.resize((width, max(1, round(im.height * width / im.width))), PILImage.LANCZOS)
        out = io.BytesIO()
        small.save(out, format="PNG", optimize=True)
        return out.getvalue()


class Page:
    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self.n_figures = 0
        self.figures: list[go.Figure | dict] = []  # every figure drawn, in order (the exports use them)

    def section(self, title: str, *blocks: str) -> None:
        anchor = f"s{len(self.toc)}"
        self.toc.append((anchor, title))
        self.parts.append(f'<h2 id="{anchor}">{esc(title)}</h2>' + "".join(blocks))

    def figure(self, fig: go.Figure | dict) -> str:
        """The HTML of one figure (plotly.js itself is on the page once); a dict is taken as already valid."""
        self.n_figures += 1
        self.figures.append(fig)
        height = (fig.get("layout", {}).get("height") if isinstance(fig, dict) else fig.layout.height) or 480
        return pio.to_html(fig, validate=not isinstance(fig, dict), include_plotlyjs=False, full_html=False,
                           div_id=f"fig{self.n_figures}",
                           default_height=f"{height}px", config={"displaylogo": False, "responsive": True})

    def render(self, header: str) -> str:
        nav = " ".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in self.toc)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(self.title)}</title>'
                f"{ERROR_HOOK}<style>{CSS}</style>\n<script>{get_plotlyjs()}</script>\n</head><body>"
                f"<h1>{esc(self.title)}</h1>{header}<nav>{nav}</nav>{''.join(self.parts)}"
                f'<div id="report-status" data-expected="{self.n_figures}">Figures: {self.n_figures} '
                f"(JavaScript has not run: open this file in a browser).</div>{CHECK}</body></html>")
