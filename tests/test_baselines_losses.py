"""The baselines' losses on tiny tensors against hand computations, and the shared nets' shapes."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from did_core.models import beta_tcvae, beta_vae, factor_vae
from did_core.models.vae_losses import bernoulli_reconstruction, gaussian_kl, gaussian_log_density, reparameterise
from did_core.models.vae_nets import Decoder, Encoder

LN2 = math.log(2.0)


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_gaussian_kl_matches_hand_value_and_averages_over_the_batch():
    # row 0: 0.5*(1 + 1 - 0 - 1) + 0.5*(0 + 2 - ln2 - 1); row 1: KL(N(0,1)||N(0,1)) = 0
    mean, logvar = t([[1.0, 0.0], [0.0, 0.0]]), t([[0.0, LN2], [0.0, 0.0]])
    expected = (0.5 + 0.5 * (1.0 - LN2)) / 2
    assert gaussian_kl(mean, logvar).item() == pytest.approx(expected, abs=1e-12)


def test_bernoulli_reconstruction_is_sigmoid_cross_entropy_summed_over_pixels():
    logits = t([[[[2.0, 2.0], [0.0, -1.0]]]])  # [1, 1, 2, 2]
    images = t([[[[1.0, 0.0], [0.5, 0.0]]]])
    expected = math.log1p(math.exp(-2)) + math.log1p(math.exp(2)) + LN2 + math.log1p(math.exp(-1))
    assert bernoulli_reconstruction(logits, images).item() == pytest.approx(expected, abs=1e-12)
    # zero logits cost log 2 per pixel whatever the image: 3 channels * 4 pixels, batch mean
    assert bernoulli_reconstruction(torch.zeros(5, 3, 2, 2), torch.rand(5, 3, 2, 2)).item() == pytest.approx(12 * LN2, rel=1e-6)


def test_gaussian_log_density_matches_scipy():
    z, mean, logvar = t([1.0, 0.0, -0.3]), t([0.0, 0.0, 0.7]), t([0.0, math.log(4.0), -1.0])
    expected = norm.logpdf([1.0, 0.0, -0.3], loc=[0.0, 0.0, 0.7], scale=np.exp(0.5 * np.array([0.0, math.log(4.0), -1.0])))
    np.testing.assert_allclose(gaussian_log_density(z, mean, logvar).numpy(), expected, atol=1e-12)


def test_reparameterise_is_mean_plus_std_times_seeded_noise():
    mean, logvar = t([[1.0, -2.0]]), t([[0.0, math.log(9.0)]])
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    z = reparameterise(mean, logvar, torch.Generator().manual_seed(5))
    torch.testing.assert_close(z, mean + t([[1.0, 3.0]]) * eps)


def test_beta_vae_loss_is_reconstruction_plus_beta_kl():
    images, logits = torch.zeros(1, 1, 1, 2, dtype=torch.float64), torch.zeros(1, 1, 1, 2, dtype=torch.float64)
    mean, logvar = t([[1.0, 0.0]]), t([[0.0, LN2]])
    terms = beta_vae.loss_terms(images, logits, mean, logvar, beta=4.0)
    kl = 0.5 + 0.5 * (1.0 - LN2)
    assert terms["reconstruction"].item() == pytest.approx(2 * LN2)
    assert terms["kl"].item() == pytest.approx(kl)
    assert terms["loss"].item() == pytest.approx(2 * LN2 + 4.0 * kl)


def _mws_by_hand(z, mean, logvar, n):
    """Chen et al.'s minibatch-weighted sampling with explicit loops and scipy densities."""
    m, d = z.shape
    std = np.exp(0.5 * logvar)
    total = 0.0
    for i in range(m):
        joint = [np.prod(norm.pdf(z[i], mean[j], std[j])) for j in range(m)]
        log_qz = math.log(sum(joint) / (n * m))
        log_marginals = sum(math.log(sum(norm.pdf(z[i, k], mean[j, k], std[j, k]) for j in range(m)) / (n * m)) for k in range(d))
        total += log_qz - log_marginals
    return total / m


def test_tcvae_total_correlation_matches_minibatch_weighted_sampling_by_hand():
    z = np.array([[0.3, -1.0, 0.5], [1.2, 0.4, -0.2], [-0.7, 0.1, 0.9]])
    mean = np.array([[0.2, -0.8, 0.4], [1.0, 0.5, 0.0], [-0.5, 0.0, 1.0]])
    logvar = np.array([[-1.0, 0.0, -0.5], [0.2, -0.3, -1.5], [0.0, -2.0, 0.1]])
    got = beta_tcvae.total_correlation(t(z), t(mean), t(logvar), dataset_size=1000)
    assert got.item() == pytest.approx(_mws_by_hand(z, mean, logvar, 1000), rel=1e-10)


def _mss_by_hand(z, mean, logvar, n):
    """Chen et al.'s minibatch-stratified sampling: with K = M - 1, sample i weighs itself 1/N,
    sample i+1 (cyclically) (N - K)/(N K) and every other one 1/K."""
    m, d = z.shape
    k = m - 1
    std = np.exp(0.5 * logvar)

    def weight(i, j):
        return 1 / n if j == i else (n - k) / (n * k) if j == (i + 1) % m else 1 / k

    total = 0.0
    for i in range(m):
        log_qz = math.log(sum(weight(i, j) * np.prod(norm.pdf(z[i], mean[j], std[j])) for j in range(m)))
        log_marginals = sum(math.log(sum(weight(i, j) * norm.pdf(z[i, c], mean[j, c], std[j, c]) for j in range(m)))
                            for c in range(d))
        total += log_qz - log_marginals
    return total / m


def test_tcvae_total_correlation_matches_minibatch_stratified_sampling_by_hand():
    z = np.array([[0.3, -1.0, 0.5], [1.2, 0.4, -0.2], [-0.7, 0.1, 0.9], [0.0, 0.6, -1.1]])
    mean = np.array([[0.2, -0.8, 0.4], [1.0, 0.5, 0.0], [-0.5, 0.0, 1.0], [0.1, 0.3, -0.9]])
    logvar = np.array([[-1.0, 0.0, -0.5], [0.2, -0.3, -1.5], [0.0, -2.0, 0.1], [-0.4, -0.6, 0.0]])
    got = beta_tcvae.total_correlation(t(z), t(mean), t(logvar), dataset_size=50, estimator="mss")
    assert got.item() == pytest.approx(_mss_by_hand(z, mean, logvar, 50), rel=1e-10)


def test_mss_weights_sum_to_one_per_row():
    w = beta_tcvae.log_importance_weights(5, 1000, "mss").exp()
    torch.testing.assert_close(w.sum(dim=1), torch.ones(5, dtype=torch.float64))
    assert w[2, 2].item() == pytest.approx(1 / 1000) and w[2, 3].item() == pytest.approx(996 / 4000)
    with pytest.raises(ValueError, match="tc_estimator|TC estimator"):
        beta_tcvae.log_importance_weights(5, 1000, "mcmc")


def test_tcvae_total_correlation_known_cases():
    g = torch.Generator().manual_seed(0)
    z, mean, logvar = (torch.randn(6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    # one latent dimension: the joint is its own marginal, TC = 0
    for estimator in ("mws", "mss"):
        assert beta_tcvae.total_correlation(z[:, :1], mean[:, :1], logvar[:, :1], 500, estimator).item() == pytest.approx(0.0, abs=1e-12)
    # batch of one: log q(z) - sum_d log q(z_d) = -log N + D log N = (D - 1) log N
    assert beta_tcvae.total_correlation(z[:1], mean[:1], logvar[:1], 500).item() == pytest.approx(3 * math.log(500))
    # every posterior the same (true TC = 0): MWS is biased by (D - 1) log N, MSS is exact
    same_mean, same_logvar = mean[:1].expand(6, 4), logvar[:1].expand(6, 4)
    assert beta_tcvae.total_correlation(z, same_mean, same_logvar, 500, "mws").item() == pytest.approx(3 * math.log(500))
    assert beta_tcvae.total_correlation(z, same_mean, same_logvar, 500, "mss").item() == pytest.approx(0.0, abs=1e-10)


def test_tcvae_loss_weighs_tc_by_beta_minus_one_and_equals_vae_at_beta_one():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(4, 1, 2, 2, generator=g)
    logits, mean, logvar, z = torch.randn(4, 1, 2, 2, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    terms = beta_tcvae.loss_terms(images, logits, mean, logvar, z, beta=6.0, dataset_size=100)
    expected = terms["reconstruction"] + terms["kl"] + 5.0 * beta_tcvae.total_correlation(z, mean, logvar, 100)
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    at_one = beta_tcvae.loss_terms(images, logits, mean, logvar, z, beta=1.0, dataset_size=100)["loss"]
    assert at_one.item() == pytest.approx(beta_vae.loss_terms(images, logits, mean, logvar, beta=1.0)["loss"].item(), rel=1e-6)


def test_factor_vae_tc_and_losses_match_hand_values():
    d_logits = t([[2.0, 0.5], [1.0, 1.0]])
    assert factor_vae.tc_estimate(d_logits).item() == pytest.approx(0.75)
    images, logits = torch.ones(2, 1, 1, 1, dtype=torch.float64), torch.zeros(2, 1, 1, 1, dtype=torch.float64)
    mean, logvar = t([[1.0], [1.0]]), t([[0.0], [0.0]])
    terms = factor_vae.loss_terms(images, logits, mean, logvar, d_logits, gamma=10.0)
    assert terms["loss"].item() == pytest.approx(LN2 + 0.5 + 10 * 0.75)
    # joint [0, 0] -> CE(class 0) = ln 2; permuted [ln 3, 0] -> p(class 1) = 1/4, CE = ln 4
    loss = factor_vae.discriminator_loss(t([[0.0, 0.0]]), t([[math.log(3.0), 0.0]]))
    assert loss.item() == pytest.approx(0.5 * (LN2 + math.log(4.0)))


def test_permute_dims_shuffles_each_column_independently_and_reproducibly():
    z = torch.arange(200.0).view(50, 4)
    p = factor_vae.permute_dims(z, torch.Generator().manual_seed(3))
    for k in range(4):
        assert sorted(p[:, k].tolist()) == z[:, k].tolist()
    assert not torch.equal(p, z)
    order = (p - torch.arange(4.0)) / 4  # the source row of every entry
    assert not all(torch.equal(order[:, 0], order[:, k]) for k in range(1, 4))
    torch.testing.assert_close(p, factor_vae.permute_dims(z, torch.Generator().manual_seed(3)))


def test_discriminator_is_six_hidden_layers_of_1000_units():
    disc = factor_vae.Discriminator(latent_dim=10)
    linears = [m for m in disc.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [1000] * 6 + [2]
    assert disc(torch.zeros(3, 10)).shape == (3, 2)


@pytest.mark.parametrize("channels", [1, 3])
def test_encoder_decoder_shapes_and_parameter_count(channels):
    enc, dec = Encoder(channels, latent_dim=10), Decoder(channels, latent_dim=10)
    mean, logvar = enc(torch.rand(2, channels, 64, 64))
    assert mean.shape == logvar.shape == (2, 10)
    assert dec(mean).shape == (2, channels, 64, 64)
    # conv 4x4: (c_in*16 + 1)*c_out; dense 1024 -> 256; two heads 256 -> 10
    enc_params = (channels * 16 + 1) * 32 + (32 * 16 + 1) * 32 + (32 * 16 + 1) * 64 + (64 * 16 + 1) * 64 + 1025 * 256 + 2 * 257 * 10
    dec_params = 11 * 256 + 257 * 1024 + (64 * 16 + 1) * 64 + (64 * 16 + 1) * 32 + (32 * 16 + 1) * 32 + 32 * 16 * channels + channels
    assert sum(p.numel() for p in enc.parameters()) == enc_params
    assert sum(p.numel() for p in dec.parameters()) == dec_params
