"""PartedVAE's loss terms against hand computations, its masks, its labelled set and its config errors."""
import math

import numpy as np
import pytest
import torch

from did_core.data import get_dataset
from did_core.models import ConfigError, get_model
from did_core.models.parted_vae import Config
from did_core.models.parted_vae.labelled import labelled_factors
from did_core.models.parted_vae.losses import (attention_slope, bhattacharyya_coefficient, capacity, capacity_term,
                                               entropy, marginal_kl, mixture_kl, overlap_penalty, pairwise_bc)
from did_core.models.parted_vae.nets import BlockLinear, PartedEncoder, UPrior
from did_core.models.parted_vae.scores import matched_accuracy, swap_pairs


def kl_1d(m, v, pm, pv):
    """KL(N(m, v) || N(pm, pv)) of two 1-d Gaussians (variances), by the textbook formula."""
    return math.log(math.sqrt(pv) / math.sqrt(v)) + (v + (m - pm) ** 2) / (2 * pv) - 0.5


def test_mixture_kl_is_the_class_weighted_sum_of_kls():
    # one example, u 1-d: mean 0.5, variance 0.25; prior components N(0, 1) and N(1, 4); q(c) = (0.2, 0.8)
    u_mean, u_logvar = torch.tensor([[0.5]]), torch.tensor([[math.log(0.25)]])
    probs = [torch.tensor([[0.2, 0.8]])]
    means, logvars = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [math.log(4.0)]])
    expected = 0.2 * kl_1d(0.5, 0.25, 0.0, 1.0) + 0.8 * kl_1d(0.5, 0.25, 1.0, 4.0)
    assert mixture_kl(u_mean, u_logvar, probs, means, logvars).item() == pytest.approx(expected, rel=1e-6)


def test_mixture_kl_averages_the_batch_and_sums_the_variables():
    # two variables (2 and 3 classes), u_dim 1 each; example 2 is certain of class 0 / class 2
    u_mean = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    u_logvar = torch.zeros(2, 2)
    probs = [torch.tensor([[0.5, 0.5], [1.0, 0.0]]), torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.0, 0.0, 1.0]])]
    means = torch.tensor([[0.0], [1.0], [-1.0], [0.0], [3.0]])
    logvars = torch.zeros(5, 1)
    first = 0.5 * kl_1d(0, 1, 0, 1) + 0.5 * kl_1d(0, 1, 1, 1) + sum(kl_1d(1, 1, m, 1) for m in (-1, 0, 3)) / 3
    second = kl_1d(2, 1, 0, 1) + kl_1d(-1, 1, 3, 1)
    got = mixture_kl(u_mean, u_logvar, probs, means, logvars).item()
    assert got == pytest.approx((first + second) / 2, rel=1e-6)


def test_bhattacharyya_coefficient_known_values():
    zero, one = torch.zeros(1), torch.ones(1)
    assert bhattacharyya_coefficient(zero, zero, zero, zero).item() == pytest.approx(1.0)  # identical
    m, lv = torch.tensor([0.3, -1.2]), torch.tensor([0.5, -2.0])
    assert bhattacharyya_coefficient(m, lv, m, lv).item() == pytest.approx(1.0, abs=1e-6)
    # means 2 apart, unit variances: D_B = (1/8) * 4
    assert bhattacharyya_coefficient(zero, zero, 2 * one, zero).item() == pytest.approx(math.exp(-0.5), rel=1e-6)
    # same mean, variances 1 and 4: S = 2.5, D_B = 1/2 ln(2.5 / sqrt(1 * 4))
    assert bhattacharyya_coefficient(zero, zero, zero, torch.tensor([math.log(4.0)])).item() == pytest.approx(
        1.25 ** -0.5, rel=1e-6)
    # 2-d diagonal: the per-dimension distances add up, so the coefficients multiply
    got = bhattacharyya_coefficient(torch.tensor([0.0, 0.0]), torch.zeros(2), torch.tensor([2.0, 0.0]),
                                    torch.tensor([0.0, math.log(4.0)]))
    assert got.item() == pytest.approx(math.exp(-0.5) * 1.25 ** -0.5, rel=1e-6)
    # far apart: nothing in common
    assert bhattacharyya_coefficient(zero, zero, 100 * one, zero).item() < 1e-100


def test_bhattacharyya_coefficient_is_the_integral_of_sqrt_pq():
    x = np.linspace(-30, 30, 200_001)
    for m1, v1, m2, v2 in [(0.3, 0.5, -0.7, 2.0), (1.0, 0.05, 1.4, 0.2)]:
        p = np.exp(-(x - m1) ** 2 / (2 * v1)) / np.sqrt(2 * np.pi * v1)
        q = np.exp(-(x - m2) ** 2 / (2 * v2)) / np.sqrt(2 * np.pi * v2)
        numeric = np.trapezoid(np.sqrt(p * q), x)
        got = bhattacharyya_coefficient(torch.tensor([m1]), torch.tensor([math.log(v1)]), torch.tensor([m2]),
                                        torch.tensor([math.log(v2)]), ).item()
        assert got == pytest.approx(numeric, rel=1e-5)


def test_overlap_penalty_counts_pairs_above_tau_within_each_variable():
    # variable 1: components 0, 1 identical (BC 1) and 2 far away; variable 2: two components 2 apart
    means = torch.tensor([[0.0], [0.0], [50.0], [0.0], [2.0]])
    logvars = torch.zeros(5, 1)
    bcs = [b.item() for b in pairwise_bc(means, logvars, [3, 2])]
    assert len(bcs) == 3 + 1  # pairs within a variable only
    expected = (1.0 - 0.1) + (math.exp(-0.5) - 0.1)
    assert overlap_penalty(means, logvars, [3, 2], tau=0.1).item() == pytest.approx(expected, rel=1e-6)
    assert overlap_penalty(means, logvars, [3, 2], tau=0.95).item() == pytest.approx(0.05, rel=1e-5)  # only BC 1


def test_capacity_schedule_and_term():
    assert capacity(0, 0.0, 30.0, 300) == 0.0
    assert capacity(150, 0.0, 30.0, 300) == 15.0
    assert capacity(300, 0.0, 30.0, 300) == 30.0 and capacity(10_000, 0.0, 30.0, 300) == 30.0
    assert capacity(50, 2.0, 5.0, 100) == 3.5
    # gamma |C - KL| from both sides
    assert capacity_term(torch.tensor(4.0), 5.0, 50.0).item() == 50.0
    assert capacity_term(torch.tensor(6.5), 5.0, 50.0).item() == 75.0
    assert attention_slope(0, 1.0, 8.0, 35_000) == 1.0
    assert attention_slope(5000, 1.0, 8.0, 35_000) == pytest.approx(1.0 + 5000 * 2e-4)  # the authors' +2e-4 per step
    assert attention_slope(50_000, 1.0, 8.0, 35_000) == 8.0


def test_batch_marginal_kl_and_entropy_of_c():
    # two confident examples of different classes out of 3: qbar = (1/2, 1/2, 0), KL to uniform = ln 1.5
    probs = [torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])]
    assert marginal_kl(probs).item() == pytest.approx(math.log(1.5), rel=1e-5)
    assert entropy(probs).item() == pytest.approx(0.0, abs=1e-6)
    uniform = [torch.full((4, 3), 1 / 3)]
    assert marginal_kl(uniform).item() == pytest.approx(0.0, abs=1e-6)
    assert entropy(uniform).item() == pytest.approx(math.log(3), rel=1e-6)
    # variables add up: a (0.9, 0.1) batch marginal over 2 classes plus the one above
    two = [torch.tensor([[0.8, 0.2], [1.0, 0.0]]), *probs]
    expected = 0.9 * math.log(0.9 * 2) + 0.1 * math.log(0.1 * 2) + math.log(1.5)
    assert marginal_kl(two).item() == pytest.approx(expected, rel=1e-5)


def test_block_linear_is_block_diagonal():
    layer = BlockLinear([2, 3], [4, 4])
    w = layer.weight.detach()
    assert w.shape == (8, 5)
    assert torch.all(w[:4, 2:] == 0) and torch.all(w[4:, :2] == 0) and torch.all(w[:4, :2] != 0)
    # the output of block 0 depends on input block 0 only
    x = torch.randn(3, 5)
    y = layer(x)
    x2 = x.clone()
    x2[:, 2:] += 10.0
    assert torch.equal(layer(x2)[:, :4], y[:, :4])


def test_masks_stay_block_diagonal_after_50_optimiser_steps(tmp_path, monkeypatch):
    """Two categorical variables (shape and scale) so that there are off-block weights; 50 steps of
    the trainer (both optimisers), then the checkpoint's weights outside the blocks are exactly 0."""
    from did_core.checkpoint import load_checkpoint
    from did_core.metrics.protocols import PROTOCOLS, replace
    from did_core.models.parted_vae import train

    torch.set_num_threads(1)
    monkeypatch.setitem(PROTOCOLS, "tiny", replace("fast", name="tiny", num_train=400, num_test=200, dci_n_estimators=5))
    cfg = Config.from_preset("smoke", class_factor="shape,scale", steps=50, eval_every=0, log_every=50,
                             batch_size=8, labelled_batch_size=8, eval_metrics="mig", final_protocol="tiny",
                             score_rows=200, swap_pairs=50)
    events = list(train(cfg, out_dir=tmp_path))
    assert events[-1].step == 50
    nets = load_checkpoint(tmp_path / "checkpoint.pt")["nets"]["encoder"]
    gate, u_mean, u_logvar = nets["gate.weight"], nets["u_mean.weight"], nets["u_logvar.weight"]
    assert gate.shape == (2 * 256, 3 + 6) and u_mean.shape == (2, 2 * 256)
    assert torch.count_nonzero(gate[:256, 3:]) == 0 and torch.count_nonzero(gate[256:, :3]) == 0
    for w in (u_mean, u_logvar):
        assert torch.count_nonzero(w[0, 256:]) == 0 and torch.count_nonzero(w[1, :256]) == 0
    # ... while the blocks themselves learned (not all zero, changed from their initial values)
    torch.manual_seed(cfg.seed)
    initial = PartedEncoder(1, cfg.z_dim, [3, 6], cfg.u_dim)
    assert not torch.equal(initial.gate.weight[:256, :3], gate[:256, :3])
    assert torch.equal(initial.gate.weight[:256, 3:], gate[:256, 3:])


def test_attention_off_and_standard_prior():
    enc = PartedEncoder(1, 5, [3], 1, attention=False)
    assert enc.gate is None
    post = enc(torch.rand(4, 1, 64, 64), slope=1.0, temperature=0.67, generator=torch.Generator().manual_seed(0))
    assert post.u_mean.shape == (4, 1) and torch.allclose(post.c.sum(1), torch.ones(4))
    prior = UPrior([3], 2, "standard")
    assert list(prior.parameters()) == []
    assert torch.equal(prior.means, torch.zeros(3, 2)) and torch.equal(prior.logvars(), torch.zeros(3, 2))
    learnable = UPrior([3], 2, "mixture")
    lv = learnable.logvars()
    assert len(list(learnable.parameters())) == 2 and bool(((lv >= -3) & (lv <= 1)).all())


def test_labelled_set_is_stratified_distinct_and_seeded():
    ds = get_dataset("dsprites")
    y = labelled_factors(ds, 10_000, class_columns=[0], seed=0)
    assert y.shape == (10_000, 5) and y.dtype == np.int64
    assert len(np.unique(ds.flat_index(y))) == 10_000
    counts = np.bincount(y[:, 0], minlength=3)
    # 144 strata of 69 or 70 images (the remainder to random strata): each shape 48 strata, 3,312..3,360
    assert counts.min() >= 48 * 69 and counts.max() <= 48 * 70
    assert set(np.bincount(y[:, 1], minlength=6)) <= set(range(1660, 1675))  # scales balanced too
    assert abs((y[:, 3] < 16).mean() - 0.5) < 0.01  # posX halves
    assert np.array_equal(y, labelled_factors(ds, 10_000, class_columns=[0], seed=0))
    assert not np.array_equal(y, labelled_factors(ds, 10_000, class_columns=[0], seed=1))
    assert labelled_factors(ds, 0, class_columns=[0], seed=0).shape == (0, 5)
    small = labelled_factors(ds, 3, class_columns=[0], seed=4)
    assert len(small) == 3


def test_matched_accuracy_and_swap_pairs():
    true = np.array([0, 0, 1, 1, 2, 2])
    assert matched_accuracy(np.array([2, 2, 0, 0, 1, 1]), true, 3) == 1.0  # a relabelling
    assert matched_accuracy(np.array([0, 0, 0, 0, 0, 0]), true, 3) == pytest.approx(1 / 3)
    ds = get_dataset("dsprites")
    y_i, y_j = swap_pairs(ds, 500, [0], np.random.default_rng(0))
    assert np.all(y_i[:, 0] != y_j[:, 0]) and set(np.unique(y_j[:, 0])) == {0, 1, 2}


@pytest.mark.parametrize("overrides, field, text", [
    (dict(class_factor="colour"), "class_factor", "dataset 'dsprites' has no factor 'colour'"),
    (dict(dataset="squares"), "class_factor", "dataset 'squares' has no factor 'shape'"),
    (dict(n_labelled=800_000), "n_labelled", "between 0 and the 737,280 images of 'dsprites'"),
    (dict(n_labelled=-1), "n_labelled", "between 0"),
    (dict(gamma_bc=-1.0), "gamma_bc", "must be >= 0"),
    (dict(gamma_z=-0.5), "gamma_z", "must be >= 0"),
    (dict(prior="flat"), "prior", "must be one of ['mixture', 'standard']"),
    (dict(slope_max=0.5), "slope_max", "must be >= slope_start"),
    (dict(temperature=0.0), "temperature", "must be > 0"),
])
def test_bad_settings_are_one_error_naming_the_field(overrides, field, text):
    with pytest.raises(ConfigError, match=rf"^Config\.{field}: ") as info:
        Config.from_preset("quick", **overrides)
    assert info.value.field == field
    assert text in str(info.value)


def test_registry_and_presets():
    spec = get_model("parted_vae")
    assert spec.config_cls is Config
    quick, paper = Config.from_preset("quick"), Config.from_preset("paper")
    # the quick preset compresses the schedules to its own length; paper keeps the authors'
    assert quick.z_capacity_steps == quick.u_capacity_steps == quick.steps
    assert quick.slope_steps == round(quick.steps * 35_000 / 300_000)
    assert (paper.steps, paper.z_capacity_steps, paper.slope_steps) == (300_000, 300_000, 35_000)
    assert (paper.z_dim, paper.u_dim, paper.gamma_c, paper.gamma_h, paper.gamma_bc, paper.tau) == (5, 1, 100, 10, 10, 0.1)
    assert (paper.n_labelled, paper.lr, paper.lr_supervised, paper.temperature) == (10_000, 5e-4, 5e-4, 0.67)
