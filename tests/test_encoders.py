"""Trained encoders you can load: ``did_core.load_encoder(trial_dir)`` and ``python -m did_core.encode``.

One smoke trial per built-in model family (DiD in both forms, the three VAE baselines, PartedVAE,
V3) is trained once for the module, scored at the end on ``mig``, ``sap`` and ``gaussian_tc``
(``fast``, as the smoke preset); the example plugin's model is trained, encoded and scored through
the commands with the plugin installed. The round trip ``encode --evaluation-images`` → ``encode``
→ ``python -m did_core.metrics`` must give each trial's recorded scores exactly: the same images
and the same codes (Gaussian TC is a continuous function of every code; SAP scores the test codes).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import did_core
from did_core.encode import main as encode_main
from did_core.data import get_dataset
from did_core.encoders import TrialEncoder, TrialError, load_encoder
from did_core.metrics.__main__ import main as metrics_main
from did_core.models import ModelSpec, get_model

ROOT = Path(__file__).resolve().parent.parent
METRICS = "mig,sap,gaussian_tc"
# family -> (model, config overrides, the size of its codes)
FAMILIES = {
    "did": ("did", {}, 10),  # n_latents
    "did_broadcast": ("did", {"form": "broadcast"}, 10),  # E is the critic's code head
    "beta_vae": ("beta_vae", {}, 10),  # latent_dim
    "beta_tcvae": ("beta_tcvae", {}, 10),
    "factor_vae": ("factor_vae", {}, 10),
    "parted_vae": ("parted_vae", {}, 6),  # z_dim 5 + u_dim 1 for its one class factor (shape)
    "v3": ("v3", {}, None),  # content_dim + style_dim, read from its config
}


@pytest.fixture(scope="module")
def trials(tmp_path_factory) -> dict[str, Path]:
    """A finished smoke trial folder per family (trained here, in this process, on one thread)."""
    root = tmp_path_factory.mktemp("trials")
    out = {}
    for family, (model, overrides, _) in FAMILIES.items():
        spec = get_model(model)
        cfg = spec.config_cls.from_preset("smoke", eval_every=0, eval_metrics=METRICS, num_threads=1, **overrides)
        for _ in spec.train(cfg, out_dir=root / family, resume=False):
            pass
        out[family] = root / family
    return out


def recorded(trial: Path) -> dict:
    return json.loads((trial / "scores.json").read_text())


def config_of(trial: Path) -> dict:
    return json.loads((trial / "config.json").read_text())


@pytest.fixture(scope="module")
def samples(trials, tmp_path_factory) -> dict[tuple, Path]:
    """The final evaluations' images, written by ``encode --evaluation-images``: once per (dataset,
    seed, protocol), which is what the sample depends on (six of the trials share dSprites, seed 0)."""
    root = tmp_path_factory.mktemp("samples")
    out = {}
    for family, trial in trials.items():
        key = sample_key(trial)
        if key not in out:
            out[key] = root / f"{family}.npz"
            assert encode_main([str(trial), "--evaluation-images", str(out[key])]) == 0
    return out


def sample_key(trial: Path) -> tuple:
    cfg = config_of(trial)
    return cfg["dataset"], cfg["seed"], recorded(trial)["protocol"]


def scores_of(codes: Path, protocol: str, seed: int, metrics: str, capsys) -> dict[str, float]:
    capsys.readouterr()
    assert metrics_main([str(codes), "--protocol", protocol, "--seed", str(seed), "--metrics", metrics,
                         "--json", "--n-jobs", "1"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_encode_then_metrics_gives_the_trials_scores(family, trials, samples, tmp_path, capsys):
    trial = trials[family]
    summary, cfg = recorded(trial), config_of(trial)
    codes = tmp_path / "codes.npz"
    assert encode_main([str(trial), str(samples[sample_key(trial)]), "--out", str(codes)]) == 0
    with np.load(codes) as arrays:
        assert sorted(arrays.files) == ["codes", "codes_test", "factors", "factors_test"]
        width = FAMILIES[family][2] or cfg["content_dim"] + cfg["style_dim"]
        assert arrays["codes"].shape == (10_000, width) and arrays["codes_test"].shape == (1_500, width)
        assert np.isfinite(arrays["codes"]).all() and arrays["codes"].std(axis=0).max() > 0
    scores = scores_of(codes, summary["protocol"], cfg["seed"], METRICS, capsys)
    print(family, {k: summary["scores"][k] for k in METRICS.split(",")})
    assert scores == {k: summary["scores"][k] for k in METRICS.split(",")}  # exactly: the same codes


def test_the_example_plugins_encoder_round_trips_through_the_commands(tmp_path):
    site = tmp_path / "site"
    source = shutil.copytree(ROOT / "examples" / "ae_plugin", tmp_path / "src")
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(site), str(source)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ["PYTHONPATH"]])}

    def run(*args: str) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        return p

    trial, images, codes = tmp_path / "ae", tmp_path / "eval.npz", tmp_path / "codes.npz"
    run("did_core.train", "--model", "plain_ae", "--preset", "smoke", "--out", str(trial), "--set", "eval_every=0",
        "--set", "num_threads=1")
    run("did_core.encode", str(trial), "--evaluation-images", str(images))
    run("did_core.encode", str(trial), str(images), "--out", str(codes))
    summary = recorded(trial)
    metrics = config_of(trial)["eval_metrics"]
    assert summary["model"] == "plain_ae" and metrics == "mig,gaussian_tc"  # the plugin's smoke preset
    scores = json.loads(run("did_core.metrics", str(codes), "--protocol", summary["protocol"], "--metrics", metrics,
                            "--json").stdout)
    print("plain_ae", scores)
    assert scores == {k: summary["scores"][k] for k in metrics.split(",")}
    with np.load(codes) as arrays:
        assert arrays["codes"].shape == (10_000, 4)  # latent_dim


def test_the_encoder_is_a_module_for_any_batch(trials):
    trial = trials["did"]
    before = torch.get_rng_state()
    encoder = did_core.load_encoder(trial)  # the package-level name
    assert torch.equal(torch.get_rng_state(), before)  # building the nets left torch's RNG alone
    assert isinstance(encoder, TrialEncoder) and isinstance(encoder, torch.nn.Module)
    assert encoder.model == "did" and encoder.image_shape == (1, 64, 64) and not encoder.training
    assert all(not p.requires_grad for p in encoder.parameters())
    dataset = get_dataset("dsprites")
    images = dataset.images(dataset.sample_factors(1100, np.random.default_rng(0))).numpy()  # > one batch of 1024
    codes = encoder(images)  # a numpy array works as a tensor does
    assert codes.dtype == torch.float32 and codes.shape == (1100, 10)
    assert torch.equal(encoder(torch.from_numpy(images[:1024])), codes[:1024])  # the same batch: the same codes
    assert torch.allclose(encoder(images[1024:1027]), codes[1024:1027], rtol=1e-5, atol=1e-6)
    assert encoder(images[:0]).shape == (0, 10)
    with pytest.raises(ValueError, match=r"images must be floats \[n, 1, 64, 64\] as dataset 'dsprites' yields them, "
                                         r"got torch.float32 \[2, 3, 64, 64\]"):
        encoder(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="got torch.uint8"):
        encoder(torch.zeros(2, 1, 64, 64, dtype=torch.uint8))


def copy_trial(trial: Path, to: Path) -> Path:
    return Path(shutil.copytree(trial, to))


def test_a_folder_that_is_not_a_trial_is_one_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a trial")
    with pytest.raises(TrialError) as err:
        load_encoder(tmp_path)
    assert str(err.value) == (f"{tmp_path}: not a finished trial folder (no scores.json, config.json, checkpoint.pt; "
                              "a run writes scores.json, config.json and checkpoint.pt when it ends)")
    with pytest.raises(TrialError, match="no such folder"):
        load_encoder(tmp_path / "absent")
    assert encode_main([str(tmp_path), str(tmp_path / "x.npz"), "--out", str(tmp_path / "c.npz")]) == 2
    err_text = capsys.readouterr().err
    assert err_text.startswith(f"error: {tmp_path}: not a finished trial folder") and "Traceback" not in err_text


def test_a_truncated_checkpoint_is_one_error_naming_it(trials, tmp_path, capsys):
    trial = copy_trial(trials["beta_vae"], tmp_path / "t")
    data = (trial / "checkpoint.pt").read_bytes()
    (trial / "checkpoint.pt").write_bytes(data[:len(data) // 2])
    with pytest.raises(TrialError, match=rf"^{trial / 'checkpoint.pt'}: not a readable checkpoint \("):
        load_encoder(trial)
    assert encode_main([str(trial), "--evaluation-images", str(tmp_path / "e.npz")]) == 0  # JSON only: still fine
    assert encode_main([str(trial), str(tmp_path / "e.npz"), "--out", str(tmp_path / "c.npz")]) == 2
    err_text = capsys.readouterr().err
    assert f"error: {trial / 'checkpoint.pt'}: not a readable checkpoint" in err_text and "Traceback" not in err_text
    assert not (tmp_path / "c.npz").exists()


def test_a_checkpoint_of_another_model_or_run_is_one_error(trials, tmp_path):
    trial = copy_trial(trials["beta_tcvae"], tmp_path / "tc")
    shutil.copy(trials["beta_vae"] / "checkpoint.pt", trial / "checkpoint.pt")  # the same nets, another model
    with pytest.raises(TrialError) as err:
        load_encoder(trial)
    assert str(err.value) == (f"{trial / 'checkpoint.pt'}: a checkpoint of model 'beta_vae', but the trial's "
                              "scores.json says 'beta_tcvae'")
    trial = copy_trial(trials["did"], tmp_path / "did")
    shutil.copy(trials["did_broadcast"] / "checkpoint.pt", trial / "checkpoint.pt")  # DiD, the other form
    with pytest.raises(TrialError, match=rf"^{trial / 'checkpoint.pt'}: written by another run than "
                                         rf"{trial / 'config.json'} \(contrast_start: 5 -> 0, encoder: 'critic_head' "
                                         r"-> 'separate', form: 'broadcast' -> 'paper'"):
        load_encoder(trial)


def test_a_checkpoint_of_another_version_is_one_error(trials, tmp_path):
    """Nets that do not fit this version's (here: an encoder layer of another size, as a newer
    version's might be) are refused naming the file and the version that wrote it."""
    trial = copy_trial(trials["beta_vae"], tmp_path / "t")
    state = torch.load(trial / "checkpoint.pt", weights_only=True)
    state["extra"]["did_core"] = "0.0.1"
    state["nets"]["encoder"] = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) if v.ndim else v
                                for k, v in state["nets"]["encoder"].items()}
    torch.save(state, trial / "checkpoint.pt")
    with pytest.raises(TrialError) as err:
        load_encoder(trial)
    assert str(err.value) == (
        f"{trial / 'checkpoint.pt'}: does not fit this model (Error(s) in loading state_dict for Encoder: size mismatch "
        "for trunk.0.weight: copying a param with shape torch.Size([33, 1, 4, 4]) from checkpoint, the shape in current "
        f"model is torch.Size([32, 1, 4, 4]). ... (13 more) (written by did_core 0.0.1; this is {did_core.__version__})")
    trial = copy_trial(trials["beta_vae"], tmp_path / "newer")  # a config field this version does not know
    (trial / "config.json").write_text(json.dumps({**config_of(trial), "beta_schedule": "cosine"}))
    with pytest.raises(TrialError, match=rf"^{trial / 'config.json'}: cannot be read as a 'beta_vae' config "
                                         r"\(Config: unknown field\(s\) \['beta_schedule'\]; known fields are \["):
        load_encoder(trial)


def test_images_of_another_shape_are_one_error_naming_the_file(trials, tmp_path, capsys):
    images = tmp_path / "rgb.npz"
    np.savez(images, images=np.zeros((3, 3, 64, 64), np.float32))
    assert encode_main([str(trials["beta_vae"]), str(images), "--out", str(tmp_path / "c.npz")]) == 2
    assert capsys.readouterr().err == (f"error: {images}: 'images': images must be floats [n, 1, 64, 64] as dataset "
                                       "'dsprites' yields them, got torch.float32 [3, 3, 64, 64]\n")


def test_a_model_spec_checks_its_encoder_hook():
    spec = get_model("beta_vae")
    assert spec.encoder is not None and all(get_model(m).encoder is not None for m in
                                            ("did", "beta_tcvae", "factor_vae", "parted_vae", "v3"))
    with pytest.raises(TypeError, match=r"model 'beta_vae': load_encoder must be a function load_encoder\(checkpoint, "
                                        r"device='cpu'\) returning a torch module"):
        ModelSpec(name="beta_vae", config_cls=spec.config_cls, train=spec.train, encoder=lambda: None)


def test_a_model_without_an_encoder_hook_is_one_error(tmp_path):
    from toy import Config
    from toy_cli import toy_registered

    (tmp_path / "scores.json").write_text(json.dumps({"model": "toy", "protocol": "fast", "scores": {}}))
    (tmp_path / "config.json").write_text(json.dumps(Config.from_preset("smoke").to_dict()))
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with toy_registered(), pytest.raises(TrialError) as err:
        load_encoder(tmp_path)
    assert str(err.value) == (f"{tmp_path}: model 'toy' (tests) has no encoder hook (a load_encoder function in its "
                              "module, docs/extending.md)")
