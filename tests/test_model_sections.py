"""Model-owned report parts (did_core/models/report.py): the report draws the ReportSection records
a run's models return and the gallery images they declare, escaped and only from the run folder;
a hook or figure that fails is a note naming the model, never a lost report; orchestrator/ imports
no model's module."""
from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image as PILImage

from did_core.models import BUILT_IN_MODELS
from did_core.models.report import Figure, Image, ReportImages, ReportSection, Table, Text, TrialImage
from orchestrator.report import build_report
from toy import TOY

ROOT = Path(__file__).resolve().parent.parent


def sections(run):
    done = run.ranked()
    rows = [[int(r["trial"]), run.label(r), round(float(r["mig"]), 3)] for _, r in done.iterrows()]
    best = int(done["trial"].iloc[0])
    return [ReportSection("toy.own", "Toy's own section", [
        Text("<script>alert('x')</script> is text", style="warning"),
        Table(["trial", "configuration", "mig"], rows),
        Figure({"data": [{"type": "bar", "x": [r[0] for r in rows], "y": [r[2] for r in rows]}],
                "layout": {"height": 300}}),
        Image(run.trial_file(best, "traversal.png"), f"trial {best}: the toy's picture"),
        Image(Path("/etc/hostname"), "a file outside the run folder"),
    ]), ReportSection("toy.broken_figure", "Toy's broken figure", [Figure({"data": [{"type": "no_such_trace"}]})])]


def failing(run):
    raise RuntimeError("the hook broke")


@pytest.fixture
def run_dir(toy_ablation, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(toy_ablation, copy)
    for trial in (copy / "trials").iterdir():  # a picture of its own beside each traversal
        PILImage.new("L", (16, 16), 200).save(trial / "extra.png")
    return copy


def test_the_report_draws_a_models_sections_and_gallery(run_dir):
    images = ReportImages(title="Toy pictures", intro="What the toy draws.",
                          extra=(TrialImage("extra.png", "extra picture", explain="The extra picture is grey."),))
    spec = dataclasses.replace(TOY, report_sections=sections, report_images=images)
    page = build_report(run_dir, models=[spec]).read_text()
    own = page[page.index(">Toy&#x27;s own section</h2>"):page.index(">Training curves</h2>")]
    assert '<div class="bad">&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; is text</div>' in own
    assert "<th>configuration</th>" in own and "<td>x=0.3</td>" in own and '<td class="num">0</td>' in own
    assert own.count("plotly-graph-div") == 1 and own.count('class="report-img"') == 1
    assert "a file outside the run folder: not in the run folder" in own
    assert ("model &#x27;toy&#x27;: section &#x27;toy.broken_figure&#x27; cannot be drawn (ValueError" in own)
    expected = int(re.search(r'data-expected="(\d+)"', page).group(1))
    assert expected == page.count('class="plotly-graph-div')  # the refused figure is not counted
    start = page.index(">Toy pictures</h2>")
    gallery = page[start:page.index(">Failed trials", start)]
    assert "What the toy draws." in gallery and "The extra picture is grey." in gallery
    pictures = gallery.count(": extra picture</figcaption>")  # one after each trial's traversal
    assert pictures >= 2 and gallery.count("<figure") == 2 * pictures


def test_a_hook_that_fails_is_a_note_naming_the_model(run_dir):
    page = build_report(run_dir, models=[dataclasses.replace(TOY, report_sections=failing)]).read_text()
    assert ("model &#x27;toy&#x27; (did-orchestrator): report_sections failed (RuntimeError: the hook broke)" in page)
    assert ">Latent traversals</h2>" in page and ">Leaderboard</h2>" in page  # the rest as usual


def test_a_model_the_report_cannot_find_is_said(run_dir):
    page = build_report(run_dir).read_text()  # 'toy' is not registered in this process
    assert "model &#x27;toy&#x27; is not registered here (not installed?)" in page


def test_a_section_record_is_checked_when_made():
    with pytest.raises(ValueError, match="key must be dotted lower-case words"):
        ReportSection("My Section", "x")
    with pytest.raises(ValueError, match=r"blocks must be Text, Table, Figure or Image, got \['str'\]"):
        ReportSection("toy.x", "x", ["<b>html</b>"])
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 headers"):
        Table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="Text.style must be one of"):
        Text("x", style="bold")


def test_orchestrator_imports_no_model_module():
    """The acceptance check `grep -rn "did_core.models\\.\\(did\\|v3\\|parted_vae\\)" orchestrator/`, for every model."""
    pattern = re.compile(r"did_core\.models\.(%s)\b" % "|".join(BUILT_IN_MODELS))
    hits = [f"{p}:{n}" for p in (ROOT / "orchestrator").rglob("*.py")
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
