"""The offline trackers (orchestrator/running/trackers): a toy study run with TensorBoard and MLflow on,
read back with TensorBoard's own event reader and MLflow's own client; the refusals of an unknown
tracker and of a tracker whose package is missing."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import TOY_ABLATION, run_toy_study
from orchestrator.study_file import StudyError
from orchestrator.study_file.schema import validate
from orchestrator.running.trackers import chosen_trackers

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")

ROOT = Path(__file__).resolve().parents[1]
# two settings of x, two seeds: x = 0.9 with seed 1 diverges at step 3 (a FAIL), the others finish
TRACKED = {**TOY_ABLATION, "name": "toy_tracked", "seeds": 2, "trackers": ["tensorboard", "mlflow"],
           "search": {"sampler": "grid", "space": {"x": {"type": "float", "low": 0.0, "high": 1.0,
                                                         "values": [0.3, 0.9]}}}}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> Path:
    return run_toy_study(tmp_path_factory.mktemp("toy_tracked"), TRACKED, report=False, select=False)


@pytest.fixture(scope="module")
def results(tracked) -> pd.DataFrame:
    return pd.read_csv(tracked / "results.csv").set_index("trial")


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc


def _hparams(acc) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: (v.number_value if v.HasField("number_value") else v.string_value) for k, v in info.hparams.items()}


def test_tensorboard_events_hold_each_trials_config_curves_and_final_scores(tracked, results):
    folders = sorted(p.name for p in (tracked / "tensorboard").iterdir())
    assert folders == [f"trial_{n}" for n in sorted(results.index)]
    for trial, row in results.iterrows():
        acc = _events(tracked / "tensorboard" / f"trial_{trial}")
        losses = acc.Scalars("ray/tune/loss/toy")
        # the toy's loss is 1/step: the x axis is the trial's step, one point per progress report
        assert [e.step for e in losses][:2] == [1, 2]
        assert all(math.isclose(e.value, 1 / e.step, rel_tol=1e-6) for e in losses)
        assert [e.step for e in acc.Scalars("ray/tune/fast/mig")][:1] == [2]
        config = _hparams(acc)
        assert config["x"] == pytest.approx(row["params_x"]) and config["seed"] == row["seed"]
        assert config["trial"] == trial and config["model"] == "toy" and "run_dir" not in config
        tags = acc.Tags()["scalars"]
        if row["status"] == "COMPLETE":
            final = acc.Scalars("ray/tune/final/mig")
            assert [e.step for e in final] == [4] and final[0].value == pytest.approx(row["mig"], rel=1e-6)
        else:  # the diverged trial: its curves up to the failure, no final scores
            assert row["status"] == "FAIL" and "ray/tune/final/mig" not in tags
            assert max(e.step for e in losses) < 4


def test_mlflow_runs_hold_each_trials_params_curves_and_final_scores(tracked, results):
    from mlflow.tracking import MlflowClient

    assert (tracked / "mlflow.db").is_file()  # the default store is inside the run folder
    client = MlflowClient(tracking_uri=f"sqlite:///{tracked / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("toy_tracked-smoke")
    runs = {int(r.data.params["trial"]): r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == sorted(results.index)
    for trial, row in results.iterrows():
        run = runs[trial]
        assert run.info.run_name == f"trial_{trial}" and run.data.tags["study"] == "toy_tracked"
        assert float(run.data.params["x"]) == pytest.approx(row["params_x"])
        assert int(run.data.params["seed"]) == row["seed"] and run.data.params["fail_x"] == "0.9"
        assert not any(str(tracked) in v for v in run.data.params.values())  # no paths of this machine
        history = client.get_metric_history(run.info.run_id, "loss/toy")
        assert [m.step for m in history][:2] == [1, 2] and history[1].value == pytest.approx(0.5)
        if row["status"] == "COMPLETE":
            assert run.info.status == "FINISHED"
            assert run.data.metrics["final/mig"] == pytest.approx(row["mig"], rel=1e-9)
            assert run.data.metrics["final/dci_disentanglement"] == pytest.approx(row["dci_disentanglement"])
        else:
            assert run.info.status == "FAILED" and "final/mig" not in run.data.metrics


def test_tracking_uri_puts_the_mlflow_runs_there(tmp_path):
    from mlflow.tracking import MlflowClient

    store = tmp_path / "elsewhere" / "mlflow.db"
    store.parent.mkdir()
    one = {**TRACKED, "name": "toy_uri", "seeds": 1, "trackers": [],
           "search": {"sampler": "grid", "space": {"x": {"type": "float", "low": 0.0, "high": 1.0, "values": [0.3]}}}}
    said = []
    run_dir = run_toy_study(tmp_path, one, report=False, select=False, trackers=["mlflow"],
                            tracking_uri=f"sqlite:///{store}", log=said.append)
    assert f"mlflow:   experiment 'toy_uri-smoke' at sqlite:///{store}" in "\n".join(said)
    assert not (run_dir / "mlflow.db").exists() and not (run_dir / "tensorboard").exists()
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    [run] = client.search_runs([client.get_experiment_by_name("toy_uri-smoke").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["x"] == "0.3" and "final/mig" in run.data.metrics


def test_an_unknown_tracker_is_refused_naming_the_field():
    raw = {"name": "s", "model": "toy", "objectives": [{"metric": "mig"}], "trackers": ["tensorboard", "wandb"]}
    with pytest.raises(StudyError, match=r"^studies/s.yaml: trackers: unknown tracker 'wandb'; use any of "
                                         r"tensorboard, mlflow$"):
        validate(raw, "studies/s.yaml")
    with pytest.raises(StudyError, match="--tracker comet: unknown tracker"):
        chosen_trackers([], ["comet"])
    assert chosen_trackers(["mlflow"], ["tensorboard", "mlflow"]) == ("tensorboard", "mlflow")


@pytest.mark.parametrize("tracker, module, extra", [("mlflow", "mlflow", "mlflow"),
                                                    ("tensorboard", "tensorboardX", "tensorboard")])
def test_a_tracker_whose_package_is_missing_is_refused_in_one_line(tmp_path, tracker, module, extra):
    out = tmp_path / "run"
    code = (f"import sys; sys.modules[{module!r}] = None\n"  # the package as if not installed
            "from orchestrator.study import main\n"
            f"sys.exit(main(['ablation_dims', '--tracker', {tracker!r}, '--out', {str(out)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"error: tracker {tracker}: the Python package {module} is not installed; "
                                   f"pip install 'did-orchestrator[{extra}]'")
    assert not out.exists()  # refused before anything was written
