"""Studies end to end with the real Ray Tune and Optuna, on the toy model (known scores, a
controllable failure), injected through ``run_study(model=...)``."""
from __future__ import annotations

import json
import math
import signal

import optuna
import pandas as pd
import pytest
import ray
import yaml

from orchestrator.run_folder.environment import cpu
from orchestrator.run_folder.tables import best_configurations, load_curves, load_results
from orchestrator.study import run_study
from toy import TOY, scores
from toy import Config as ToyConfig


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


def write_study(tmp_path, **study):
    study = {"name": "toy", "model": "toy", "objectives": [{"metric": "mig"}], **study}
    path = tmp_path / f"{study['name']}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def run(path, tmp_path, **kw):
    return run_study(path, preset="smoke", out=tmp_path / "run", model=TOY, report=False, log=lambda *a: None, **kw)


def test_grid_study_with_a_failing_trial(tmp_path):
    path = write_study(tmp_path, search={"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 3}}},
                       seeds=[0, 4], fixed={"fail_n": 1})
    handler = signal.getsignal(signal.SIGINT)
    result = run(path, tmp_path)
    # Ray Tune's own Ctrl-C handler is gone once the trials are: a Ctrl-C during the label-free scores or
    # the report stops the command
    assert signal.getsignal(signal.SIGINT) is handler
    run_dir = tmp_path / "run"
    df = load_results(run_dir)
    assert len(df) == 6 == result.study.planned_trials
    assert sorted(zip(df["params_n"], df["seed"])) == [(1, 0), (1, 4), (2, 0), (2, 4), (3, 0), (3, 4)]
    failed = df[df["params_n"] == 1]
    assert (failed["status"] == "FAIL").all()
    assert failed["error"].str.startswith("TrainingDiverged: training diverged at step 3").all()
    assert failed["mig"].isna().all() and (failed["fast/mig"].notna()).all()  # it got to the first eval
    done = df[df["params_n"] != 1]
    assert (done["status"] == "COMPLETE").all()
    for _, r in done.iterrows():  # the scores are the toy's closed form
        expected = scores(ToyConfig.from_preset("smoke", n=int(r["params_n"]), seed=int(r["seed"])))
        assert r["mig"] == pytest.approx(expected["mig"]) and r["step"] == 4
    assert (run_dir / "trials" / str(failed["trial"].iloc[0]) / "error.txt").read_text().count("TrainingDiverged")

    # the Optuna storage holds the same trials, objective values included
    study = optuna.load_study(study_name="toy-smoke", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    states = {t.number: t.state.name for t in study.trials}
    assert states == dict(zip(df["trial"], df["status"]))
    assert {t.number: t.values[0] for t in study.trials if t.values} == pytest.approx(
        dict(zip(done["trial"], done["mig"])))

    # curves: losses and in-training scores of every trial; trial folders; meta
    curves = load_curves(run_dir)
    assert set(curves["trial"]) == set(df["trial"])
    assert {"loss/toy", "fast/mig", "images_per_sec"} <= set(curves["name"])
    info = json.loads((run_dir / "trials" / str(done["trial"].iloc[0]) / "trial.json").read_text())
    assert info["seed"] == done["seed"].iloc[0] and info["config"]["n"] == done["params_n"].iloc[0]
    assert info["environment"]["packages"]["ray"] == ray.__version__
    assert info["environment"]["cpu"] and meta_cpu(run_dir)  # the processor behind the last digits
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["study"] == "toy" and meta["planned_trials"] == 6 and meta["packages"]["optuna"] == optuna.__version__
    assert meta["sessions"][0]["finished"] and not meta["sessions"][0]["interrupted"]
    assert yaml.safe_load((run_dir / "study.yaml").read_text())["seeds"] == [0, 4]

    best = best_configurations(df, [("mig", "maximize")])
    assert list(best["params_n"]) == [2, 3] and (best["n_seeds"] == 2).all()  # mig peaks at n=2

    # running again finds nothing to do and changes nothing
    again = run(path, tmp_path)
    assert not again.interrupted
    pd.testing.assert_frame_equal(load_results(run_dir), df)

    # a Config field the folder's spec lacks (added to the model since) counts at its default
    stored = optuna.load_study(study_name="toy-smoke", storage=f"sqlite:///{run_dir / 'optuna.db'}")
    spec = stored.user_attrs["spec"]
    assert spec["arms"]["toy"]["experiment"]["x"] == ToyConfig().x
    del spec["arms"]["toy"]["experiment"]["x"]
    stored.set_user_attr("spec", spec)
    assert not run(path, tmp_path).interrupted
    pd.testing.assert_frame_equal(load_results(run_dir), df)

    # a study that gains a control is a different experiment: refused, naming it, and nothing is lost
    controlled = write_study(tmp_path, search={"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 3}},
                                               "controls": [{"n": 9}]}, seeds=[0, 4], fixed={"fail_n": 1})
    with pytest.raises(Exception, match=r"made by a different version of this study \(controls changed\)"):
        run(controlled, tmp_path)
    pd.testing.assert_frame_equal(load_results(run_dir), df)

    # a changed study is refused in that folder; --fresh starts over
    changed = write_study(tmp_path, search={"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 2}}},
                          fixed={"x": 0.7})
    with pytest.raises(Exception, match=r"made by a different version of this study \(space, toy: fail_n 1 -> -1, toy: x 0.5 -> 0.7 changed\)"):
        run(changed, tmp_path)
    result = run(changed, tmp_path, fresh=True)
    df = load_results(run_dir)
    assert list(df["trial"]) == [0, 1] and (df["status"] == "COMPLETE").all()
    assert result.results["mig"].tolist() == pytest.approx(
        [scores(ToyConfig.from_preset("smoke", n=n, x=0.7))["mig"] for n in (1, 2)])
    assert not (run_dir / "trials" / "5").exists()


def meta_cpu(run_dir) -> str:
    return json.loads((run_dir / "meta.json").read_text())["sessions"][-1]["cpu"]


def test_cpu_names_the_first_processor_with_its_family_and_model(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\ncpu family\t: 25\nmodel\t\t: 17\n\n"
                    "processor\t: 1\nmodel name\t: Other\ncpu family\t: 6\n")
    assert cpu(info).split(";")[0] == "AMD EPYC (cpu family 25, model 17)"
    assert cpu(tmp_path / "missing")  # no /proc: the machine's name from platform, never an error


def test_sampled_configurations_repeat_every_seed(tmp_path):
    path = write_study(tmp_path, search={"sampler": "tpe", "n_trials": 3, "space": {
        "x": {"type": "float", "low": 0.0, "high": 1.0}, "mode": {"type": "categorical", "choices": ["a", "b"]}}},
        seeds=[0, 5])
    run(path, tmp_path)
    df = load_results(tmp_path / "run")
    assert len(df) == 6 and (df["status"] == "COMPLETE").all()
    for _, group in df.groupby("config_id"):
        assert sorted(group["seed"]) == [0, 5]
        assert group["params_x"].nunique() == 1 and group["params_mode"].nunique() == 1
    assert df["config_id"].nunique() == 3


def test_several_objectives_and_early_stopping(tmp_path):
    # one trial at a time, in grid order: x=0.3 sets the rung, x=0.9 scores lower there and is stopped
    path = write_study(tmp_path, search={"sampler": "grid", "space": {
        "x": {"type": "float", "low": 0.0, "high": 1.0, "values": [0.3, 0.9]}}},
        objectives=[{"metric": "mig"}, {"metric": "dci_disentanglement", "direction": "minimize"}],
        early_stopping={"type": "asha", "grace_period": 2, "reduction_factor": 2}, max_concurrent=1)
    run(path, tmp_path)
    df = load_results(tmp_path / "run")
    assert list(df["params_x"]) == [0.3, 0.9]
    assert list(df["status"]) == ["COMPLETE", "PRUNED"]
    pruned = df.iloc[1]
    assert pruned["step"] == 2 and math.isnan(pruned["mig"]) and not math.isnan(pruned["fast/mig"])
    study = optuna.load_study(study_name="toy-smoke", storage=f"sqlite:///{tmp_path / 'run' / 'optuna.db'}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.trials[0].values == pytest.approx([df.iloc[0]["mig"], df.iloc[0]["dci_disentanglement"]])


def test_a_resumed_seeded_search_does_not_propose_its_first_configurations_again(tmp_path):
    """A seeded sampler made anew on resume would replay its first proposals (seen: a resumed TPE
    search repeated trials 0 and 1); the resumed sampler's seed also depends on the trials done."""
    from orchestrator.study_file.resolve import parse_study
    from orchestrator.running.search import distributions, open_study
    from toy import TOY

    raw = {"name": "resume_tpe", "model": "toy", "seeds": 1, "objectives": [{"metric": "mig"}],
           "search": {"sampler": "tpe", "n_trials": 5, "seed": 3,
                      "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}}}
    study = parse_study(raw, "smoke", model=TOY, label="resume_tpe.yaml")

    def first_proposals(run_dir, n):
        ostudy = open_study(study, run_dir)
        out = []
        for _ in range(n):
            trial = ostudy.ask(distributions(study))
            ostudy.tell(trial, 0.5)
            out.append(trial.params["x"])
        return out

    run_a, run_b = tmp_path / "a", tmp_path / "b"
    run_a.mkdir(), run_b.mkdir()
    fresh = first_proposals(run_a, 2)
    assert first_proposals(run_b, 2) == fresh  # a fresh start is reproducible
    resumed = first_proposals(run_a, 2)  # the same storage, opened again after 2 trials
    assert not set(resumed) & set(fresh)
    again = tmp_path / "c"
    again.mkdir()
    assert first_proposals(again, 2) == fresh and first_proposals(again, 2) == resumed  # so is a resume
