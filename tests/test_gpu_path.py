"""The GPU path, tested on the CPU: device index and memory share, resuming a checkpoint of another
device kind, and what bf16 autocast would do to the losses (CPU autocast runs the same code path)."""
import math
import warnings

import numpy as np
import pytest
import torch

import did_core.metrics
from did_core import training
from did_core.checkpoint import generator_kind, load_checkpoint
from did_core.models import get_model
from did_core.models.did import Config
from did_core.models.did.losses import infonce_loss, inversion_loss
from did_core.models.did.nets import BroadcastGenerator, Generator
from did_core.models.parted_vae.nets import gumbel_softmax
from did_core.training import memory_share, uses_amp, with_index

torch.set_num_threads(1)
CPU_BF16 = dict(device_type="cpu", dtype=torch.bfloat16)


# ----- 1. which device, what share of its memory -------------------------------------------------------
def test_a_cuda_device_gets_its_index_and_the_memory_share_names_it():
    from torch.cuda._utils import _get_device_index

    bare = torch.device("cuda")
    with pytest.raises(ValueError, match="specified index"):  # what set_per_process_memory_fraction did with it
        _get_device_index(bare, optional=False)
    device = with_index(bare, current=0)
    assert device == torch.device("cuda", 0) and with_index(torch.device("cuda", 3), current=0).index == 3
    assert with_index(torch.device("cpu"), current=None) == torch.device("cpu")
    fraction, index = memory_share(device, 0.25)
    assert (fraction, index) == (0.25, 0) and _get_device_index(torch.device("cuda", index), optional=False) == 0
    assert memory_share(torch.device("cpu"), 0.25) is None  # no cap off CUDA
    assert memory_share(device, 0.0) is None and memory_share(device, 1.0) is None  # no cap asked
    with pytest.raises(ValueError, match="no index"):
        memory_share(bare, 0.5)


def test_bf16_autocast_only_where_asked_and_never_for_a_float32_model():
    did = Config.from_preset("smoke")
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert uses_amp(did, cuda) and not uses_amp(did, cpu) and uses_amp(did.replace(cpu_amp=True), cpu)
    assert not uses_amp(did.replace(amp=False), cuda)
    v3 = get_model("v3").config_cls.from_preset("smoke")
    assert not uses_amp(v3, cuda) and not uses_amp(v3.replace(cpu_amp=True), cpu)  # V3 trains in float32


# ----- 2. resume across device kinds --------------------------------------------------------------------
TINY = dict(dataset="squares", width=4, embed_dim=16, batch_size=8, n_critic=1, n_latents=3, n_compare_dims=2,
            eval_metrics="mig", final_protocol="fast", num_threads=1, eval_every=5, log_every=5)


def test_a_checkpoint_from_another_device_kind_resumes(tmp_path, monkeypatch):
    """A CUDA run's checkpoint holds a 16-byte Philox state for the code generator; resumed where the
    generator is a CPU one it is reseeded from that state (a warning says so), reproducibly. The
    checkpoint is read onto the CPU whatever the run's device (RNG states must stay CPU tensors)."""
    spec = get_model("did")
    cfg = Config.from_preset("smoke", **TINY, steps=5)
    list(spec.train(cfg, out_dir=tmp_path))
    path = tmp_path / "checkpoint.pt"
    state = load_checkpoint(path)
    assert state["rng"]["generator_devices"] == {"codes": "cpu"} and generator_kind(state["rng"], "codes") == "cpu"
    state["rng"]["generators"]["codes"] = torch.arange(16, dtype=torch.uint8)  # as a CUDA generator saves it
    del state["rng"]["generator_devices"]  # a checkpoint of before this field: told by the state's size
    torch.save(state, path)
    assert generator_kind(state["rng"], "codes") == "cuda"

    seen = []
    real_load = training.load_checkpoint
    monkeypatch.setattr(training, "load_checkpoint", lambda p, map_location: seen.append(map_location) or real_load(p, map_location))
    losses = []
    for attempt in range(2):  # the same reseeding both times: the resumed run is reproducible
        torch.save(state, path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            events = list(spec.train(cfg.replace(steps=10), out_dir=tmp_path))
        assert any("another kind of device" in str(w.message) for w in caught)
        losses.append([e.losses for e in events if e.kind == "progress"])
    assert seen == ["cpu", "cpu"] and losses[0] == losses[1] and len(losses[0]) == 1


# ----- 3-5. bf16 autocast leaves the losses where float32 has them ---------------------------------------
def test_inversion_loss_under_bf16_autocast_is_the_float32_loss():
    """Confident wrong pixels (logits near +-9): bf16's sigmoid would round them to exactly 0 or 1, the
    BCE would charge its clamp (100 a pixel) and pass no gradient."""
    torch.manual_seed(0)
    for G in (Generator(3, 1, 4, image_size=8), BroadcastGenerator(3, 1, 4, image_size=8)):
        last = G.body[-1] if isinstance(G, Generator) else G.draw
        with torch.no_grad():
            last.weight.mul_(40.0)
        c = torch.rand(16, 3, requires_grad=True)
        with torch.no_grad():
            target = 1.0 - (G(c) > 0.5).float()  # every pixel the opposite of what G draws
        exact = inversion_loss(G(c), target)
        (grad_exact,) = torch.autograd.grad(exact, c)
        with torch.autocast(**CPU_BF16):
            redrawn = G(c)
        assert redrawn.dtype == torch.float32
        mixed = inversion_loss(redrawn, target)
        (grad_mixed,) = torch.autograd.grad(mixed, c)
        assert exact.item() > 5 and abs(mixed.item() - exact.item()) < 0.03 * exact.item()
        assert grad_mixed.abs().sum() > 0.5 * grad_exact.abs().sum()


def test_infonce_similarities_are_float32_under_autocast():
    torch.manual_seed(0)
    v = torch.nn.functional.normalize(torch.randn(64, 16), dim=1)
    labels = torch.arange(64) % 4
    exact = infonce_loss(v, labels, tau=0.1)
    with torch.autocast(**CPU_BF16):
        mixed = infonce_loss(v, labels, tau=0.1)
    assert mixed.dtype == torch.float32 and abs(mixed.item() - exact.item()) < 1e-5
    # no anchor with a positive: 0, and no host sync needed to find that out
    assert infonce_loss(v[:4], torch.arange(4), tau=0.1).item() == 0.0


def test_gumbel_noise_is_drawn_in_float32_for_bf16_logits():
    logits = torch.randn(32, 3)
    exact = gumbel_softmax(logits, [3], 0.67, torch.Generator().manual_seed(1))
    mixed = gumbel_softmax(logits.bfloat16(), [3], 0.67, torch.Generator().manual_seed(1))
    assert mixed.dtype == torch.float32
    assert (mixed - exact).abs().max().item() < 0.02  # only the logits' own bf16 rounding


@pytest.mark.parametrize("model,fields", [
    ("did", dict(TINY, g_arch="broadcast", lambda_rec=1.0, encoder="critic_head", view="noise")),
    ("did", dict(TINY)),
    ("beta_vae", dict(eval_metrics="mig")),
    ("parted_vae", dict(eval_metrics="mig")),
    ("v3", dict(eval_metrics="mig")),
])
def test_smoke_runs_on_the_bf16_path_train_without_nan(model, fields):
    spec = get_model(model)
    cfg = spec.config_cls.from_preset("smoke", **{"num_threads": 1, **fields}, cpu_amp=True)
    events = list(spec.train(cfg))
    final = events[-1]
    assert final.kind == "final" and all(math.isfinite(v) for v in final.scores.values())
    assert all(math.isfinite(v) for e in events if e.kind == "progress" for v in e.losses.values())


# ----- 6. the final evaluation uses the trial's CPUs, not the machine's ---------------------------------
def test_scores_use_the_trials_threads_for_metric_fits(monkeypatch):
    calls = []
    real = did_core.metrics.evaluate

    def spy(*args, **kwargs):
        calls.append(kwargs.get("n_jobs"))
        return real(*args, **kwargs)

    monkeypatch.setattr(did_core.metrics, "evaluate", spy)
    cfg = Config.from_preset("smoke", **{**TINY, "num_threads": 1, "eval_every": 0}, steps=2)
    list(get_model("did").train(cfg))
    assert calls == [1]


def test_smallest_procedural_datasets_are_drawn_once_and_indexed():
    from did_core.data import get_dataset

    squares = get_dataset("squares")
    table = training.prerender(squares)
    rows = squares.sample_factors(64, np.random.default_rng(0))
    assert table.shape == (1024, 1, 32, 32) and torch.equal(table[squares.flat_index(rows)], squares.images(rows))
    assert training.prerender(get_dataset("dsprites")) is None  # 737,280 images: drawn per batch
