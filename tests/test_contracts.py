"""The contracts between the parts: a metric added through the registry alone reaches every table;
protocols never share a column; events are typed; a Config says what makes the experiment."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import ray
import torch

from conftest import TOY_ABLATION, run_toy_study
from did_core.metrics import registry
from did_core.metrics.__main__ import main as metrics_cli
from did_core.metrics.protocols import PROTOCOLS, replace
from did_core.models import ConfigError, Eval, Final, Progress, get_model
from did_core.training import Run
from orchestrator.report.data import load_run
from orchestrator.report.stats import leaderboard
from orchestrator.study_file.resolve import parse_study
from orchestrator.study_file import StudyError
from toy import TOY

import throwaway_metric


@pytest.fixture
def spread_metric():
    throwaway_metric.load()
    yield throwaway_metric.SPREAD
    registry.unregister("code_spread")


def test_a_metric_added_through_the_registry_reaches_the_cli_results_and_report(spread_metric, tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=(300, 2))
    z = y + 0.5 * rng.normal(size=y.shape)
    np.savez(tmp_path / "codes.npz", codes=z, factors=y)
    assert metrics_cli([str(tmp_path / "codes.npz"), "--metrics", "mig,code_spread", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["mig", "code_spread"]  # registration order: built-ins first
    assert "code_spread" in registry.code_metrics() and registry.directions()["code_spread"] == "minimize"

    # Ray's workers register it too (their setup hook), as a deployment registers its own metrics
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             runtime_env={"worker_process_setup_hook": "throwaway_metric.load"})
    try:
        study = {**TOY_ABLATION, "name": "spread", "seeds": 1, "fixed": {"eval_metrics": "mig,code_spread"}}
        run_dir = run_toy_study(tmp_path / "study", study)
    finally:
        ray.shutdown()
    df = pd.read_csv(run_dir / "results.csv")
    assert (df["status"] == "COMPLETE").all() and df["code_spread"].notna().all()
    assert df.sort_values("params_x")["code_spread"].is_monotonic_increasing  # toy codes: noise of size x
    run = load_run(run_dir)
    assert "code_spread" in run.scores and "code_spread mean" in leaderboard(run)
    page = (run_dir / "report.html").read_text()
    assert "<th>code_<wbr>spread</th>" in page


def test_a_registration_is_checked():
    with pytest.raises(ValueError, match="metric 'mig' is registered already"):
        registry.register(registry.Metric("mig", {"mig": "maximize"}, registry.MODEL))
    with pytest.raises(ValueError, match=r"metric 'sap2': score name 'sap' belongs to plugin 'sap' .* not to metric 'sap2'"):
        registry.register(registry.Metric("sap2", {"sap": "maximize"}, registry.MODEL))
    with pytest.raises(ValueError, match="'maximize' or 'minimize'"):
        registry.Metric("acc", {"acc": "up"}, registry.MODEL)
    accuracy = registry.register(registry.Metric("toy_accuracy", {"toy_accuracy": "maximize"}, registry.MODEL))
    try:  # a score the model provides: listed with its direction, never computed by the driver
        assert registry.directions()["toy_accuracy"] == "maximize"
        assert accuracy.name not in registry.computed_metrics()
    finally:
        registry.unregister("toy_accuracy")


# ---- protocols ------------------------------------------------------------------------------

COMPARISON = {"name": "mix", "datasets": ["dsprites"], "objectives": [{"metric": "mig"}],
              "arms": {"a": {"model": "beta_vae"}, "b": {"model": "beta_vae", "fixed": {"final_protocol": "fast"}}}}


def test_a_study_that_mixes_protocols_is_refused():
    with pytest.raises(StudyError, match=r"fixed.final_protocol: the arms score with different protocols "
                                         r"\{'a': 'dlib', 'b': 'fast'\}"):
        parse_study(COMPARISON, "quick")
    searched = {"name": "s", "model": "toy", "objectives": [{"metric": "mig"}], "search": {
        "sampler": "grid", "space": {"final_protocol": {"type": "categorical", "choices": ["fast", "dlib"]}}}}
    with pytest.raises(StudyError, match="search.space.final_protocol: a protocol is not a parameter"):
        parse_study(searched, "smoke", model=TOY)


def test_a_run_folder_never_takes_final_scores_of_a_second_protocol(toy_ablation, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(toy_ablation, run_dir)
    before = (run_dir / "results.csv").read_text()
    study = {**TOY_ABLATION, "evaluation": {"final_protocol": "dlib"}}
    with pytest.raises(StudyError, match=r"different version of this study \(toy: final_protocol 'fast' -> 'dlib' changed\)"):
        run_toy_study(tmp_path, study, report=False)
    assert (run_dir / "results.csv").read_text() == before
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["final_protocol"] == "fast" and meta["eval_protocol"] == "fast"


# ---- events and configs ---------------------------------------------------------------------

def test_events_are_typed_and_model_scores_join_the_metric_scores(tmp_path, monkeypatch):
    monkeypatch.setitem(PROTOCOLS, "tiny", replace("fast", name="tiny", num_train=300, num_test=150))
    torch.set_num_threads(1)
    cfg = get_model("beta_vae").config_cls.from_preset("smoke", eval_protocol="tiny", final_protocol="tiny",
                                                        eval_metrics="mig", batch_size=8)
    run = Run(cfg, out_dir=tmp_path)
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(3))
    event = run.evaluate(5, encoder, {"E": encoder}, {}, model_scores={"class_accuracy": 0.75})
    assert isinstance(event, Eval) and event.protocol == "tiny" and list(event.scores) == ["mig", "class_accuracy"]
    assert event.columns()["tiny/class_accuracy"] == 0.75 and event["scores"] is event.scores
    final = run.final(encoder, {"E": encoder}, {}, model_scores={"swap_accuracy": 0.5})
    assert isinstance(final, Final) and final.scores["swap_accuracy"] == 0.5 and final.to_dict()["kind"] == "final"
    with pytest.raises(ValueError, match=r"model_scores: \['mig'\] are metric scores too"):
        run.final(encoder, {"E": encoder}, {}, model_scores={"mig": 1.0})
    assert Progress(step=1, losses={"l": 1.0}).kind == "progress"


def test_config_errors_name_their_field_and_configs_say_what_the_experiment_is():
    cls = get_model("beta_vae").config_cls
    with pytest.raises(ConfigError) as err:
        cls.from_preset("smoke", beta=-1.0)
    assert err.value.field == "beta" and err.value.why == "must be >= 0, got -1.0"
    cfg = cls.from_preset("smoke")
    assert cfg.experiment_differences(cfg.replace(num_threads=3, device="cpu", log_every=7)) == []
    assert cfg.experiment_differences(cfg.replace(steps=99)) == []  # a longer run of the same experiment
    assert cfg.experiment_differences(cfg.replace(steps=99), schedule=True) == [f"steps: 99 -> {cfg.steps}"]
    assert cfg.experiment_differences(cfg.replace(beta=2.0)) == [f"beta: 2.0 -> {cfg.beta}"]
    assert "num_threads" not in cfg.experiment() and "final_protocol" in cfg.experiment()


def test_a_tune_result_is_read_through_the_trial_report_only():
    from orchestrator.running.trainable import TrialReport, scheduler_metric

    eval_event = Eval(step=4, protocol="fast", scores={"mig": 0.25})
    report = TrialReport.of_event(eval_event, {"node": "n1", "host": "h", "started": 1.0})
    result = {**report.to_tune(), "time_total_s": 3.0, "training_iteration": 2, "a_new_ray_key": 7.0}
    back = TrialReport.from_tune(result)
    assert back == report and back.scores == {"fast/mig": 0.25} and back.losses == {}
    assert scheduler_metric("fast/mig") == "scores/fast/mig"  # what Tune's flattening makes of it
    assert TrialReport.from_tune({"training_iteration": 1, "mig": 0.5}) is None  # no report of ours in it


def test_a_storage_of_an_older_orchestrator_is_refused_by_name(tmp_path):
    import optuna
    import yaml

    from orchestrator.study_file.resolve import load_study
    from orchestrator.running.search import open_study, storage_url

    (tmp_path / "toy_ablation.yaml").write_text(yaml.safe_dump(TOY_ABLATION))
    study = load_study(tmp_path / "toy_ablation.yaml", "smoke", model=TOY)
    old = optuna.create_study(study_name=study.run_name, storage=storage_url(study, tmp_path))
    old.set_user_attr("spec", {"model": "toy", "budget": "smoke", "fixed": {}, "sampler": "grid", "space": {},
                               "objectives": []})  # what the previous version kept
    with pytest.raises(StudyError, match="made by an older version of the orchestrator"):
        open_study(study, tmp_path)
