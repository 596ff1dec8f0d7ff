"""The example plugin (examples/ae_plugin) installed with pip, offline, into a folder of its own on
PYTHONPATH (importlib.metadata reads any sys.path entry; Ray's workers inherit PYTHONPATH): the
commands list it, and its study runs end to end (real Ray local cluster, Optuna, its model on its
dataset, its own score, its own report section)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "ae_plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a command that sees the installed plugin."""
    tmp = tmp_path_factory.mktemp("ae_plugin")
    source = shutil.copytree(EXAMPLE, tmp / "src")  # pip's build leaves files beside the source: not in the repo
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(tmp / "site"), str(source)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (tmp / "site" / "did_ae_plugin" / "tiny_bars.npz").is_file()  # its data file came along
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp / "site"), os.environ["PYTHONPATH"]])}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_commands_list_the_plugin(plugin_env):
    p = run(["orchestrator.study", "--list"], plugin_env)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = {line.split()[0]: line for line in p.stdout.splitlines() if line.startswith("  ")}
    assert lines["plain_ae"].endswith("[did-ae-plugin 0.1.0]") and "plain autoencoder" in lines["plain_ae"]
    assert lines["tiny_bars"].endswith("sources: file  [did-ae-plugin 0.1.0]")
    assert lines["ae_recon_error"].endswith("scores: ae_recon_error  [did-ae-plugin 0.1.0]")
    assert lines["did"].endswith("[did-orchestrator]")
    p = run(["did_core.train", "--help"], plugin_env)
    assert p.returncode == 0 and "plain_ae (did-ae-plugin 0.1.0)" in " ".join(p.stdout.split())


def test_the_plugins_study_runs_end_to_end(plugin_env, tmp_path):
    out = tmp_path / "run"
    p = run(["orchestrator.study", str(EXAMPLE / "studies" / "ae_smoke.yaml"), "--preset", "smoke", "--out", str(out)],
            plugin_env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    df = pd.read_csv(out / "results.csv")
    assert (df["status"] == "COMPLETE").all() and sorted(df["params_latent_dim"]) == [2, 4], df.to_string()
    assert df["ae_recon_error"].between(0, 1).all() and df["mig"].between(0, 1).all()
    curves = pd.read_csv(out / "curves.csv")
    assert {"loss/reconstruction", "fast/mig", "fast/ae_recon_error"} <= set(curves["name"])
    for trial in df["trial"]:
        assert {"checkpoint.pt", "traversal.png", "recon.png"} <= {f.name for f in (out / "trials" / str(trial)).iterdir()}
    html = (out / "report.html").read_text()
    section = html[html.index(">Reconstructions (plain autoencoder)</h2>"):html.index(">Training curves</h2>")]
    assert "<th>reconstruction error</th>" in section and section.count("plotly-graph-div") == 1
    assert "images (top) and their reconstructions (bottom)" in section and 'class="report-img"' in section
    assert "Ablation: scores against latent_dim" in html and "not registered here" not in html
