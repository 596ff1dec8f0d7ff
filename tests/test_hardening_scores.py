"""Issue 44, points 1-4: a metric or model plugin cannot falsify scores, and one broken plugin
disables itself only. Each metric case runs in a fresh process (the metric registry is read once
per process), with the plugin installed as a dist-info folder on its PYTHONPATH as pip would
leave it (tests/test_plugins.py's ``install``)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from did_core.models import MODELS, PluginError, get_model
from did_core.plugins import METRIC_GROUP, MODEL_GROUP
from orchestrator.study_file.resolve import parse_study
from test_plugins import MODEL, STUDY, install
from test_plugins import site  # noqa: F401  (the fixture: a folder on sys.path for installed packages)

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
METRIC = """
import numpy as np
from did_core.metrics.registry import CODES, Metric
def _compute(z, y, zt, yt, protocol, seed):
    return {result}
METRIC = Metric("{name}", {scores}, CODES, compute=_compute)
"""


def metric_pkg(site: Path, package: str, name: str, scores: dict, result: str) -> None:
    install(site, package, {METRIC_GROUP: {name: f"{name}_mod:METRIC"}},
            {f"{name}_mod": METRIC.format(name=name, scores=scores, result=result)})


def python(site: Path, code: str, *args, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": f"{site}:{TESTS}:{ROOT}", "PATH": "/usr/bin:/bin", "RAY_AUTH_MODE": "token",
           "HOME": str(site)}
    return subprocess.run([sys.executable, *(["-c", textwrap.dedent(code)] if code else []), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=timeout, cwd=site)


SCORE_OF = """
import numpy as np
from did_core.metrics import scores_from_codes
rng = np.random.default_rng(0)
y = rng.integers(0, 4, size=(300, 2)); z = y + 0.3 * rng.normal(size=y.shape)
try:
    print(dict(scores_from_codes(z, y, metrics={metrics!r}, n_jobs=1)))
except Exception as e:
    print(type(e).__name__, e)
"""


# ---- 1. a metric's results are exactly the scores it declares --------------------------------------

def test_a_metric_that_returns_an_undeclared_built_in_score_is_one_error_naming_it(tmp_path):
    metric_pkg(tmp_path, "sneaky-pkg", "sneaky", {"sneaky": "maximize"}, "{'sneaky': 0.5, 'mig': 99.0}")
    p = python(tmp_path, SCORE_OF.format(metrics="mig,sneaky"))
    assert p.returncode == 0, p.stderr[-2000:]
    assert "99.0" not in p.stdout, "the plugin's 'mig' replaced the built-in one"
    assert p.stdout.startswith("MetricResultError plugin 'sneaky' (sneaky_mod:METRIC) of package sneaky-pkg 0.1: "
                               "metric 'sneaky' returned the undeclared score(s) ['mig']"), p.stdout


# ---- 2. score names may not be the run folder's columns -------------------------------------------

@pytest.mark.parametrize("score", ["trial", "seed", "status", "params_x", "error", "udr_lasso"])
def test_a_score_named_like_a_run_folder_column_is_refused_at_registration(tmp_path, score):
    metric_pkg(tmp_path, "cols-pkg", "cols", {score: "maximize"}, f"{{{score!r}: 1.0}}")
    p = python(tmp_path, """
        from did_core.metrics.registry import broken_metrics, directions
        print("registered" if "cols" in directions() or %r in directions() else "refused")
        print(broken_metrics()["cols"])
    """ % score)
    assert p.returncode == 0, p.stderr[-2000:]
    refused, error = p.stdout.splitlines()[:2]
    assert refused == "refused"
    assert error == (f"plugin 'cols' (cols_mod:METRIC) of package cols-pkg 0.1: metric 'cols': score name {score!r} "
                     "is a column of the run folder's tables (results.csv, curves.csv, selection.csv) or has its "
                     "form; choose another name")


def test_results_csv_keeps_its_own_columns_whatever_a_trial_reports(tmp_path):
    """A model's final scores cannot overwrite trial, seed, status or a parameter either."""
    import optuna
    from optuna.distributions import FloatDistribution

    from orchestrator.run_folder.tables import results_table

    ostudy = optuna.create_study()
    trial = optuna.trial.create_trial(params={"x": 0.3}, distributions={"x": FloatDistribution(0, 1)}, value=0.5,
                                      user_attrs={"seed": 1, "config_id": 0, "scores": {
                                          "mig": 0.5, "trial": 77, "seed": 9, "status": "FAIL", "params_x": 5.0}})
    ostudy.add_trial(trial)
    row = results_table(ostudy).iloc[0]
    assert (row["trial"], row["seed"], row["status"], row["params_x"], row["mig"]) == (0, 1, "COMPLETE", 0.3, 0.5)


# ---- 3. one broken plugin disables itself, not the others ------------------------------------------

def test_a_broken_metric_plugin_disables_only_itself(tmp_path):
    install(tmp_path, "broken-pkg", {METRIC_GROUP: {"broken": "broken_mod:METRIC", "notametric": "broken_mod:X",
                                                    "clash": "clash_mod:METRIC"}},
            {"broken_mod": "import no_such_dependency_xyz\n",
             "clash_mod": METRIC.format(name="clash", scores={"dci_disentanglement": "maximize"}, result="{}")})
    metric_pkg(tmp_path, "good-pkg", "good", {"good": "maximize"}, "{'good': float(np.std(z))}")
    p = python(tmp_path, """
        from did_core.metrics.registry import broken_metrics, get_metric, metric_names
        from did_core.models import get_model
        from orchestrator.study_file.listing import list_everything
        print(sorted(broken_metrics()))
        print("good" in metric_names() and "mig" in metric_names())
        print(get_model("beta_vae").name)
        for name in ("broken", "clash"):
            try:
                get_metric(name)
            except Exception as e:
                print(type(e).__name__, e)
        lines = []
        list_everything(lines.append)
        print([l.split()[0] for l in lines if "BROKEN" in l])
        from orchestrator.study_file.resolve import parse_study
        study = {"name": "p", "model": "beta_vae", "objectives": [{"metric": "mig"}], "fixed": {"eval_metrics": "mig"},
                 "search": {"sampler": "grid", "space": {"steps": {"type": "int", "low": 1, "high": 2}}}}
        print(parse_study(study, "smoke").models)
        try:
            parse_study({**study, "fixed": {"eval_metrics": "mig,broken"}}, "smoke")
        except Exception as e:
            print(type(e).__name__, e)
    """)
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout.splitlines()
    assert out[0] == "['broken', 'clash', 'notametric']"
    assert out[1:3] == ["True", "beta_vae"]
    assert out[3].startswith("PluginError plugin 'broken' (broken_mod:METRIC) of package broken-pkg 0.1: cannot be "
                             "imported (ModuleNotFoundError")
    assert out[4] == ("PluginError plugin 'clash' (clash_mod:METRIC) of package broken-pkg 0.1: metric 'clash': score "
                      "name 'dci_disentanglement' belongs to plugin 'dci' (did_core.metrics.builtin:DCI) of package "
                      "did-orchestrator, not to plugin 'clash' (clash_mod:METRIC) of package broken-pkg 0.1")
    assert sorted(eval(out[5])) == ['broken', 'clash', 'notametric']
    assert out[6] == "['beta_vae']"  # a study that does not use a broken plugin runs
    assert out[7].startswith("StudyError <study>: fixed.eval_metrics: ") and "plugin 'broken' (broken_mod:METRIC) " \
        "of package broken-pkg 0.1: cannot be imported" in out[7], out[7]  # one that does: the plugin's error  # the models and the other metrics are fine


def test_two_plugins_declaring_one_score_are_one_error_naming_both(tmp_path):
    metric_pkg(tmp_path, "a-pkg", "first", {"shared": "maximize"}, "{'shared': 1.0}")
    metric_pkg(tmp_path, "b-pkg", "second", {"shared": "minimize"}, "{'shared': 1.0}")
    p = python(tmp_path, """
        from did_core.metrics.registry import broken_metrics
        print(broken_metrics()["second"])
    """)
    assert p.stdout.strip() == ("plugin 'second' (second_mod:METRIC) of package b-pkg 0.1: metric 'second': score name "
                                "'shared' belongs to plugin 'first' (first_mod:METRIC) of package a-pkg 0.1, not to "
                                "plugin 'second' (second_mod:METRIC) of package b-pkg 0.1"), p.stderr[-2000:]


def test_a_model_name_clash_blocks_only_studies_of_that_model(site):
    install(site, "clash-pkg", {MODEL_GROUP: {"did": "their_did"}}, {"their_did": MODEL.format(name="did")})
    MODELS.reload()
    assert get_model("beta_vae").name == "beta_vae"
    assert parse_study({**STUDY, "model": "beta_vae"}, "smoke").models == ["beta_vae"]
    with pytest.raises(PluginError, match=r"model name 'did' is declared twice, by plugin 'did' "
                                          r"\(did_core.models.did\) of package did-orchestrator and by plugin 'did' "
                                          r"\(their_did\) of package clash-pkg 0.1"):
        get_model("did")


def test_a_plugins_bad_presets_are_the_plugins_error_not_the_studys(site):
    source = MODEL.format(name="preset_ae").replace("    width: int = 3\n", "    width: int = 3\n    PRESETS: ClassVar[dict] = {'smoke': {'steps': 'many'}}\n")
    install(site, "preset-pkg", {MODEL_GROUP: {"preset_ae": "preset_ae_mod"}}, {"preset_ae_mod": source})
    MODELS.reload()
    expected = (r"plugin 'preset_ae' \(preset_ae_mod\) of package preset-pkg 0.1: Config.PRESETS\['smoke'\]: .*steps")
    with pytest.raises(PluginError, match=expected):
        get_model("preset_ae")
    with pytest.raises(Exception, match="<study>: model: " + expected):
        parse_study({**STUDY, "model": "preset_ae"}, "smoke")


# ---- 4. a wrong return type, or a train that is not a generator ------------------------------------

@pytest.mark.parametrize("result, said", [("'high'", "returned 'odd' = str, not a number"),
                                          ("None", "returned 'odd' = NoneType, not a number"),
                                          ("np.zeros(3)", "returned 'odd' = ndarray of shape (3,), not a number"),
                                          ("[('odd', 1.0)]", "returned list, not a dict of scores")])
def test_a_metric_of_the_wrong_return_type_is_one_error_naming_it(tmp_path, result, said):
    metric_pkg(tmp_path, "odd-pkg", "odd", {"odd": "maximize"},
               result if result.startswith("[") else f"{{'odd': {result}}}")
    p = python(tmp_path, SCORE_OF.format(metrics="odd"))
    assert p.stdout.strip() == (f"MetricResultError plugin 'odd' (odd_mod:METRIC) of package odd-pkg 0.1: metric "
                                f"'odd' {said}; it declares the scores ['odd'], each a number"), p.stderr[-2000:]


def test_the_metrics_cli_says_a_metric_returned_an_array_without_a_traceback(tmp_path):
    metric_pkg(tmp_path, "arr-pkg", "arr", {"arr": "maximize"}, "{'arr': np.zeros(3)}")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=(300, 2))
    np.savez(tmp_path / "codes.npz", codes=y + 0.3 * rng.normal(size=y.shape), factors=y)
    p = python(tmp_path, "", "-m", "did_core.metrics", tmp_path / "codes.npz", "--metrics", "arr", "--n-jobs", "1")
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.stderr.strip() == ("error: plugin 'arr' (arr_mod:METRIC) of package arr-pkg 0.1: metric 'arr' returned "
                                "'arr' = ndarray of shape (3,), not a number; it declares the scores ['arr'], each a "
                                "number")


def test_a_train_that_is_not_a_generator_is_refused_at_the_check(site):
    source = MODEL.format(name="list_ae").replace("    yield Final(", "    return [Final(").replace(
        '{"mig": 0.5})', '{"mig": 0.5})]')
    install(site, "list-pkg", {MODEL_GROUP: {"list_ae": "list_ae_mod"}}, {"list_ae_mod": source})
    MODELS.reload()
    with pytest.raises(PluginError, match=r"plugin 'list_ae' \(list_ae_mod\) of package list-pkg 0.1: train must be "
                                          r"a generator function .*yielding Progress / Eval / Final"):
        get_model("list_ae")


def test_a_study_whose_metric_returns_the_wrong_type_stops_with_one_error_and_exit_2(tmp_path):
    """The toy model scores its ``eval_metrics`` with the evaluation driver, in Ray's workers."""
    metric_pkg(tmp_path, "bad-pkg", "bad_type", {"bad_type": "maximize"}, "{'bad_type': 'high'}")
    study = {"name": "badtype", "model": "toy", "objectives": [{"metric": "mig"}],
             "fixed": {"eval_metrics": "mig,bad_type"},
             "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 2}}},
             "resources": {"cpus": 1, "gpus": 0}, "max_concurrent": 1}
    (tmp_path / "badtype.yaml").write_text(yaml.safe_dump(study))
    p = python(tmp_path, "", TESTS / "toy_cli.py", tmp_path / "badtype.yaml", "--out", tmp_path / "run",
               "--no-select", timeout=300)
    assert p.returncode == 2, p.stdout[-2000:] + p.stderr[-3000:]
    errors = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: plugin 'bad_type' (bad_type_mod:METRIC) of package bad-pkg 0.1: metric 'bad_type' "
                      "returned 'bad_type' = str, not a number; it declares the scores ['bad_type'], each a number; "
                      "the study stops (finished trials are kept, the running ones run again once the plugin is "
                      "fixed)"], p.stderr[-3000:]
    assert "Traceback" not in p.stderr
