"""Entry-point plugins (did_core/plugins.py): the built-ins are the entry points pyproject.toml
declares; an installed package's model, dataset or metric resolves like a built-in; a clash, an
import error or a broken contract is one error naming the plugin and its package; a study file
resolves only registered names. The packages here are dist-info folders on sys.path, which is all
importlib.metadata reads (tests/test_example_plugin.py installs a real one with pip)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from did_core.data import BUILT_IN_DATASETS, DATASETS, available_datasets, get_dataset
from did_core.metrics.registry import BUILT_IN_METRICS, METRICS
from did_core.models import BUILT_IN_MODELS, MODELS, ConfigError, PluginError, available_models, get_model
from did_core.plugins import DATASET_GROUP, METRIC_GROUP, MODEL_GROUP
from orchestrator.study_file.resolve import parse_study
from orchestrator.study_file import StudyError

ROOT = Path(__file__).resolve().parent.parent
MODEL = """
from dataclasses import dataclass
from typing import ClassVar
from did_core.models import Final, TrainConfig

@dataclass
class Config(TrainConfig):
    model: ClassVar[str] = "{name}"
    width: int = 3

def train(config, out_dir=None, resume=True):
    yield Final(step=config.steps, protocol=config.final_protocol, scores={{"mig": 0.5}})
"""
STUDY = {"name": "p", "search": {"sampler": "grid", "space": {"steps": {"type": "int", "low": 1, "high": 2}}},
         "objectives": [{"metric": "mig"}]}


def install(site: Path, package: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]) -> None:
    """What pip leaves behind for ``package``: its modules and a dist-info with its entry points."""
    info = site / f"{package.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n" for group, eps in entry_points.items()))
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for installed packages; the registries read it afresh, and forget it after."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    monkeypatch.undo()
    for registry in (MODELS, DATASETS):
        registry.reload()


def reload():
    for registry in (MODELS, DATASETS):
        registry.reload()


def test_the_built_ins_are_the_entry_points_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared[MODEL_GROUP] == BUILT_IN_MODELS
    assert declared[DATASET_GROUP] == BUILT_IN_DATASETS
    assert declared[METRIC_GROUP] == BUILT_IN_METRICS
    assert set(available_models()) == set(BUILT_IN_MODELS) and set(available_datasets()) == set(BUILT_IN_DATASETS)
    assert {get_model(name).package for name in BUILT_IN_MODELS} == {"did-orchestrator"}
    assert all(METRICS.get(name) for name in BUILT_IN_METRICS)


def test_an_installed_model_and_dataset_resolve_like_built_ins(site):
    # the project's own metadata, once installed, declares the built-ins again: not a clash
    install(site, "did-orchestrator", {MODEL_GROUP: {"did": "did_core.models.did"}}, {})
    install(site, "my-pkg", {MODEL_GROUP: {"my_vae": "my_vae_mod"},
                             DATASET_GROUP: {"my_squares": "my_data_mod:Mine"}},
            {"my_vae_mod": MODEL.format(name="my_vae"),
             "my_data_mod": "from did_core.data.squares import Squares\nclass Mine(Squares):\n    name = 'my_squares'\n"})
    reload()
    assert "my_vae" in available_models() and "my_squares" in available_datasets()
    spec = get_model("my_vae")
    assert spec.package == "my-pkg 0.1" and spec.config_cls.__module__ == "my_vae_mod"
    with pytest.raises(ConfigError, match=r"Config.width: 'x' is not a valid int"):
        spec.config_cls.from_preset("smoke", width="x")  # a plugin's Config names the field like a built-in's
    assert [e.kind for e in spec.train(spec.config_cls.from_preset("smoke", dataset="my_squares"))] == ["final"]
    assert get_dataset("my_squares").factor_names == ("size", "posX", "posY")
    study = parse_study({**STUDY, "model": "my_vae", "dataset": "my_squares"}, "smoke")
    assert study.models == ["my_vae"] and study.fixed["dataset"] == "my_squares"


@pytest.mark.parametrize("entry_points, modules, expected", [
    ({MODEL_GROUP: {"did": "their_did"}}, {"their_did": MODEL.format(name="did")},
     r"model name 'did' is declared twice, by plugin 'did' \(did_core.models.did\) of package did-orchestrator "
     r"and by plugin 'did' \(their_did\) of package other-pkg 0.1; uninstall one of the packages"),
    ({MODEL_GROUP: {"bad_ae": "bad_ae_mod"}}, {"bad_ae_mod": "import no_such_dependency_xyz\n"},
     r"plugin 'bad_ae' \(bad_ae_mod\) of package other-pkg 0.1: cannot be imported \(ModuleNotFoundError: "
     r"No module named 'no_such_dependency_xyz'\)"),
    ({MODEL_GROUP: {"half_ae": "half_ae_mod"}}, {"half_ae_mod": "class Config: pass\n"},
     r"plugin 'half_ae' \(half_ae_mod\) of package other-pkg 0.1: module half_ae_mod lacks train"),
    ({MODEL_GROUP: {"dict_ae": "dict_ae_mod"}}, {"dict_ae_mod": "Config = dict\ndef train(c, out_dir=None, resume=True): ...\n"},
     r"plugin 'dict_ae' \(dict_ae_mod\) of package other-pkg 0.1: Config must be a subclass of "
     r"did_core.models.TrainConfig, got 'dict'"),
    ({MODEL_GROUP: {"args_ae": "args_ae_mod"}},
     {"args_ae_mod": MODEL.format(name="args_ae").replace("def train(config, out_dir=None, resume=True)", "def train(config)")},
     r"plugin 'args_ae' \(args_ae_mod\) of package other-pkg 0.1: train must be a function "
     r"train\(config, out_dir=None, resume=True\)"),
])
def test_a_broken_model_plugin_is_one_error_naming_it_and_its_package(site, entry_points, modules, expected):
    install(site, "other-pkg", entry_points, modules)
    reload()
    name = next(iter(entry_points[MODEL_GROUP]))
    with pytest.raises(PluginError, match=expected):
        get_model(name)
    with pytest.raises(StudyError, match="<study>: model: " + expected):  # before anything runs
        parse_study({**STUDY, "model": name}, "smoke")


def test_a_broken_dataset_plugin_is_one_error(site):
    install(site, "data-pkg", {DATASET_GROUP: {"not_data": "not_data_mod:Thing", "half": "not_data_mod:Half"}},
            {"not_data_mod": "from did_core.data import GroundTruthDataset\nclass Thing: pass\n"
                             "class Half(GroundTruthDataset):\n    source = 'procedural'\n"})
    reload()
    with pytest.raises(PluginError, match=r"plugin 'not_data' \(not_data_mod:Thing\) of package data-pkg 0.1: must "
                                          r"name a GroundTruthDataset subclass or a DatasetSpec, got type"):
        get_dataset("not_data")
    with pytest.raises(PluginError, match=r"plugin 'half' .* data-pkg 0.1: Half does not implement \['images'\]"):
        get_dataset("half")
    with pytest.raises(StudyError, match=r"<study>: dataset: plugin 'half' .* does not implement"):  # before anything runs
        parse_study({**STUDY, "model": "beta_vae", "dataset": "half"}, "smoke")


def test_a_metric_plugin_registers_its_scores_and_a_clash_names_it(tmp_path):
    """In a fresh process, since the metric registry is read once per process."""
    install(tmp_path, "metric-pkg", {METRIC_GROUP: {"spread": "spread_mod:SPREAD"}}, {"spread_mod": """
        from did_core.metrics.registry import CODES, Metric
        SPREAD = Metric("spread", {"spread": "minimize"}, CODES, compute=lambda z, y, zt, yt, p, s: {"spread": 0.0})
    """})
    code = "from did_core.metrics import directions; print(directions()['spread'])"
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "minimize", p.stderr[-2000:]
    (tmp_path / "spread_mod.py").write_text(
        "from did_core.metrics.registry import MODEL, Metric\nSPREAD = Metric('spread', {'mig': 'maximize'}, MODEL)\n")
    code = ("from did_core.metrics.registry import broken_metrics, directions\n"
            "print(directions()['mig'], broken_metrics()['spread'])")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]  # the clash disables the plugin, not the registry
    assert p.stdout.strip() == ("maximize plugin 'spread' (spread_mod:SPREAD) of package metric-pkg 0.1: metric "
                                "'spread': score name 'mig' belongs to plugin 'mig' (did_core.metrics.builtin:MIG) of "
                                "package did-orchestrator, not to plugin 'spread' (spread_mod:SPREAD) of package "
                                "metric-pkg 0.1")


def test_a_study_resolves_only_registered_names():
    for model in ("tests.toy", "os.path", "did_core.models.did"):  # modules are never imported by name
        with pytest.raises(StudyError, match=f"model: unknown model {model!r}; registered models are"):
            parse_study({**STUDY, "model": model}, "smoke")
    with pytest.raises(StudyError, match=r"dataset: unknown dataset\(s\) \['os:system'\]"):
        parse_study({**STUDY, "model": "beta_vae", "dataset": "os:system"}, "smoke")


def test_added_at_run_time_goes_through_the_same_checks():
    MODELS.add("late_ae", "no_such_module_abc")
    try:
        with pytest.raises(PluginError, match=r"plugin 'late_ae' \(no_such_module_abc\) of package \(registered at run "
                                              r"time\): cannot be imported"):
            get_model("late_ae")
        with pytest.raises(PluginError, match="model name 'did' is declared twice"):
            MODELS.add("did", "somewhere_else")
        assert "did" in available_models()  # the refused one left nothing behind
    finally:
        MODELS.remove("late_ae")
