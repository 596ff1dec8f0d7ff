"""The VAE baselines train through the model registry: events, run files, resume, reproducibility,
config errors and the published settings."""
import json
import types

import numpy as np
import pytest
import torch
from PIL import Image

from did_core.data import get_dataset
from did_core.metrics.protocols import PROTOCOLS, replace
from did_core.models import ConfigError, available_models, get_model
from did_core.models.vae_trainer import traversal

BASELINES = ["beta_vae", "beta_tcvae", "factor_vae"]
# a small evaluation protocol: these tests check the training plumbing, not the scores
TINY_PROTOCOL = replace("fast", name="tiny", num_train=400, num_test=200, dci_n_estimators=5,
                        factor_vae_batch_size=16, factor_vae_num_variance=400, factor_vae_num_train=20,
                        factor_vae_num_eval=10, beta_vae_batch_size=8, beta_vae_num_train=20, beta_vae_num_eval=10)
TINY = dict(steps=4, log_every=2, eval_every=0, batch_size=8, seed=3, eval_protocol="tiny", final_protocol="tiny")


@pytest.fixture(autouse=True)
def small_and_single_threaded(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setitem(PROTOCOLS, "tiny", TINY_PROTOCOL)


LOSSES = {"beta_vae": {"reconstruction", "kl", "loss"}, "beta_tcvae": {"reconstruction", "kl", "tc", "loss"},
          "factor_vae": {"reconstruction", "kl", "tc", "loss", "loss_discriminator"}}


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_trains_and_writes_its_run_files(name, tmp_path):
    spec = get_model(name)
    events = list(spec.train(spec.config_cls.from_preset("smoke", **TINY), out_dir=tmp_path))
    assert [(e["kind"], e["step"]) for e in events] == [("progress", 2), ("progress", 4), ("final", 4)]
    losses = events[0]["losses"]
    assert set(losses) == LOSSES[name] and all(np.isfinite(list(losses.values())))
    assert events[-1]["protocol"] == "tiny" and "mig" in events[-1]["scores"]
    summary = json.loads((tmp_path / "scores.json").read_text())
    assert summary["model"] == name and summary["step"] == 4 and "mig" in summary["scores"]
    assert json.loads((tmp_path / "config.json").read_text())["batch_size"] == 8
    # 10 latents x 10 traversal steps of 64-pixel images with 2-pixel padding
    assert Image.open(tmp_path / "traversal.png").size == (2 + 10 * 66, 2 + 10 * 66)
    if name == "factor_vae":  # an untrained discriminator is near chance: cross-entropy close to log 2
        assert abs(losses["loss_discriminator"] - np.log(2)) < 0.1


def test_interrupted_run_resumes_to_the_same_numbers(tmp_path):
    spec = get_model("factor_vae")
    cfg = spec.config_cls.from_preset("smoke", **{**TINY, "eval_every": 2})
    whole = list(spec.train(cfg, out_dir=tmp_path / "whole"))
    assert [(e["kind"], e["step"]) for e in whole] == [("progress", 2), ("eval", 2), ("progress", 4), ("final", 4)]
    assert whole[1]["checkpoint"] == str(tmp_path / "whole" / "checkpoint.pt")
    list(spec.train(cfg.replace(steps=2), out_dir=tmp_path / "split"))
    rest = list(spec.train(cfg, out_dir=tmp_path / "split"))
    assert [e["step"] for e in rest] == [4, 4]
    assert rest[0]["losses"] == whole[2]["losses"]
    assert rest[-1]["scores"] == whole[-1]["scores"]


def _progress(name, **overrides):
    """The progress events of a short run, stopped before the final evaluation."""
    spec = get_model(name)
    events = spec.train(spec.config_cls.from_preset("smoke", **{**TINY, **overrides}))
    return [next(events)["losses"] for _ in range(2)]


def test_tcvae_at_beta_one_follows_the_beta_vae_trajectory_exactly():
    tc, vae = _progress("beta_tcvae", beta=1.0), _progress("beta_vae", beta=1.0)
    for a, b in zip(tc, vae):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) and a["kl"] == pytest.approx(b["kl"], rel=1e-6)
    # beta > 1 changes the trajectory after the first update
    assert _progress("beta_tcvae", beta=10.0)[1]["kl"] != pytest.approx(tc[1]["kl"], rel=1e-6)


@pytest.mark.parametrize("name", BASELINES)
def test_colour_images_of_3dshapes_train(name):
    first, second = _progress(name, dataset="shapes3d", steps=2, log_every=1)
    # three channels: the untrained decoder pays about 3 * 64 * 64 * log 2 nats per image
    assert first["reconstruction"] == pytest.approx(3 * 4096 * np.log(2), rel=0.1)
    assert np.isfinite(second["loss"])


def test_same_seed_same_numbers_other_seed_other_numbers():
    a, b = _progress("factor_vae"), _progress("factor_vae")
    assert a == b
    assert _progress("factor_vae", seed=4)[0]["loss"] != a[0]["loss"]


class RecordingDecoder(torch.nn.Module):
    def forward(self, z):
        self.codes = z.clone()
        return torch.zeros(len(z), 1, 64, 64)


def test_traversal_row_i_sweeps_latent_i_around_the_mean_code():
    spec = get_model("beta_vae")
    cfg = spec.config_cls.from_preset("smoke", latent_dim=3, traversal_steps=5, traversal_range=2.0)
    from did_core.models.vae_nets import Encoder

    enc, dec = Encoder(1, 3), RecordingDecoder()
    run = types.SimpleNamespace(dataset=get_dataset("dsprites"), device=torch.device("cpu"))
    grid = traversal(enc, dec, run, cfg)
    assert grid.shape == (3, 5, 1, 64, 64) and torch.all(grid == 0.5)  # sigmoid of zero logits
    codes = dec.codes.view(3, 5, 3)
    base = codes[1, 0, 0]  # latent 0 of a row that does not sweep it
    for i in range(3):
        torch.testing.assert_close(codes[i, :, i], torch.linspace(-2, 2, 5))
        others = [j for j in range(3) if j != i]
        assert torch.all(codes[i, :, others] == codes[i, :1, others])
    assert torch.all(codes[2, :, 0] == base)


@pytest.mark.parametrize("name, field, value", [
    ("beta_vae", "beta", -1.0), ("beta_vae", "latent_dim", 0), ("beta_vae", "adam_beta1", 1.0),
    ("beta_tcvae", "tc_estimator", "exact"), ("beta_tcvae", "dataset_size", -5),
    ("factor_vae", "gamma", -2.0), ("factor_vae", "disc_layers", 0), ("factor_vae", "disc_beta2", 1.5),
])
def test_bad_values_are_refused_naming_the_field(name, field, value):
    with pytest.raises(ConfigError, match=field):
        get_model(name).config_cls.from_dict({field: value})


def test_the_published_settings_are_the_defaults():
    assert set(BASELINES) <= set(available_models())
    for name in BASELINES:
        cfg = get_model(name).config_cls()
        assert (cfg.batch_size, cfg.latent_dim, cfg.lr, cfg.adam_beta1, cfg.adam_beta2) == (64, 10, 1e-4, 0.9, 0.999)
        assert get_model(name).config_cls.from_preset("paper").steps == 300_000
    fv = get_model("factor_vae").config_cls()
    assert (fv.disc_lr, fv.disc_beta1, fv.disc_beta2, fv.disc_hidden, fv.disc_layers) == (1e-4, 0.5, 0.9, 1000, 6)


def test_a_vae_on_a_dataset_of_another_image_size_is_one_error_naming_the_field():
    from did_core.models import ConfigError, get_model

    spec = get_model("beta_vae")
    with pytest.raises(ConfigError, match=r"Config\.dataset: the published VAE nets take 64x64 images; "
                                          r"'squares' has 32x32") as e:
        list(spec.train(spec.config_cls.from_preset("smoke", dataset="squares")))
    assert e.value.field == "dataset"
