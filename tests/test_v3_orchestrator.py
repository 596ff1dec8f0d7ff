"""The built-in ``v3_ablation`` study at its smoke preset, end to end: the study file -> Optuna's
grid -> Ray Tune trials -> V3's ``train`` -> results.csv with V3's own scores, the trial folders
(swap grid, codebook matrix) and the report's sequence-model sections. Real Ray, real Optuna."""
import json

import numpy as np
import pandas as pd

from orchestrator.study import run_study

SETTINGS = ["hinge_across", "hinge_content", "hinge_style", "hinge_within", "none", "quantize"]


def test_v3_ablation_smoke_runs_through_ray_and_optuna(tmp_path):
    run = run_study("v3_ablation", preset="smoke", out=tmp_path / "run", log=lambda *a: None)
    assert not run.interrupted
    df = pd.read_csv(tmp_path / "run" / "results.csv")
    assert (df["status"] == "COMPLETE").all(), df[["trial", "error"]].to_dict("records")
    assert sorted(df["params_ablate"]) == SETTINGS and (df["step"] == 20).all()
    for score in ("codebook_accuracy", "codebook_atoms_used", "prauc_content_digit", "prauc_style_colour",
                  "swap_accuracy", "mig", "sap"):
        assert np.isfinite(df[score]).all(), score
    assert ((df["codebook_accuracy"] > 0) & (df["codebook_accuracy"] <= 1)).all()
    for _, row in df.iterrows():
        trial = tmp_path / "run" / "trials" / str(row["trial"])
        config = json.loads((trial / "config.json").read_text())
        assert config["ablate"] == row["params_ablate"]
        codebook = json.loads((trial / "codebook.json").read_text())
        assert codebook["quantized"] == (row["params_ablate"] != "quantize")
        assert (trial / "traversal.png").is_file()

    html = (tmp_path / "run" / "report.html").read_text()
    assert "Content and style (sequence model)" in html and "Swap grids" in html
    assert "codebook atoms x digits" in html
    assert "Ablation: scores against ablate" in html
