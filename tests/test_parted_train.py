"""PartedVAE trains through the model registry: events, losses, run files (traversal and swap grid),
its own scores, exact resume; and the built-in study ``parted_labels --preset smoke`` end to end
through the study command (Ray Tune, Optuna, results, report)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from did_core.metrics.protocols import PROTOCOLS, replace
from did_core.metrics.registry import directions
from did_core.models.parted_vae import Config, train
from test_did_train import assert_same_checkpoints

ROOT = Path(__file__).resolve().parent.parent
TINY_PROTOCOL = replace("fast", name="tiny", num_train=400, num_test=200, dci_n_estimators=5)
TINY = dict(steps=4, log_every=2, eval_every=0, batch_size=8, labelled_batch_size=8, n_labelled=50, seed=3,
            eval_protocol="tiny", final_protocol="tiny", eval_metrics="mig", score_rows=300, swap_pairs=60)
LOSSES = {"supervised", "reconstruction", "kl_z", "kl_u", "kl_c_marginal", "entropy_c", "bc_penalty", "loss"}
OWN = {"class_accuracy", "class_accuracy_matched", "prior_overlap", "swap_accuracy"}


@pytest.fixture(autouse=True)
def small_and_single_threaded(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setitem(PROTOCOLS, "tiny", TINY_PROTOCOL)


def test_trains_and_writes_its_run_files(tmp_path):
    events = list(train(Config.from_preset("smoke", **TINY), out_dir=tmp_path))
    assert [(e.kind, e.step) for e in events] == [("progress", 2), ("progress", 4), ("final", 4)]
    assert set(events[0].losses) == LOSSES and all(np.isfinite(list(events[0].losses.values())))
    # an untrained c head guesses: cross-entropy near ln 3, entropy of q(c|x) near ln 3
    assert abs(events[0].losses["supervised"] - math.log(3)) < 0.1
    assert abs(events[0].losses["entropy_c"] - math.log(3)) < 0.1
    final = events[-1]
    assert OWN <= set(final.scores) and "mig" in final.scores
    assert all(directions()[k] for k in OWN)  # registered with their directions
    assert 0.0 <= final.scores["prior_overlap"] <= 1.0
    assert set(final.artifacts) >= {"checkpoint", "scores", "config", "traversal", "swap"}
    # 5 z rows + 1 u row of 10 traversal steps; the swap grid 7 x 7 (a header row and column)
    w, h = Image.open(tmp_path / "traversal.png").size
    assert h == 2 + 6 * 66 and w > 2 + 10 * 66  # row labels on the left
    assert Image.open(tmp_path / "swap.png").size == (2 + 7 * 66, 2 + 7 * 66)
    assert json.loads((tmp_path / "scores.json").read_text())["model"] == "parted_vae"


def test_without_labels_there_is_no_supervised_step(tmp_path):
    events = list(train(Config.from_preset("smoke", **{**TINY, "n_labelled": 0, "prior": "standard",
                                                       "attention": False})))
    assert set(events[0].losses) == LOSSES - {"supervised"}
    assert events[-1].scores["prior_overlap"] == pytest.approx(1.0)  # N(0, I) for every class


def test_interrupted_run_resumes_to_the_same_numbers(tmp_path):
    cfg = Config.from_preset("smoke", **{**TINY, "steps": 6, "log_every": 1, "eval_every": 3})
    straight = list(train(cfg, out_dir=tmp_path / "a"))
    for event in train(cfg, out_dir=tmp_path / "b"):
        if event.kind == "eval":
            break  # interrupted right after the checkpoint at step 3
    resumed = list(train(cfg, out_dir=tmp_path / "b"))
    assert [e.step for e in resumed if e.kind == "progress"] == [4, 5, 6]
    tail = [e for e in straight if e.kind == "progress" and e.step > 3]
    assert [e.losses for e in resumed if e.kind == "progress"] == [e.losses for e in tail]
    assert resumed[-1].scores == straight[-1].scores
    assert_same_checkpoints(tmp_path / "a" / "checkpoint.pt", tmp_path / "b" / "checkpoint.pt", step=6)


def test_resume_refuses_a_different_experiment(tmp_path):
    cfg = Config.from_preset("smoke", **TINY)
    list(train(cfg, out_dir=tmp_path))
    with pytest.raises(Exception, match=r"different experiment.*n_labelled: 50 -> 100"):
        list(train(cfg.replace(n_labelled=100), out_dir=tmp_path))


def test_parted_labels_smoke_end_to_end(tmp_path):
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "orchestrator.study", "parted_labels", "--preset", "smoke",
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 2 and (df["status"] == "COMPLETE").all(), df.to_string()
    assert sorted(df["params_n_labelled"]) == [0, 100]
    assert OWN <= set(df) and all(0.0 <= v <= 1.0 for v in df["class_accuracy"])
    assert all(0.0 <= v <= 1.0 for v in df["mig"])
    curves = pd.read_csv(out / "curves.csv")
    assert {"fast/class_accuracy", "fast/mig", "loss/kl_u"} <= set(curves["name"])
    assert "loss/supervised" in set(curves[curves["trial"] == int(df.loc[df["params_n_labelled"] == 100, "trial"].iloc[0])]["name"])
    for trial in df["trial"]:
        assert (out / "trials" / str(trial) / "swap.png").exists()
    html = (out / "report.html").read_text()
    assert "class_accuracy" in html and html.count("<figcaption>trial 0: swap grid") == 1
    assert "best configuration (by class_accuracy): n_labelled=" in p.stdout
