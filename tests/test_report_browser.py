"""Open generated reports in a real headless Chromium: no JavaScript error, every figure drawn.

The report records its own JavaScript errors and counts its drawn figures into
``#report-status`` (orchestrator/report/html.py); Chromium's ``--dump-dom`` gives the page after
its scripts ran. Screenshots are kept in runs/test-artifacts/. CI installs Chromium with
.ci/install_chromium.sh; without it these tests are skipped.
"""
from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "runs" / "test-artifacts"
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (install it: .ci/install_chromium.sh)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=20000"]


def chromium(page: Path, profile: Path, *extra: str) -> str:
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def page_status(page: Path, profile: Path, screenshot: str | None = None) -> dict[str, str]:
    """The attributes of #report-status after the page's scripts ran; with ``screenshot``, the page
    is also saved as runs/test-artifacts/<screenshot> (one Chromium run does both)."""
    extra = ["--dump-dom"]
    if screenshot:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / screenshot
        shot.unlink(missing_ok=True)
        extra += [f"--screenshot={shot}", "--window-size=1400,4000"]
    dom = chromium(page, profile, *extra)
    if screenshot:
        assert shot.exists() and shot.stat().st_size > 50_000, f"no screenshot at {shot}"
    tag = re.search(r'<div id="report-status"([^>]*)>', dom)
    assert tag, "no #report-status in the rendered page"
    return {k: html.unescape(v) for k, v in re.findall(r'(data-[\w-]+)="([^"]*)"', tag.group(1))}


@pytest.mark.parametrize("kind", ["ablation", "search"])
def test_report_renders_in_chromium(kind, tmp_path, request):
    run_dir = request.getfixturevalue(f"toy_{kind}")  # written by run_study with the toy model (conftest.py)
    status = page_status(run_dir / "report.html", tmp_path / "profile", screenshot=f"report_{kind}.png")
    assert status["data-checked"] == "yes", "the page's check script never ran"
    assert status["data-errors"] == ""
    assert int(status["data-expected"]) >= 3
    assert status["data-figures"] == status["data-rendered"] == status["data-expected"]
    assert int(status["data-images"]) >= 1 and status["data-images-loaded"] == status["data-images"]


def test_report_without_finished_trials_renders(tmp_path, toy_all_fail):
    status = page_status(toy_all_fail / "report.html", tmp_path / "profile")
    assert status["data-checked"] == "yes" and status["data-errors"] == ""
    assert status["data-figures"] == status["data-rendered"] == status["data-expected"]


def test_the_check_sees_a_javascript_error_and_an_undrawn_figure(tmp_path, toy_ablation):
    broken = tmp_path / "broken.html"
    text = (toy_ablation / "report.html").read_text()
    # break the first figure's data and add a script that throws
    text, n = re.subn(r'Plotly\.newPlot\(\s*"fig1"', 'Plotly.newPlot("no-such-div"', text, count=1)
    assert n == 1
    text = text.replace("</body>", "<script>throw new Error('injected failure');</script></body>")
    broken.write_text(text)
    status = page_status(broken, tmp_path / "profile")
    assert "injected failure" in status["data-errors"]
    assert int(status["data-rendered"]) == int(status["data-expected"]) - 1
