"""DiD training end to end on tiny nets: learning signals, resume, divergence, the CLI."""
import json
import subprocess
import sys

import pytest
import torch

from did_core.checkpoint import load_checkpoint
from did_core.models import ConfigError, TrainingDiverged, get_model
from did_core.models.did import Config, train
from did_core.models.did.diagnostics import DIAGNOSTICS
from did_core.models.did.losses import infonce_loss
from did_core.models.did.nets import DifferenceEncoder, Generator
from did_core.models.did.sample_generation import order_pairs, sample_codes, sample_moves
from did_core.models.did.trainer import build_nets

torch.set_num_threads(1)

# tiny, cheap, and scored with MIG only so that every evaluation takes about a second
TINY = dict(width=4, embed_dim=16, batch_size=8, n_critic=1, n_latents=4, n_compare_dims=2,
            eval_metrics="mig", final_protocol="fast", num_threads=1)


def encoder_error(nets, n_latents: int) -> float:
    """Mean squared error of E(G(c)) against c on fixed codes (3 * 1/3 per latent = chance for E = 0)."""
    c = sample_codes(512, n_latents, torch.Generator().manual_seed(123))
    for m in nets.values():
        m.eval()
    with torch.no_grad():
        return ((nets["E"](nets["G"](c)) - c) ** 2).sum(1).mean().item()


def test_registry_and_presets():
    spec = get_model("did")
    assert spec.config_cls is Config and spec.train is train
    smoke = Config.from_preset("smoke", n_compare_dims=5)
    assert (smoke.n_compare_dims, smoke.final_protocol) == (5, "fast")
    assert Config.from_preset("paper").width > Config.from_preset("quick").width
    with pytest.raises(ConfigError, match="n_compare_dims"):
        Config.from_preset("smoke", n_compare_dims=11)
    with pytest.raises(ConfigError, match="contrast"):
        Config.from_preset("smoke", contrast="cosine")
    with pytest.raises(ConfigError, match="n_compare_dims.*distance"):
        Config.from_preset("smoke", contrast="distance", n_compare_dims=1)
    with pytest.raises(ConfigError, match="lambda_warmup"):
        Config.from_dict({"lambda_warmup": "soon"})


def test_encoder_recovers_codes_after_training(tmp_path):
    cfg = Config.from_preset("smoke", **TINY, steps=300, log_every=100, eval_every=0, lr_g=1e-3, lr_e=1e-3)
    torch.manual_seed(cfg.seed)
    before = encoder_error(build_nets(cfg, 1), cfg.n_latents)
    events = list(train(cfg, out_dir=tmp_path))
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    nets = build_nets(cfg, 1)
    for name, net in nets.items():
        net.load_state_dict(state["nets"][name])
    after = encoder_error(nets, cfg.n_latents)
    assert before > 1.0  # about n_latents / 3: E knows nothing about c
    assert after < 0.6 * before, (before, after)
    progress = [e for e in events if e["kind"] == "progress"]
    assert progress[-1]["losses"]["loss_enc"] < progress[0]["losses"]["loss_enc"]


def test_infonce_separates_moved_axes():
    """H (with G, as in DiD) trained on InfoNCE alone: embeddings cluster by the moved axis."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    n, k, B = 4, 2, 16
    G, H = Generator(n, 1, 4, "batch"), DifferenceEncoder(1, 16, 4)
    opt = torch.optim.Adam([*G.parameters(), *H.parameters()], lr=2e-3, betas=(0.5, 0.9))

    def embed(batch):
        c, moved, dims = sample_moves(batch, n, k, "resample", gen)
        x = G(torch.cat([c, moved.reshape(-1, n)]))
        first, second = order_pairs(x[:batch].repeat_interleave(k, 0), x[batch:], c, moved, dims)
        return H(first, second), dims.reshape(-1)

    def centroid_accuracy():
        with torch.no_grad():
            v, d = embed(256)
            centres = torch.nn.functional.normalize(torch.stack([v[d == i].mean(0) for i in range(n)]), dim=1)
            v2, d2 = embed(256)
            return ((v2 @ centres.T).argmax(1) == d2).float().mean().item()

    acc_before = centroid_accuracy()
    losses = []
    for _ in range(100):
        v, d = embed(B)
        loss = infonce_loss(v, d, tau=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    acc_after = centroid_accuracy()
    assert sum(losses[-20:]) / 20 < 0.7 * sum(losses[:20]) / 20
    assert acc_after > 0.8 and acc_after > acc_before + 0.2, (acc_before, acc_after)


def test_resume_equals_uninterrupted_run(tmp_path):
    cfg = Config.from_preset("smoke", **TINY, steps=6, log_every=1, eval_every=3)
    straight = list(train(cfg, out_dir=tmp_path / "a"))

    for event in train(cfg, out_dir=tmp_path / "b"):
        if event["kind"] == "eval":
            break  # interrupted right after the checkpoint at step 3
    resumed = list(train(cfg, out_dir=tmp_path / "b"))

    assert [e["step"] for e in resumed if e["kind"] == "progress"] == [4, 5, 6]
    tail = [e for e in straight if e["kind"] == "progress" and e["step"] > 3]
    assert [e["losses"] for e in resumed if e["kind"] == "progress"] == [e["losses"] for e in tail]
    assert resumed[-1]["scores"] == straight[-1]["scores"]
    assert_same_checkpoints(tmp_path / "a" / "checkpoint.pt", tmp_path / "b" / "checkpoint.pt", step=6)


def test_resume_refuses_a_different_experiment(tmp_path):
    cfg = Config.from_preset("smoke", **TINY, steps=2, eval_every=0)
    list(train(cfg, out_dir=tmp_path))
    longer = list(train(cfg.replace(steps=3), out_dir=tmp_path))  # a longer budget may resume
    assert [e["step"] for e in longer if e["kind"] == "progress"] == []  # log_every=5: no progress line
    assert longer[-1]["step"] == 3
    with pytest.raises(Exception, match=r"different experiment.*lambda_h: 1.0 -> 0.5"):
        list(train(cfg.replace(lambda_h=0.5), out_dir=tmp_path))


def test_forced_nan_raises_divergence_with_step_and_loss():
    # a learning rate near float32's largest: the critic's weights overflow in its first step
    cfg = Config.from_preset("smoke", **TINY, steps=5, eval_every=0, lr_d=1e38)
    with pytest.raises(TrainingDiverged, match=r"step 1: loss 'loss_adv' is nan") as info:
        list(train(cfg))
    assert info.value.step == 1 and info.value.loss == "loss_adv"


def test_exploding_critic_raises_divergence():
    cfg = Config.from_preset("smoke", **TINY, steps=5, eval_every=0, max_abs_loss=1e-6)
    with pytest.raises(TrainingDiverged, match="step 1: loss 'loss_d'"):
        list(train(cfg))


def test_cli_writes_run_folder(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "did_core.train", "--dataset", "dsprites", "--preset", "smoke", "--out", str(out),
           "--set", "steps=3", "--set", "eval_every=0", "--set", "eval_metrics=mig", "--set", "num_threads=1", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.strip().splitlines()[-1])
    assert final["kind"] == "final" and set(final["scores"]) == {"mig", *DIAGNOSTICS}  # DiD's own diagnostics
    assert {p.name for p in out.iterdir()} >= {"checkpoint.pt", "scores.json", "config.json", "traversal.png"}
    assert json.loads((out / "scores.json").read_text())["scores"]["mig"] == final["scores"]["mig"]
    assert Config.from_dict(json.loads((out / "config.json").read_text())).steps == 3

    bad = subprocess.run(cmd[:-1] + ["--set", "tau=cold"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Config.tau: 'cold' is not a valid float" in bad.stderr


def assert_same_checkpoints(a_path, b_path, step: int) -> None:
    """Two checkpoints at ``step`` whose nets hold identical tensors (an exact resume)."""
    a, b = load_checkpoint(a_path), load_checkpoint(b_path)
    assert a["step"] == b["step"] == step
    for net in a["nets"]:
        for key, value in a["nets"][net].items():
            assert torch.equal(value, b["nets"][net][key]), (net, key)
