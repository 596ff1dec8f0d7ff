"""Each VAE baseline trains a few CPU steps through the orchestrator: study file -> Optuna -> Ray
Tune trainable -> the model's ``train`` -> results.csv, curves.csv and the trial folder; and a
comparison (`arms`) runs each arm's grid on each dataset and reports Table 1 and Figure 2.

The trials are scored with a small protocol ("tiny", registered in every Ray worker by a setup
hook): the registered ``fast`` protocol spends minutes per evaluation on 2 CPU cores, and these
tests check the plumbing, not the scores.
"""
import json
import sys

import pandas as pd
import pytest
import ray
from ray import cloudpickle

from orchestrator.study import run_study

STUDY = """
name: {model}_through_orchestrator
model: {model}
dataset: dsprites
fixed: {{steps: 3, batch_size: 8, log_every: 1}}
search:
  sampler: grid
  space:
    {param}: {{type: float, low: 1, high: 100, values: [{value}]}}
seeds: [5]
objectives: [{{metric: mig}}]
evaluation: {{protocol: {protocol}, interval: 0, final_protocol: {protocol}}}
resources: {{cpus: 1, gpus: 0}}
"""
CASES = [("beta_vae", "beta", 16.0), ("beta_tcvae", "beta", 10.0), ("factor_vae", "gamma", 100.0)]
PROTOCOL = "tiny"


def register_tiny_protocol():
    from did_core.metrics.protocols import PROTOCOLS, replace

    PROTOCOLS["tiny"] = replace("fast", name="tiny", num_train=400, num_test=200, dci_n_estimators=5,
                                factor_vae_batch_size=16, factor_vae_num_variance=400, factor_vae_num_train=20,
                                factor_vae_num_eval=10, beta_vae_batch_size=8, beta_vae_num_train=20,
                                beta_vae_num_eval=10)


@pytest.fixture(scope="module")
def local_ray():
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the hook travels to the workers by value
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             runtime_env={"worker_process_setup_hook": register_tiny_protocol})
    yield
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.parametrize("model, param, value", CASES)
def test_baseline_trains_through_the_orchestrator(local_ray, tmp_path, model, param, value):
    path = tmp_path / f"{model}.yaml"
    path.write_text(STUDY.format(model=model, param=param, value=value, protocol=PROTOCOL))
    run = run_study(path, preset="smoke", out=tmp_path / "run", log=lambda *a: None)

    df = pd.read_csv(tmp_path / "run" / "results.csv")
    assert len(df) == 1, df.to_dict("records")
    row = df.iloc[0]
    assert row["status"] == "COMPLETE", row["error"]
    assert row["seed"] == 5 and row[f"params_{param}"] == value and row["step"] == 3
    assert 0.0 <= row["mig"] <= 1.0 and "gaussian_tc" in df
    trial = tmp_path / "run" / "trials" / str(row["trial"])
    config = json.loads((trial / "config.json").read_text())
    assert config[param] == value and config["seed"] == 5 and config["steps"] == 3
    summary = json.loads((trial / "scores.json").read_text())
    assert summary["model"] == model and summary["protocol"] == PROTOCOL
    assert (trial / "traversal.png").is_file()
    curves = pd.read_csv(tmp_path / "run" / "curves.csv")
    assert sorted(curves.loc[curves["name"] == "loss/kl", "step"]) == [1, 2, 3]
    assert not run.interrupted


COMPARISON = """
name: two_baselines
datasets: [dsprites, shapes3d]
arms:
  bvae: {{model: beta_vae, space: {{beta: {{type: categorical, choices: [1.0, 8.0]}}}}}}
  fvae: {{model: factor_vae, fixed: {{gamma: 20.0}}}}
fixed: {{steps: 3, batch_size: 8, log_every: 1, eval_metrics: "mig,dci,sap,gaussian_tc"}}
seeds: [4]
objectives: [{{metric: mig}}]
evaluation: {{protocol: {protocol}, interval: 0, final_protocol: {protocol}}}
resources: {{cpus: 1, gpus: 0}}
"""


def test_a_comparison_runs_each_arm_on_each_dataset_and_reports_table_1(local_ray, tmp_path):
    from orchestrator.report import build_report

    path = tmp_path / "two_baselines.yaml"
    path.write_text(COMPARISON.format(protocol=PROTOCOL))
    lines = []
    run_study(path, preset="smoke", out=tmp_path / "run", log=lines.append, report=False)

    df = pd.read_csv(tmp_path / "run" / "results.csv")
    assert (df["status"] == "COMPLETE").all(), df[["trial", "error"]].to_dict("records")
    plan = sorted(zip(df["params_method"], df["params_dataset"], df["params_beta"].fillna(0)))
    assert plan == [("bvae", "dsprites", 1.0), ("bvae", "dsprites", 8.0), ("bvae", "shapes3d", 1.0),
                    ("bvae", "shapes3d", 8.0), ("fvae", "dsprites", 0), ("fvae", "shapes3d", 0)]
    assert list(df.columns[4:6]) == ["params_method", "params_dataset"]
    for _, row in df.iterrows():  # each trial trained the arm's model, on its dataset, with its own fields
        trial = json.loads((tmp_path / "run" / "trials" / str(row["trial"]) / "trial.json").read_text())
        assert trial["model"] == {"bvae": "beta_vae", "fvae": "factor_vae"}[row["params_method"]]
        assert trial["config"]["dataset"] == row["params_dataset"] and trial["config"]["seed"] == 4
        assert "method" not in trial["config"]
        if row["params_method"] == "fvae":
            assert trial["config"]["gamma"] == 20.0 and pd.isna(row["params_beta"])
        else:
            assert trial["config"]["beta"] == row["params_beta"]
    summary = "\n".join(lines).splitlines()
    assert any(line.startswith("  fvae") and "shapes3d" in line and "mig" in line for line in summary), summary

    again = run_study(path, preset="smoke", out=tmp_path / "run", log=lambda *a: None, report=False)
    assert len(again.results) == 6  # nothing ran twice: every configuration was recognised as done

    html = build_report(tmp_path / "run").read_text()
    assert "Comparison (Table 1)" in html and "comparison of bvae, fvae on dsprites, shapes3d" in html
    assert "mig · shapes3d" in html and "Spearman rank correlation of total correlation and MIG over all 6" in html
