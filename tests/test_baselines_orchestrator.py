"""Each VAE baseline trains a few CPU steps through the orchestrator: study file -> Optuna -> Ray
Tune trainable -> the model's ``train`` -> results.csv, curves.csv and the trial folder.

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
