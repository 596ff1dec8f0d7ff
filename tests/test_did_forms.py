"""DiD's forms: one name selects the method options, beneath explicit fields and over the presets."""
import dataclasses

import pytest
import yaml

from did_core.models import ConfigError, get_model
from did_core.models.did import Config
from orchestrator.study_file.resolve import load_study
from orchestrator.running.trainable import build_config

# the table of docs/did.md, "DiD's forms"
BROADCAST = dict(g_arch="broadcast", lambda_rec=1.0, view="noise", encoder="critic_head", lambda_enc=0.24,
                 lambda_h=1.34)


def test_form_names_resolve_to_the_documented_fields():
    cfg = Config.from_preset("quick", form="broadcast")
    assert {k: getattr(cfg, k) for k in BROADCAST} == BROADCAST
    assert cfg.contrast_start == cfg.steps // 4 == 375  # the GAN alone for a quarter of the run
    assert Config.from_preset("quick", form="broadcast", steps=6000).contrast_start == 1500
    # explicit fields win over the recipe; the budget preset's stay
    mixed = Config.from_preset("quick", form="broadcast", lambda_h=0.0, contrast_start=10)
    assert (mixed.lambda_h, mixed.contrast_start, mixed.width, mixed.g_arch) == (0.0, 10, 8, "broadcast")
    with pytest.raises(ConfigError, match=r"Config.form: unknown form 'learns'; choose one of \['broadcast', 'paper'\]"):
        Config.from_preset("quick", form="learns")


def test_the_paper_form_is_the_defaults_and_trains_bit_identically():
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    assert {k: defaults[k] for k in Config.FORMS["paper"]} == Config.FORMS["paper"]
    assert set(Config.FORMS["paper"]) == set(Config.FORMS["broadcast"])  # every form names the same fields
    plain = Config.from_preset("smoke", dataset="squares", steps=20, log_every=1, eval_every=0, eval_metrics="mig")
    named = Config.from_preset("smoke", dataset="squares", steps=20, log_every=1, eval_every=0, eval_metrics="mig",
                               form="paper")
    assert plain == named
    train = get_model("did").train
    losses = [[e.losses for e in train(c) if e.kind == "progress"] for c in (plain, named)]
    assert len(losses[0]) == 20 and losses[0] == losses[1]


def test_switching_form_moves_only_the_recipes_untouched_fields():
    broadcast = Config.from_preset("quick", form="broadcast", lambda_h=0.0)
    paper = broadcast.replace(form="paper")
    assert (paper.g_arch, paper.lambda_rec, paper.view, paper.contrast_start) == ("dcgan", 0.0, "raw", 0)
    assert paper.lambda_h == 0.0  # changed from the broadcast recipe's 1.34: kept
    assert paper.replace(form="broadcast").g_arch == "broadcast"
    assert broadcast.replace(lambda_enc=0.5).g_arch == "broadcast"  # no form named: nothing moves


def test_a_checkpoint_of_before_forms_is_the_same_experiment():
    cfg = Config.from_preset("quick")
    older = {k: v for k, v in cfg.to_dict().items() if k != "form"}
    assert cfg.experiment_differences(older) == []
    assert cfg.replace(form="broadcast").experiment_differences(older) != []


def test_a_study_mixes_both_forms_as_arms(tmp_path):
    study = {
        "name": "forms", "kind": "comparison", "datasets": ["squares"],
        "arms": {"did": {"model": "did", "fixed": {"form": "broadcast"}},
                 "did_paper": {"model": "did", "fixed": {"form": "paper"}}},
        "fixed": {"n_latents": 3, "n_compare_dims": 2, "eval_metrics": "mig"},
        "objectives": [{"metric": "mig"}], "resources": {"cpus": 1, "gpus": 0},
    }
    path = tmp_path / "forms.yaml"
    path.write_text(yaml.safe_dump(study))
    resolved = load_study(path, preset="smoke")
    configs = {}
    for arm in resolved.arms:
        trial = {"budget": resolved.budget, "fixed": arm.fixed, "params": {}, "seed": 0}
        configs[arm.label] = build_config(get_model(arm.model), trial)
    assert configs["did"].g_arch == "broadcast" and configs["did"].contrast_start == configs["did"].steps // 4
    assert configs["did_paper"].g_arch == "dcgan" and configs["did_paper"].lambda_rec == 0.0
