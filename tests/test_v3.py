"""V3 on hand computations and constructed inputs: the variability ratios and ``mpd``, the EMA
quantiser, the digit-sequence samples, the codebook and retrieval scores, bad settings, and a
smoke run end to end (its files)."""
import json

import numpy as np
import pytest
import torch

from did_core.data import get_dataset
from did_core.models import ConfigError, Final, get_model
from did_core.models.v3 import Config, train
from did_core.models.v3.losses import across, hinge, mpd, ratios, variabilities, within
from did_core.models.v3.quantizer import EMAQuantizer
from did_core.models.v3.scores import codebook_scores, read_colour, retrieval_ks, retrieval_pr_auc

# sample 0: (0,0), (3,4), (0,4): distances 5, 3, 4; sample 1: (1,1), (1,1), (1,3): distances 0, 2, 2
X = torch.tensor([[[0.0, 0], [3, 4], [0, 4]], [[1.0, 1], [1, 1], [1, 3]]])


def test_mpd_within_and_across_by_hand():
    assert mpd(X[0]).item() == pytest.approx(4.0)
    assert within(X).item() == pytest.approx((4 + 4 / 3) / 2)
    # per-sample means (1, 8/3) and (1, 5/3): one pair, 1 apart
    assert across(X).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        mpd(X[0, :1])


def test_ratios_and_hinges_by_hand():
    style = torch.tensor([[0.0, 0.0], [6.0, 8.0]])[:, None].expand(2, 3, 2)  # constant within a sample, 10 apart
    v = variabilities(X, style)
    assert v["content_f"].item() == pytest.approx(8 / 3) and v["content_s"].item() == pytest.approx(1.0)
    assert v["style_f"].item() == pytest.approx(0.0) and v["style_s"].item() == pytest.approx(10.0)
    r = ratios(v)
    assert r["content"].item() == pytest.approx(8 / 3, rel=1e-4)
    assert r["across"].item() == pytest.approx(10.0, rel=1e-4)
    assert r["style"].item() == pytest.approx(10 / 1e-5, rel=1e-4)  # eps in the denominator
    assert r["within"].item() == pytest.approx((8 / 3) / 1e-5, rel=1e-4)
    assert hinge(r["content"], 15.0).item() == pytest.approx((15 - 8 / 3) / 15, rel=1e-4)
    assert hinge(r["style"], 15.0).item() == 0.0
    # with quantised codes the content variabilities average before and after
    q = torch.zeros_like(X)
    q[:, 1, 0] = 2.0  # within each sample one fragment 2 apart from two: mpd 4/3; means identical
    vq = variabilities(X, style, q)
    assert vq["content_f"].item() == pytest.approx((8 / 3 + 4 / 3) / 2)
    assert vq["content_s"].item() == pytest.approx(0.5)


def test_variability_gradients_stay_finite_at_coincident_codes():
    x = torch.zeros(3, 4, 2, requires_grad=True)
    (within(x) + across(x)).backward()
    assert torch.isfinite(x.grad).all()


def vq(decay=0.5, threshold=0.0):
    q = EMAQuantizer(2, 2, decay=decay, dead_threshold=threshold)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0]]))
    q.cluster_sum.copy_(q.codebook)
    q.cluster_size.fill_(1.0)
    q.initialised.fill_(True)
    return q


def test_quantiser_assigns_nearest_atom_and_updates_by_ema():
    q = vq()
    assert q.assign(torch.tensor([[1.0, 0.0], [9.0, 1.0], [4.9, 0.0]])).tolist() == [0, 1, 0]
    out = q(torch.tensor([[2.0, 0.0], [4.0, 0.0]]))  # both to atom 0
    assert out.indices.tolist() == [0, 0]
    # sizes 0.5 * 1 + 0.5 * 2 = 1.5 and 0.5; sums 0.5 * 0 + 0.5 * 6 = 3 and 0.5 * 10 = 5 -> atoms 2 and 10
    assert q.cluster_size.tolist() == pytest.approx([1.5, 0.5])
    assert q.codebook.tolist() == [pytest.approx([2.0, 0.0], abs=1e-4), pytest.approx([10.0, 0.0], abs=1e-3)]
    q.eval()
    before = q.codebook.clone()
    q(torch.tensor([[7.0, 0.0]]))
    assert torch.equal(q.codebook, before)  # no update in eval mode


def test_quantiser_replaces_dead_atoms_with_batch_codes():
    q = vq(threshold=1.0)
    z = torch.tensor([[2.0, 0.0], [4.0, 0.0]])
    q(z)  # sizes 0.5 * 1 + 0.5 * 2 = 1.5 and 0.5 * 1 + 0 = 0.5 < 1: atom 1 moves onto a code of the batch
    assert q.codebook[1].tolist() in ([2.0, 0.0], [4.0, 0.0])
    assert q.cluster_size.tolist() == pytest.approx([1.5, 1.0])  # the new atom's size reset to the threshold
    assert q.cluster_sum[1].tolist() == q.codebook[1].tolist()  # sum = atom x size 1
    assert q.codebook[0].tolist() == pytest.approx([2.0, 0.0], abs=1e-4)  # the living atom only follows its EMA


def test_quantiser_keeps_atoms_that_draw_their_share():
    q = vq(threshold=1.0)
    for _ in range(3):
        q(torch.tensor([[1.0, 0.0], [11.0, 0.0]]))  # one code each: sizes stay 1, nothing dies
    assert q.codebook.tolist() == [pytest.approx([1.0, 0.0], abs=0.2), pytest.approx([11.0, 0.0], abs=0.2)]


def test_quantiser_kmeans_initialisation_finds_the_clusters():
    torch.manual_seed(0)
    z = torch.cat([torch.randn(50, 2) * 0.1, torch.randn(50, 2) * 0.1 + 10])
    q = EMAQuantizer(2, 2, dead_threshold=0.0)
    q(z)
    centres = sorted(q.codebook.tolist())
    assert centres[0] == pytest.approx([0, 0], abs=0.2) and centres[1] == pytest.approx([10, 10], abs=0.2)
    # each atom's size starts at its k-means cluster's count (then one EMA step on the same batch)
    assert q.cluster_size.tolist() == pytest.approx([50.0, 50.0])


def test_quantiser_straight_through_gradient_and_commitment():
    q = vq()
    q.eval()
    z = torch.tensor([[1.0, 1.0], [8.0, 0.0]], requires_grad=True)
    out = q(z)
    assert out.quantized.tolist() == [[0.0, 0.0], [10.0, 0.0]]  # forward: the atoms
    out.quantized.sum().backward()
    assert z.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]  # backward: identity
    z.grad = None
    q(z).commitment.backward()  # mean over rows of ||z - sg(q)||^2: gradient 2 (z - q) / N
    assert z.grad.tolist() == [[1.0, 1.0], [-2.0, 0.0]]


def test_digit_sequences_samples_one_colour_and_a_permutation_of_the_digits():
    ds = get_dataset("digit_sequences")
    y = ds.sample_sequences(50, np.random.default_rng(3))
    assert y.shape == (50, 10, 5)
    assert all(sorted(s[:, 0]) == list(range(10)) for s in y)
    assert (y[:, :, 1] == y[:, :1, 1]).all() and len(np.unique(y[:, 0, 1])) > 4
    x = ds.images(y.reshape(-1, 5))
    assert x.shape == (500, 3, 32, 32) and 0 <= x.min() and x.max() <= 1
    assert (read_colour(x).numpy() == y.reshape(-1, 5)[:, 1]).all()  # the colour reader reads real fragments
    test = ds.split_view("test")
    assert ds.factor_sizes[2] == 116 and test.factor_sizes[2] == 58
    train_ids, test_ids = set(ds._instances.ravel()), set(test._instances.ravel())
    assert not train_ids & test_ids  # instances never shared between the splits
    view = ds.scoring_view(seed=0)
    assert view.factor_names == ("digit", "colour") and view.images(np.array([[3, 2]])).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="not a sequence dataset"):
        get_dataset("squares").sample_sequences(2, np.random.default_rng(0))


def test_shift_variants_place_the_fragments_as_named():
    per_fragment, per_sample = get_dataset("digit_sequences"), get_dataset("digit_sequences_sample_shift")
    y = per_sample.sample_sequences(50, np.random.default_rng(3))
    assert (y[:, :, 3:5] == y[:, :1, 3:5]).all()  # dx, dy constant within each sample ...
    assert len(np.unique(y[:, 0, 3])) == 5 and len(np.unique(y[:, 0, 4])) == 5  # ... and varying across samples
    assert all(sorted(s[:, 0]) == list(range(10)) for s in y) and (y[:, :, 1] == y[:, :1, 1]).all()
    assert len(np.unique(y[:, :, 2])) > 50  # instances still per fragment
    fragments = per_fragment.sample_sequences(50, np.random.default_rng(3))
    assert (fragments[:, :, 3] != fragments[:, :1, 3]).any()  # the construction: a shift per fragment
    test = per_sample.split_view("test")
    assert type(test) is type(per_sample) and test.factor_sizes[2] == 58
    assert torch.equal(per_sample.images(y[0]), per_fragment.images(y[0]))  # same images for the same factors
    centred = get_dataset("digit_sequences_centred")
    y = centred.sample_sequences(20, np.random.default_rng(3))
    assert (y[:, :, 3:5] == 2).all() and centred.factor_values[3][2] == 0  # dx = dy = 0 everywhere
    rows = y[0, :, :2]  # (digit, colour): what the metrics' view is asked for; it draws the instance itself
    instance = np.random.default_rng([0, 91]).integers(0, 58, size=len(rows))  # the view's nuisance stream
    expected = centred.split_view("test").images(np.c_[rows, instance, np.full((len(rows), 2), 2)])
    assert torch.equal(centred.scoring_view(seed=0).images(rows), expected)  # the view's fragments centred too


def test_codebook_scores_on_constructed_assignments():
    # atom 0: digits 1, 1, 2 (purity 2/3); atom 1: 3, 3; atom 2: 3; atom 3 unused
    scores, counts = codebook_scores(np.array([0, 0, 0, 1, 1, 2]), np.array([1, 1, 2, 3, 3, 3]), codebook_size=4)
    assert counts.shape == (4, 10) and counts[0, 1] == 2
    assert scores["codebook_accuracy"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert scores["codebook_purity"] == pytest.approx(5 / 6)
    assert scores["codebook_hungarian"] == pytest.approx(4 / 6)  # digit 3 can match one atom only
    assert scores["codebook_atoms_used"] == 3


def test_retrieval_pr_auc_on_constructed_codes():
    assert retrieval_ks(40) == [1, 2, 5, 10, 20, 39]
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 10)
    z = labels[:, None] * 100.0 + rng.normal(size=(40, 3))  # 4 tight, far-apart clusters of 10
    # relevant 9 per query: recall 1/9, 2/9, 5/9, 1 at precision 1, 1, 1, 0.9
    assert retrieval_pr_auc(z, labels) == pytest.approx(5 / 9 + 4 / 9 * 0.9)
    assert retrieval_pr_auc(rng.normal(size=(40, 3)), labels) < 0.5


@pytest.mark.parametrize("field, value, why", [
    ("relativity", 0.0, "must be > 0"), ("ablate", "hinge_colour", "must be one of"),
    ("dataset", "squares", "V3 needs a sequence dataset"), ("vq_decay", 1.0, "must be in \\(0, 1\\)"),
    ("codebook_size", 1, "must be >= 2"), ("batch_size", 1, "must be >= 2"),
    ("recon_weight", -1.0, "must be >= 0"),
    ("vq_dead_threshold", 5.0, "must be at most the codes per atom of a step .* = 4\\)")])
def test_bad_settings_name_the_field(field, value, why):
    with pytest.raises(ConfigError, match=f"Config.{field}: {why}") as e:
        Config.from_preset("smoke", **{field: value})
    assert e.value.field == field


def test_recon_weight_scales_the_reconstruction_term_only():
    from did_core.models.v3.trainer import build_nets, train_step

    x = get_dataset("digit_sequences").images(
        get_dataset("digit_sequences").sample_sequences(4, np.random.default_rng(0)).reshape(-1, 5))
    losses = {}
    for w in (1.0, 3.0):
        torch.manual_seed(0)
        cfg = Config.from_preset("smoke", recon_weight=w)
        nets = build_nets(cfg, 3)
        opt = torch.optim.AdamW(list(nets["E"].parameters()) + list(nets["D"].parameters()), lr=0.0)
        losses[w] = train_step(nets["E"], nets["D"], nets["Q"], opt, x, cfg)
    assert losses[3.0]["rec"] == pytest.approx(float(losses[1.0]["rec"]))
    assert float(losses[3.0]["loss"] - losses[1.0]["loss"]) == pytest.approx(2 * float(losses[1.0]["rec"]), rel=1e-5)


def test_ablate_switches_off_one_component():
    cfg = Config.from_preset("smoke", ablate="hinge_style")
    assert cfg.hinge_terms() == ("content", "across", "within") and cfg.quantized
    assert not Config.from_preset("smoke", ablate="quantize").quantized


def test_smoke_run_trains_and_writes_its_files(tmp_path):
    assert get_model("v3").config_cls is Config
    events = list(train(Config.from_preset("smoke", seed=1, num_threads=1), out_dir=tmp_path))
    final = events[-1]
    assert isinstance(final, Final) and final.step == 20
    for name in ("codebook_accuracy", "codebook_atoms_used", "prauc_style_colour", "swap_accuracy", "mig"):
        assert np.isfinite(final.scores[name])
    losses = events[0].losses
    assert {"rec", "commitment", "hinge_content", "ratio_within"} <= set(losses)
    counts = json.loads((tmp_path / "codebook.json").read_text())["counts"]
    assert np.array(counts).shape == (10, 10) and np.array(counts).sum() == 100  # 10 samples
    assert (tmp_path / "traversal.png").stat().st_size > 0 and final.artifacts["codebook"].endswith("codebook.json")
