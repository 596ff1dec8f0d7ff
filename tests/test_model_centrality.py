"""ModelCentrality (did_core/metrics/model_centrality.py) on constructed generators: a pool whose
latents each move one factor of a tiny synthetic world is central, one that mixes them is not;
the FactorVAE vote it shares with did_core/metrics/factor_vae.py; seeding and the protocol sizes."""
from __future__ import annotations

import numpy as np
import pytest

from did_core.metrics import MetricInputError, get_protocol
from did_core.metrics.factor_vae import majority_vote_accuracy, votes_from_codes
from did_core.metrics.model_centrality import (GenerativeModel, centrality, encoder_scores, model_centrality,
                                               num_variance)
from did_core.metrics.protocols import replace

K = 4  # factors of the synthetic world, latents of every model
TINY = replace("fast", name="tiny", mc_num_groups=80, mc_group_size=20, mc_num_variance=400)


class LinearModel:
    """A model of the synthetic world whose 'images' are the K factors: ``x = A z``, ``z ~ U(-1, 1)^K``,
    and whose encoder inverts its own generator, ``z = A^-1 x``."""

    n_latents = K

    def __init__(self, mixing: np.ndarray):
        self.mixing, self.unmixing = mixing, np.linalg.inv(mixing)
        self.prior_calls: list[int] = []

    def sample_prior(self, n, rng):
        self.prior_calls.append(n)
        return rng.uniform(-1, 1, size=(n, K))

    def sample(self, codes):
        return codes @ self.mixing.T

    def encode(self, images):
        return images @ self.unmixing.T


def disentangled(seed: int) -> LinearModel:
    """Each latent moves one factor: a permutation with signs and scales."""
    rng = np.random.default_rng(seed)
    return LinearModel(np.eye(K)[rng.permutation(K)] * rng.choice([-1, 1], K) * rng.uniform(0.5, 2, K))


def mixing(kind: str) -> LinearModel:
    """Every latent moves every factor."""
    if kind == "hadamard":
        h = np.array([[1, 1], [1, -1]])
        return LinearModel(np.kron(h, h) / 2.0)
    return LinearModel(np.linalg.qr(np.random.default_rng(7).normal(size=(K, K)))[0])


@pytest.fixture(scope="module")
def pool():
    return [disentangled(s) for s in (1, 2, 3)] + [mixing("hadamard"), mixing("rotation")]


def test_the_contract_is_a_protocol(pool):
    assert all(isinstance(m, GenerativeModel) for m in pool)
    assert not isinstance(object(), GenerativeModel)


def test_votes_and_majority_vote_known_values():
    # three groups fixing label 0, 1, 0: dimension 2, 0, 2 varies least in each
    spread = np.array([[1, 1, 0.1], [0.1, 1, 1], [1, 1, 0.1]])  # [group, dimension]
    codes = np.arange(4)[None, :, None] * spread[:, None, :]  # [3 groups, 4 images, 3 dimensions]
    votes = votes_from_codes(codes, np.array([0, 1, 0]), np.ones(3), np.ones(3, dtype=bool), num_labels=2)
    assert votes.tolist() == [[0, 0, 2], [1, 0, 0]]
    assert majority_vote_accuracy(votes, votes) == 1.0
    # a pruned dimension takes no vote (groups 0 and 2 then tie dimensions 0 and 1: the first wins)
    votes = votes_from_codes(codes, np.array([0, 1, 0]), np.ones(3), np.array([True, True, False]), num_labels=2)
    assert votes.tolist() == [[2, 0, 0], [1, 0, 0]]
    assert majority_vote_accuracy(votes, votes) == pytest.approx(2 / 3)


def test_centrality_known_values():
    sym, scores = centrality(np.array([[np.nan, 0.9, 0.2], [0.7, np.nan, 0.4], [0.2, 0.2, np.nan]]))
    assert sym[0, 1] == sym[1, 0] == pytest.approx(0.8)
    assert scores.tolist() == pytest.approx([0.5, 0.55, 0.25])
    with pytest.raises(MetricInputError, match="square matrix of >= 2"):
        centrality(np.zeros((1, 1)))


def test_disentangled_generators_are_central_mixing_ones_not(pool):
    result = model_centrality(pool, TINY, seed=0)
    aligned = result.matrix[:3, :3][~np.eye(3, dtype=bool)]
    assert aligned.min() == 1.0  # fixing one latent fixes exactly one code dimension of the other encoders
    assert np.isnan(np.diag(result.matrix)).all()
    assert result.scores[:3].min() > result.scores[3:].max() + 0.05
    # a mixing generator read by an aligned encoder: every code dimension moves with every latent
    assert result.matrix[:3, 3].max() < 0.75
    assert result.symmetric == pytest.approx(result.symmetric.T, nan_ok=True)


def test_seeded_and_pairs_computable_alone(pool):
    a, b = model_centrality(pool, TINY, seed=4), model_centrality(pool, TINY, seed=4)
    assert np.array_equal(a.matrix, b.matrix, equal_nan=True)
    # the pair (encoder 2, generator 3) alone: what orchestrator.select caches, the same number
    alone = encoder_scores(pool[3], [pool[2]], TINY, np.random.default_rng([4, 3]))
    assert alone[0] == a.matrix[2, 3]


def test_protocol_sizes_and_the_authors_variance_draws():
    dlib, fast = get_protocol("dlib"), get_protocol("fast")
    assert (dlib.mc_num_groups, dlib.mc_group_size, dlib.mc_num_variance) == (500, 100, None)
    assert fast.mc_num_groups * fast.mc_group_size < dlib.mc_num_groups * dlib.mc_group_size
    assert (dlib.udr_num_points, dlib.udr_lasso_alpha, dlib.udr_kl_threshold) == (1000, 0.1, 0.01)
    with pytest.raises(MetricInputError, match="a tenth of the training set"):
        num_variance(dlib, None)
    assert num_variance(dlib, 737_280) == 73_728  # dSprites: N / 10, as main_mc_generate_data.py
    model = disentangled(1)
    sizes = replace("dlib", name="dlib_small", mc_num_groups=10, mc_group_size=5)
    encoder_scores(model, [disentangled(2)], sizes, np.random.default_rng(0), dataset_size=1_000)
    assert model.prior_calls == [100, 50]  # the spread's free draws first, then 10 groups of 5


def test_bad_encoders_and_pools_are_refused(pool):
    class Broken(LinearModel):
        def encode(self, images):
            return np.full((len(images), K), np.nan)

    with pytest.raises(MetricInputError, match="encode: must return finite codes"):
        encoder_scores(pool[0], [Broken(np.eye(K))], TINY)
    with pytest.raises(MetricInputError, match="got 1, need >= 2"):
        model_centrality(pool[:1], TINY)

    class Constant(LinearModel):
        def encode(self, images):
            return np.zeros((len(images), K))

    assert encoder_scores(pool[0], [Constant(np.eye(K))], TINY).tolist() == [0.0]  # no dimension can vote
