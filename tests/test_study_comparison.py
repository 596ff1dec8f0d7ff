"""Comparison studies (`arms`): the plan they resolve to, the errors that name the field, and the
Table 1 / Figure 2 numbers computed from a results table with known values."""
from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest

from scipy import stats

from orchestrator.report.comparison import _tests_block, leader_tests, tc_counterexamples, tc_mig_correlations
from orchestrator.report.data import RunData
from orchestrator.run_folder.layout import RunMeta
from orchestrator.run_folder.tables import comparison_table
from orchestrator.study_file.plan import METHOD, study_as_dict
from orchestrator.study_file.resolve import load_study, parse_study
from orchestrator.study_file import StudyError

BASE = {
    "name": "cmp",
    "datasets": ["dsprites", "shapes3d"],
    "arms": {
        "vae": {"model": "beta_vae", "space": {"beta": {"type": "categorical", "choices": [1.0, 4.0]}}},
        "tc": {"model": "beta_tcvae", "space": {"beta": {"type": "categorical", "choices": [4.0, 10.0]}},
               "fixed": {"batch_size": 16}},
        "fvae": {"model": "factor_vae"},
    },
    "fixed": {"eval_metrics": "mig,gaussian_tc"},
    "seeds": 2,
    "objectives": [{"metric": "mig"}],
}


def parse(preset="smoke", **changes):
    return parse_study({**BASE, **changes}, preset, label="studies/cmp.yaml")


def error_of(preset="smoke", **changes) -> str:
    with pytest.raises(StudyError) as e:
        parse(preset, **changes)
    return str(e.value)


def test_every_arm_configuration_runs_on_every_dataset():
    s = parse()
    assert s.kind == "comparison" and s.sampler == "grid" and s.datasets == ["dsprites", "shapes3d"]
    assert s.models == ["beta_vae", "beta_tcvae", "factor_vae"]
    grid = s.grid()
    assert len(grid) == 2 * (2 + 2 + 1) and s.planned_trials == 20
    assert grid[:5] == [
        {METHOD: "vae", "dataset": "dsprites", "beta": 1.0}, {METHOD: "vae", "dataset": "dsprites", "beta": 4.0},
        {METHOD: "tc", "dataset": "dsprites", "beta": 4.0}, {METHOD: "tc", "dataset": "dsprites", "beta": 10.0},
        {METHOD: "fvae", "dataset": "dsprites"}]
    # one Optuna distribution per parameter name: the values any arm gives it
    assert s.space["beta"].choices == [1.0, 4.0, 10.0]
    assert s.space[METHOD].choices == ["vae", "tc", "fvae"]
    tc = s.arm_of({METHOD: "tc"})
    assert tc.model == "beta_tcvae" and tc.fixed["batch_size"] == 16 and tc.fixed["eval_metrics"] == "mig,gaussian_tc"
    assert "batch_size" not in s.arm_of({METHOD: "vae"}).fixed
    assert s.has_all_params({METHOD: "fvae", "dataset": "dsprites"})
    assert not s.has_all_params({METHOD: "tc", "dataset": "dsprites"})  # its beta is missing
    as_run = study_as_dict(s)
    assert as_run["arms"]["tc"]["fixed"] == {"batch_size": 16} and as_run["datasets"] == s.datasets and "model" not in as_run


def test_presets_override_datasets_and_arm_grids():
    s = parse("quick", presets={"quick": {"datasets": ["dsprites"], "seeds": 1,
                                          "arms": {"vae": {"space": {"beta": {"type": "categorical",
                                                                              "choices": [16.0]}}},
                                                   "fvae": {"fixed": {"gamma": 50.0}}}}})
    assert s.datasets == ["dsprites"] and s.seeds == [0] and s.budget == "quick"
    assert [c.get("beta") for c in s.grid()] == [16.0, 4.0, 10.0, None]
    assert s.arm_of({METHOD: "fvae"}).fixed["gamma"] == 50.0
    assert {a.label: a.steps for a in s.arms} == {"vae": 3000, "tc": 3000, "fvae": 3000}


def test_builtin_comparisons_resolve():
    table1 = load_study("baselines", "paper")
    assert table1.datasets == ["dsprites", "shapes3d"] and len(table1.seeds) == 5
    grids = {a.label: [p for p in a.space.get("beta", a.space.get("gamma")).grid()] if a.space else []
             for a in table1.arms}
    assert grids == {"did": [], "did_paper": [], "beta_vae": [1, 2, 4, 6, 8, 16], "beta_tcvae": [1, 2, 4, 6, 8, 10],
                     "factor_vae": [10, 20, 30, 40, 50, 100], "parted_vae": []}
    assert table1.planned_trials == 2 * (2 + 18 + 1) * 5
    # DiD's two forms as two arms: the one that learns, and the paper's as the control
    forms = {a.label: a.config_cls.from_preset("quick", **a.fixed, seed=0) for a in table1.arms if a.model == "did"}
    assert {k: (c.form, c.g_arch) for k, c in forms.items()} == {"did": ("broadcast", "broadcast"),
                                                                 "did_paper": ("paper", "dcgan")}
    quick = load_study("baselines", "quick")
    assert quick.datasets == ["dsprites"] and quick.planned_trials == 6 * 3
    figure2 = load_study("tc_vs_mig", "smoke")
    assert "gaussian_tc" in figure2.fixed["eval_metrics"] and figure2.datasets == ["dsprites"]


@pytest.mark.parametrize("changes, expected", [
    ({"model": "beta_vae"}, "studies/cmp.yaml: model: give either `model` (one model) or `arms`"),
    ({"arms": None}, "model: give either `model`"),
    ({"arms": {}}, "arms: a comparison needs at least one arm"),
    ({"arms": {"a b": {"model": "beta_vae"}}}, "arms: arm names may hold letters"),
    ({"arms": {"x": {"model": "vae9"}}}, "arms.x.model: unknown model 'vae9'"),
    ({"arms": {"x": {"model": "beta_vae", "space": {"gamma": {"type": "categorical", "choices": [1.0]}}}}},
     "arms.x.space.gamma: not a field of the 'beta_vae' model's Config"),
    ({"arms": {"x": {"model": "beta_vae", "space": {"beta": {"type": "float", "low": 1, "high": 2}}}}},
     "arms.x.space.beta: a float range has no grid points"),
    ({"arms": {"x": {"model": "beta_vae", "space": {"beta": {"type": "categorical", "choices": [-1.0]}}}}},
     "arms.x.space.beta: must be >= 0, got -1.0"),
    ({"arms": {"x": {"model": "beta_vae", "fixed": {"dataset": "shapes3d"}}}},
     "arms.x.fixed.dataset: in a comparison the dataset is a study axis"),
    ({"datasets": ["dsprites", "mnist"]}, "datasets: unknown dataset(s) ['mnist']"),
    ({"datasets": None}, "datasets: missing"),
    ({"dataset": "dsprites"}, "datasets: give `dataset` or `datasets`, not both"),
    ({"search": {"sampler": "tpe", "n_trials": 3}}, "search.sampler: a comparison runs every configuration"),
    ({"search": {"sampler": "grid", "space": {"beta": {"type": "categorical", "choices": [1.0]}}}},
     "search.space: a comparison's parameters belong to its arms"),
    ({"early_stopping": {"type": "asha"}}, "early_stopping: early stopping compares trials at equal steps"),
    ({"kind": "ablation"}, "kind: a study with `arms` is a comparison"),
    ({"presets": {"smoke": {"arms": {"nope": {"fixed": {"beta": 2.0}}}}}},
     "presets.smoke.arms.nope: no such arm; the study's arms are ['vae', 'tc', 'fvae']"),
    ({"presets": {"smoke": {"arms": {"fvae": {"space": {"gamma": {"type": "categorical", "choices": [1.0]}}}}}}},
     "presets.smoke.arms.fvae.space.gamma: a preset may only change parameters the arm searches"),
    ({"presets": {"smoke": {"arms": {"vae": {"fixed": {"beta": 2.0}}}}}},
     "presets.smoke.arms.vae.fixed.beta: a parameter is either fixed or searched, not both"),
    ({"presets": {"smoke": {"datasets": ["cars"]}}}, "presets.smoke.datasets: unknown dataset(s) ['cars']"),
])
def test_invalid_comparison_names_the_field(changes, expected):
    assert expected in error_of(**changes)


def test_a_single_model_study_rejects_comparison_fields():
    raw = {"name": "t", "model": "beta_vae", "objectives": [{"metric": "mig"}],
           "search": {"sampler": "grid", "space": {"beta": {"type": "categorical", "choices": [1.0]}}}}
    with pytest.raises(StudyError, match="datasets: only a comparison"):
        parse_study({**raw, "datasets": ["dsprites"]}, "smoke")
    with pytest.raises(StudyError, match=r"presets.smoke.arms: only a comparison"):
        parse_study({**raw, "presets": {"smoke": {"arms": {}}}}, "smoke")
    with pytest.raises(StudyError, match="search: missing"):
        parse_study({k: v for k, v in raw.items() if k != "search"}, "smoke")


def results(rows):
    cols = ["trial", "method", "dataset", "beta", "seed", "status", "mig", "sap", "gaussian_tc"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows])


# two methods on one dataset: vae at beta 1 (mig 0.1, 0.3) and beta 4 (mig 0.5, 0.7); did once (0.2)
ROWS = [(0, "vae", "d", 1.0, 0, "COMPLETE", 0.1, 0.01, 3.0), (1, "vae", "d", 1.0, 1, "COMPLETE", 0.3, 0.03, 2.0),
        (2, "vae", "d", 4.0, 0, "COMPLETE", 0.5, 0.05, 1.0), (3, "vae", "d", 4.0, 1, "COMPLETE", 0.7, 0.07, 0.5),
        (4, "did", "d", math.nan, 0, "COMPLETE", 0.2, 0.02, 4.0), (5, "did", "d", math.nan, 1, "FAIL", 9.9, 9.9, 9.9)]


def test_comparison_table_best_configuration_and_pooled():
    df = results(ROWS)
    best = comparison_table(df, ("mig", "maximize"), ["mig", "sap"], ["beta"], select="best").set_index("method")
    assert best.loc["vae", "configuration"] == "beta=4" and best.loc["vae", "n"] == 2
    assert best.loc["vae", "mig_mean"] == pytest.approx(0.6)
    assert best.loc["vae", "mig_std"] == pytest.approx(math.sqrt(0.02))  # sample std of 0.5, 0.7
    assert best.loc["did", "configuration"] == "(its defaults)" and best.loc["did", "n"] == 1  # the FAIL left out
    assert math.isnan(best.loc["did", "mig_std"])
    pooled = comparison_table(df, ("mig", "maximize"), ["mig"], ["beta"], select="all").set_index("method")
    assert pooled.loc["vae", "mig_mean"] == pytest.approx(0.4) and pooled.loc["vae", "n"] == 4
    assert pooled.loc["vae", "configuration"] == "all 2 configuration(s)"
    low = comparison_table(df, ("mig", "minimize"), ["mig"], ["beta"]).set_index("method")
    assert low.loc["vae", "configuration"] == "beta=1" and low.loc["vae", "mig_mean"] == pytest.approx(0.2)


def test_tc_against_mig_rank_correlation(tmp_path):
    df = results(ROWS[:5]).assign(status="COMPLETE")
    run = RunData(run_dir=tmp_path, results=df)
    overall, *per_method = tc_mig_correlations(run)
    # over all 5 models TC and MIG rank exactly opposite except did (tc 4.0, mig 0.2): rho = -0.9
    assert overall.group == "all models" and overall.n == 5 and overall.rho == pytest.approx(-0.9)
    vae = next(c for c in per_method if c.group == "vae")
    assert vae.n == 4 and vae.rho == pytest.approx(-1.0)
    did = next(c for c in per_method if c.group == "did")
    assert did.n == 1 and math.isnan(did.rho)  # too few models for a rank correlation


def test_tc_counterexamples_count_pairs_of_one_configuration_with_lower_tc_and_lower_mig(tmp_path):
    # vae beta=1 gains seed 2 (mig 0.05, tc 1.0): below seeds 0 and 1 on both, 2 of its 3 pairs;
    # beta=4's one pair has the lower TC with the higher MIG; did has one finished model, no pair
    rows = ROWS + [(6, "vae", "d", 1.0, 2, "COMPLETE", 0.05, 0.01, 1.0)]
    run = RunData(run_dir=tmp_path, results=results(rows), params=["method", "beta"])
    assert tc_counterexamples(run) == (2, 4)
    assert tc_counterexamples(RunData(run_dir=tmp_path, results=results(ROWS[:4]), params=["method", "beta"])) == (0, 2)


def test_table1_ordering_tests_each_method_against_the_column_leader(tmp_path):
    # vae's best configuration (beta=4: mig 0.5, 0.7) leads mig; tc (0.1, 0.15, 0.12) and did (0.2, 0.3)
    rows = ROWS[:5] + [(6, "did", "d", math.nan, 1, "COMPLETE", 0.3, 0.08, 1.0),
                       (7, "tc", "d", math.nan, 0, "COMPLETE", 0.1, 0.09, 1.0),
                       (8, "tc", "d", math.nan, 1, "COMPLETE", 0.15, 0.10, 1.0),
                       (9, "tc", "d", math.nan, 2, "COMPLETE", 0.12, 0.11, 1.0)]
    run = RunData(run_dir=tmp_path, results=results(rows), params=["method", "beta"],
                  objectives=[("mig", "maximize")])
    mig = {t.method: t for t in leader_tests(run) if t.score == "mig"}
    assert set(mig) == {"did", "tc"} and {t.leader for t in mig.values()} == {"vae"}
    assert mig["did"].n == 2 and mig["did"].n_leader == 2 and mig["did"].diff == pytest.approx(0.25 - 0.6)
    assert mig["did"].p == pytest.approx(stats.ttest_ind([0.2, 0.3], [0.5, 0.7], equal_var=False).pvalue)
    low, high = sorted([mig["did"].p, mig["tc"].p])
    holm = {low: 2 * low, high: max(2 * low, high)}  # Holm's step-down over the two
    assert all(t.p_holm == pytest.approx(min(1.0, holm[t.p])) for t in mig.values())
    sap = {t.method: t for t in leader_tests(run) if t.score == "sap"}
    # sap's leader is tc (mean 0.10) at the configurations mig picked (vae beta=4: 0.05, 0.07)
    assert {t.leader for t in sap.values()} == {"tc"} and set(sap) == {"vae", "did"}


def test_the_ordering_tests_are_descriptive_where_the_study_added_seeds_in_rounds(tmp_path):
    # a: mig 0.90-0.93, b: 0.10-0.13 over seeds 0-3: Holm p far below 0.05
    rows = [(i, m, "d", math.nan, seed, "COMPLETE", base + seed / 100, 0.01, 1.0)
            for i, ((m, base), seed) in enumerate(itertools.product((("a", 0.9), ("b", 0.1)), range(4)))]
    fixed = RunData(run_dir=tmp_path, results=results(rows), params=["method"], objectives=[("mig", "maximize")])
    assert [t.p_holm < 0.001 for t in leader_tests(fixed) if t.score == "mig"] == [True]
    assert "<b>" in _tests_block(fixed) and "Descriptive only" not in _tests_block(fixed)
    meta = RunMeta(study="s", preset="p", budget="quick", models=["beta_vae"], kind="comparison", source="s.yaml",
                   storage="sqlite://", optuna_study="s", steps=1, eval_protocol="fast", final_protocol="dlib",
                   planned_trials=8, started="", seed_plan={"seeds": [0, 1, 2, 3], "sizes": [2, 4]})
    sequential = RunData(run_dir=tmp_path, meta=meta, results=results(rows), params=["method"],
                         objectives=[("mig", "maximize")])
    block = _tests_block(sequential)
    assert "Descriptive only" in block and "ignores those looks" in block and "<b>" not in block
