"""The study file schema: built-in studies resolve, bad files give one error naming the field."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.study_file.plan import study_as_dict
from orchestrator.study_file.resolve import load_study, parse_study
from orchestrator.study_file import StudyError, list_studies
from orchestrator.study_file.reader import read_study_file
from toy import TOY

ROOT = Path(__file__).resolve().parent.parent

BASE = {
    "name": "t",
    "model": "toy",
    "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 4}}},
    "objectives": [{"metric": "mig"}],
}


def parse(preset="smoke", **changes):
    raw = {**BASE, **changes}
    return parse_study(raw, preset, model=TOY, label="studies/t.yaml")


def error_of(preset="smoke", **changes) -> str:
    with pytest.raises(StudyError) as e:
        parse(preset, **changes)
    return str(e.value)


def test_builtin_studies_resolve_against_the_did_config():
    assert set(list_studies()) >= {"ablation_dims", "loss_weights", "critic_steps", "did_search"}
    dims = load_study("ablation_dims", "smoke")
    assert dims.sampler == "grid" and dims.kind == "ablation"
    # DiD's broadcast form, k = 1..5 of 5 latents, and the paper's form at the default k as the control;
    # the paper preset: the paper's form, k = 1..10 of 10
    assert [(p["n_compare_dims"], p["form"]) for p in dims.grid()] == [(k, "broadcast") for k in range(1, 6)] + [
        (3, "paper")]
    assert dims.controls == [{"n_compare_dims": 3, "form": "paper"}] and dims.fixed["n_latents"] == 5
    assert dims.planned_trials == 6 * len(dims.seeds)
    paper = load_study("ablation_dims", "paper")
    assert len(paper.seeds) >= 3 and paper.budget == "paper" and paper.steps == 100_000
    assert [p["n_compare_dims"] for p in paper.grid()] == list(range(1, 11))
    assert {p["form"] for p in paper.grid()} == {"paper"} and paper.fixed["n_latents"] == 10
    demo = load_study("ablation_dims", "demo")  # make demo: the two forms side by side on Squares
    assert sorted(p["form"] for p in demo.grid()) == ["broadcast", "paper"] and demo.fixed["dataset"] == "squares"
    critic = load_study("critic_steps", "quick")
    assert [p["n_critic"] for p in critic.grid()] == [1, 2, 3, 5, 8]
    weights = load_study("loss_weights", "smoke")
    assert weights.sampler == "tpe" and set(weights.space) == {"lambda_h", "lambda_enc", "lambda_gp"}
    joint = load_study("did_search", "smoke")
    assert joint.sampler == "nsga2" and len(joint.objectives) == 2
    assert joint.early_stopping.metric == "fast/mig" and joint.early_stopping.mode == "max"
    assert joint.early_stopping.grace_period == joint.fixed.get("eval_every", 10)
    demo = load_study("ablation_dims", "demo")
    assert demo.budget == "quick" and demo.steps == 1200 and demo.planned_trials == 8  # 2 forms x 4 seeds
    assert demo.fixed["contrast_start"] == 900  # the demo's named departure: a longer GAN warm-up, both forms


def test_grid_plan_and_seeds():
    s = parse(seeds=[3, 7], search={"sampler": "grid", "space": {
        "n": {"type": "int", "low": 1, "high": 5, "step": 2},
        "mode": {"type": "categorical", "choices": ["a", "b"]}}})
    assert s.seeds == [3, 7]
    assert s.grid() == [{"n": 1, "mode": "a"}, {"n": 1, "mode": "b"}, {"n": 3, "mode": "a"},
                        {"n": 3, "mode": "b"}, {"n": 5, "mode": "a"}, {"n": 5, "mode": "b"}]
    assert s.planned_trials == 12
    assert parse(seeds=4).seeds == [0, 1, 2, 3]


def test_preset_sections_scale_the_study():
    s = parse("demo", seeds=3, fixed={"x": 0.1},
              presets={"demo": {"budget": "quick", "seeds": 1, "fixed": {"steps": 7},
                                "search": {"space": {"n": {"type": "int", "low": 1, "high": 2}}}}})
    assert (s.budget, s.seeds, s.steps, s.planned_trials) == ("quick", [0], 7, 2)
    assert s.fixed == {"x": 0.1, "steps": 7}
    as_run = study_as_dict(s)
    assert as_run["search"]["space"]["n"]["high"] == 2 and as_run["preset"] == "demo" and as_run["model"] == "toy"
    assert "unknown preset 'nope'" in error_of("nope")


@pytest.mark.parametrize("changes, expected", [
    ({"bogus": 1}, "studies/t.yaml: bogus: unknown field"),
    ({"search": {"sampler": "grid", "space": {"x": {"type": "log_float", "low": "a", "high": 1}}}},
     "studies/t.yaml: search.space.x.low: Input should be a valid number"),
    ({"search": {"sampler": "grid", "space": {"x": {"type": "logfloat", "low": 1, "high": 2}}}},
     "search.space.x: unknown parameter type 'logfloat'"),
    ({"search": {"sampler": "grid", "space": {"x": {"low": 1, "high": 2}}}}, "search.space.x: missing `type`"),
    ({"search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 5, "high": 1}}}},
     "search.space.n: high (1) must be >= low (5)"),
    ({"search": {"sampler": "grid", "space": {"lambda_h": {"type": "int", "low": 1, "high": 2}}}},
     "search.space.lambda_h: not a field of the 'toy' model's Config"),
    ({"fixed": {"lamda": 1.0}}, "fixed.lamda: not a field of the 'toy' model's Config"),
    ({"fixed": {"steps": "many"}}, "fixed.steps: 'many' is not a valid int"),
    ({"fixed": {"steps": 0}}, "fixed.steps: must be >= 1"),
    ({"fixed": {"n": 2}}, "fixed.n: a parameter is either fixed or searched, not both"),
    ({"fixed": {"seed": 2}}, "fixed.seed: seeds are set by the study's `seeds`"),
    ({"presets": {"smoke": {"fixed": {"mode": 3, "nope": 1}}}}, "presets.smoke.fixed.nope: not a field"),
    ({"presets": {"smoke": {"budget": "huge"}}}, "presets.smoke.budget: 'huge' is not a preset of model 'toy'"),
    ({"seeds": [1, 1]}, "seeds: expected a count >= 1, a non-empty list of distinct integers or a plan"),
    ({"seeds": 0}, "seeds: expected a count >= 1"),
    ({"objectives": []}, "objectives: List should have at least 1 item"),
    ({"objectives": [{"metric": "mig", "direction": "up"}]}, "objectives.0.direction: Input should be"),
    ({"model": "did"}, "model: 'did' does not match the model given to the orchestrator ('toy')"),
    ({"search": {"sampler": "grid", "space": {"x": {"type": "float", "low": 0, "high": 1}}}},
     "search.space.x: a float range has no grid points"),
    ({"search": {"sampler": "grid", "n_trials": 3, "space": {"n": {"type": "int", "low": 1, "high": 2}}}},
     "search.n_trials: the grid sampler runs every grid point"),
    ({"search": {"sampler": "tpe", "space": {"x": {"type": "float", "low": 0, "high": 1}}}},
     "search.n_trials: the tpe sampler needs n_trials"),
    ({"search": {"sampler": "tpe", "n_trials": 2, "population_size": 4,
                 "space": {"x": {"type": "float", "low": 0, "high": 1}}}},
     "search.population_size: only the nsga2 sampler has a population"),
    ({"search": {"sampler": "anneal", "space": {}}}, "search.sampler: Input should be 'grid', 'tpe'"),
    ({"early_stopping": {"metric": "mig"}}, "early_stopping.metric: 'mig' is not an in-training score"),
    ({"early_stopping": {}, "evaluation": {"interval": 0}}, "early_stopping: needs in-training scores"),
    ({"evaluation": {"interval": 5}, "fixed": {"eval_every": 5}}, "fixed.eval_every: given twice"),
    ({"resources": {"gpus": 1.5}}, "resources.gpus: a GPU share above 1 must be a whole number"),
])
def test_invalid_study_names_the_field(changes, expected):
    assert expected in error_of(**changes)


def test_several_objectives_and_samplers():
    s = parse(search={"sampler": "nsga2", "n_trials": 6, "population_size": 4,
                      "space": {"x": {"type": "float", "low": 0, "high": 1}}},
              objectives=[{"metric": "mig"}, {"metric": "dci_disentanglement", "direction": "minimize"}],
              early_stopping={"type": "asha", "grace_period": 2})
    assert s.n_configs == 6 and s.early_stopping.metric == "fast/mig" and s.early_stopping.mode == "max"
    off = parse(early_stopping={}, presets={"smoke": {"early_stopping": False}})
    assert off.early_stopping is None
    cmaes = {"search": {"sampler": "cmaes", "n_trials": 2, "space": {"x": {"type": "float", "low": 0, "high": 1}}}}
    try:
        import cmaes  # noqa: F401
        assert parse(**cmaes).sampler == "cmaes"
    except ImportError:
        assert "cmaes needs the Python package `cmaes`" in error_of(**cmaes)
    two = dict(cmaes, objectives=[{"metric": "mig"}, {"metric": "dci_disentanglement"}])
    assert "cmaes optimises one objective" in error_of(**two)


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(StudyError, match=r"bad\.yaml: not valid YAML"):
        load_study(bad, model=TOY)
    bad.write_text("- a list\n")
    with pytest.raises(StudyError, match=r"bad\.yaml: expected a mapping"):
        load_study(bad, model=TOY)
    with pytest.raises(StudyError, match="no study named 'nope'"):
        load_study("nope")


def test_cli_reports_the_bad_field_and_lists_studies(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""\
        name: bad
        model: did
        search:
          sampler: tpe
          n_trials: 2
          space:
            lambda_h: {type: log_float, low: -1, high: 10}
        objectives: [{metric: mig}]
        """))
    p = subprocess.run([sys.executable, "-m", "orchestrator.study", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "bad.yaml: search.space.lambda_h.low: Input should be greater than 0" in p.stderr
    p = subprocess.run([sys.executable, "-m", "orchestrator.study", "--list"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0
    assert all(name in p.stdout for name in ("ablation_dims", "loss_weights", "critic_steps", "did_search"))


def test_a_preset_of_a_single_model_study_may_replace_its_dataset():
    small = load_study("ablation_dims", "small")
    assert small.arms[0].fixed["dataset"] == "squares" and small.arms[0].fixed["n_latents"] == 3
    assert len(small.grid()) == 3 + 1 and load_study("ablation_dims", "smoke").arms[0].fixed["dataset"] == "dsprites"
    assert "presets.smoke.dataset: unknown dataset(s) ['mnist']" in error_of(
        dataset="dsprites", presets={"smoke": {"dataset": "mnist"}})
    cmp = {"name": "c", "datasets": ["dsprites"], "arms": {"a": {"model": "did"}}, "objectives": [{"metric": "mig"}],
           "presets": {"smoke": {"dataset": "squares"}}}
    with pytest.raises(StudyError, match="presets.smoke.dataset: a comparison's preset replaces `datasets`"):
        parse_study(cmp, "smoke", label="studies/c.yaml")


CPU_PRESETS = ("smoke", "quick")
DID_STUDIES = ("ablation_dims", "loss_weights", "critic_steps", "did_search", "baselines", "tc_vs_mig")


@pytest.mark.parametrize("name", DID_STUDIES)
def test_every_did_study_trains_the_form_that_learns_at_its_cpu_presets(name):
    """Issue 23: the broadcast form in every trial, the paper's form only as a named control."""
    for preset in CPU_PRESETS:
        study = load_study(name, preset)
        forms = {}
        for arm in study.arms:
            if arm.model != "did":
                continue
            for point in [p for p in study.grid() if study.arm_of(p) is arm] if study.sampler == "grid" else [{}]:
                own = {k: v for k, v in point.items() if k in arm.config_fields}
                config = arm.config_cls.from_preset(study.budget, **{**arm.fixed, **own}, seed=0)
                forms.setdefault(config.form, set()).add(arm.label)
                if config.form == "broadcast":
                    assert (config.g_arch, config.lambda_rec, config.encoder) == ("broadcast", 1.0, "critic_head")
        assert "broadcast" in forms, (name, preset, forms)
        controls = {"ablation_dims": {"did"}, "baselines": {"did_paper"}}.get(name)
        assert forms.get("paper") == controls, (name, preset, forms)


def test_a_control_runs_beside_the_grid_at_the_default_of_what_it_leaves_out():
    study = parse(search={"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 3},
                                                       "mode": {"type": "categorical", "choices": ["a"]}},
                          "controls": [{"mode": "b"}, {"n": 9, "mode": "b"}]}, seeds=2)
    default_n = TOY.config_cls.from_preset("smoke", seed=0).n
    assert study.grid()[-2:] == [{"n": default_n, "mode": "b"}, {"n": 9, "mode": "b"}]
    assert study.planned_trials == (3 + 2) * 2
    from orchestrator.running.search import distributions
    assert distributions(study)["mode"].choices == ("a", "b")
    assert set(distributions(study)["n"].choices) == {1, 2, 3, 9}
    assert study_as_dict(study)["search"]["controls"] == study.controls


@pytest.mark.parametrize("search, preset_search, expected", [
    ({"controls": [{"m": 1}]}, None, "search.controls[0]: a control sets searched parameters (['n']), got ['m']"),
    ({"controls": [{}]}, None, "search.controls[0]: a control sets searched parameters (['n']), got none"),
    ({"controls": [{"n": 2}]}, None, "search.controls[0]: {'n': 2} is already planned"),
    ({"controls": [{"n": 7}, {"n": 7}]}, None, "search.controls[1]: {'n': 7} is already planned"),
    ({"sampler": "tpe", "n_trials": 3, "controls": [{"n": 7}]}, None, "search.controls: controls run beside a grid"),
    ({}, {"controls": [{"m": 1}]}, "presets.smoke.search.controls[0]: a control sets searched parameters"),
])
def test_a_bad_control_is_refused_naming_its_entry(search, preset_search, expected):
    spec = {**BASE["search"], **search}
    presets = {"smoke": {"search": preset_search}} if preset_search else {}
    assert expected in error_of(search=spec, presets=presets)


def test_a_control_that_gives_an_invalid_config_is_refused():
    raw, label, _ = read_study_file("ablation_dims")
    raw["search"]["controls"] = [{"n_compare_dims": 9}]
    with pytest.raises(StudyError, match=r"search.controls\[0\]: .* gives an invalid config: .*n_compare_dims"):
        parse_study(raw, "quick", label=label)


def test_a_preset_may_drop_the_controls():
    study = parse(search={**BASE["search"], "controls": [{"n": 7}]}, presets={"smoke": {"search": {"controls": []}}})
    assert study.controls == [] and study.planned_trials == 4
