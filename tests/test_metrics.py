"""The code-based metrics: hand-computed cases, aligned vs random codes, invariances, bad input."""
import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from did_core.metrics import PROTOCOLS, MetricInputError, Scores, scores_from_codes, split_rows
from did_core.metrics.dci import completeness, dci, disentanglement
from did_core.metrics.explicitness import explicitness
from did_core.metrics.gaussian_tc import gaussian_tc, gaussian_tc_from_cov
from did_core.metrics.mig import mig
from did_core.metrics.modularity import modularity, modularity_from_mi
from did_core.metrics.protocols import replace
from did_core.metrics.sap import sap, sap_from_matrix
from did_core.metrics.utils import discrete_entropy, discrete_mutual_info, discretize

SIZES = (3, 4, 5, 6)
# the dlib definitions on a small sample with a cheaper GBT, so that a test takes seconds
TINY = replace("dlib", name="tiny", num_train=600, num_test=300, dci_n_estimators=20)


def factors(n, seed, sizes=SIZES):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, size=n) for s in sizes], axis=1)


def aligned_codes(y, seed, noise=0.01):
    """One code per factor (normalised value) plus two independent nuisance codes."""
    rng = np.random.default_rng(seed)
    z = y / (np.array(SIZES) - 1.0) + noise * rng.normal(size=y.shape)
    return np.concatenate([z, rng.normal(size=(len(y), 2))], axis=1)


@pytest.fixture(scope="module")
def aligned():
    y, yt = factors(600, 1), factors(300, 2)
    return aligned_codes(y, 3), y, aligned_codes(yt, 4), yt


@pytest.fixture(scope="module")
def aligned_scores(aligned):
    return scores_from_codes(*aligned, protocol=TINY, n_jobs=1)


@pytest.fixture(scope="module")
def random_codes():
    rng = np.random.default_rng(5)
    y, yt = factors(600, 6), factors(300, 7)
    return rng.normal(size=(600, 6)), y, rng.normal(size=(300, 6)), yt


# ---------------------------------------------------------------- shared pieces, by hand
def test_discretize_equal_width_bins_between_min_and_max():
    z = np.array([[0.0, 10.0], [0.5, 10.0], [1.0, 30.0], [0.49, 19.9]])
    out = discretize(z, num_bins=2)
    assert out[:, 0].tolist() == [1, 2, 2, 1]  # edges 0, 0.5, 1: max value lands in the last bin
    assert out[:, 1].tolist() == [1, 1, 2, 1]  # edges 10, 20, 30
    assert discretize(np.linspace(0, 1, 41)[:, None], 20).max() == 20


def test_discrete_mutual_info_hand_values():
    y = np.array([[0], [0], [1], [1]])
    codes = np.array([[0, 0, 5], [0, 1, 5], [0, 0, 6], [1, 1, 6]])
    m = discrete_mutual_info(codes, y)
    h_code0 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert m[0, 0] == pytest.approx(h_code0 - 0.5 * math.log(2), abs=1e-12)  # H(c) - H(c | y)
    assert m[1, 0] == pytest.approx(0.0, abs=1e-12)  # independent of y
    assert m[2, 0] == pytest.approx(math.log(2), abs=1e-12)  # a relabelled copy of y
    assert discrete_entropy(y)[0] == pytest.approx(math.log(2))


def test_discrete_mutual_info_agrees_with_sklearn_estimator():
    rng = np.random.default_rng(0)
    codes, y = rng.integers(1, 21, size=(500, 3)), rng.integers(0, 7, size=(500, 2))
    codes[:, 2] = y[:, 0] * 3 + rng.integers(0, 2, size=500)
    m = discrete_mutual_info(codes, y)
    for j in range(3):
        for k in range(2):
            assert m[j, k] == pytest.approx(mutual_info_score(y[:, k], codes[:, j]), abs=1e-12)


# ---------------------------------------------------------------- metric formulas, by hand
def test_mig_hand_case():
    y = np.array([[0], [0], [1], [1]])
    codes = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # code1 = y, code0 partial
    mi_partial = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) - 0.5 * math.log(2)
    assert mig(codes, y) == pytest.approx((math.log(2) - mi_partial) / math.log(2), abs=1e-12)
    assert mig(codes[:, [1, 1]], y) == pytest.approx(0.0, abs=1e-12)  # two equally good codes: no gap


def test_modularity_hand_matrices():
    assert modularity_from_mi(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])) == pytest.approx(1 / 3)
    assert modularity_from_mi(np.array([[2.0, 1.0, 0.0]])) == pytest.approx(1 - 1 / (4 * 2))


def test_dci_disentanglement_and_completeness_hand_matrices():
    assert disentanglement(np.eye(3)) == pytest.approx(1.0, abs=1e-9)
    assert completeness(np.eye(3)) == pytest.approx(1.0, abs=1e-9)
    assert disentanglement(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-9)
    one_code_for_all = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert disentanglement(one_code_for_all) == pytest.approx(0.0, abs=1e-9)
    assert completeness(one_code_for_all) == pytest.approx(1.0, abs=1e-9)
    r = np.array([[0.6, 0.2], [0.0, 0.2]])
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert disentanglement(r) == pytest.approx((1 - h) * 0.8 + 1.0 * 0.2, abs=1e-9)
    assert completeness(r) == pytest.approx(1.0 * 0.6 + 0.0 * 0.4, abs=1e-9)


def test_sap_from_matrix_hand_case():
    s = np.array([[0.9, 0.1], [0.5, 0.3], [0.2, 0.2]])
    assert sap_from_matrix(s) == pytest.approx(((0.9 - 0.5) + (0.3 - 0.2)) / 2)


def test_gaussian_tc_hand_cases():
    r = 0.6
    assert gaussian_tc_from_cov(np.array([[1.0, r], [r, 1.0]])) == pytest.approx(-0.5 * math.log(1 - r * r))
    assert gaussian_tc_from_cov(np.diag([1.0, 4.0, 9.0])) == pytest.approx(0.0, abs=1e-12)
    cov = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])  # third code constant
    assert gaussian_tc_from_cov(cov) == pytest.approx(-0.5 * math.log(1 - 0.25))
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 1))
    z = np.concatenate([a, r * a + math.sqrt(1 - r * r) * rng.normal(size=(20000, 1))], axis=1)
    assert gaussian_tc(z) == pytest.approx(-0.5 * math.log(1 - r * r), abs=0.02)


# ---------------------------------------------------------------- aligned vs random codes
def test_aligned_code_scores_near_one(aligned, aligned_scores):
    s = aligned_scores
    assert s["mig"] > 0.9
    assert s["dci_disentanglement"] > 0.9 and s["dci_completeness"] > 0.9
    assert s["dci_informativeness"] > 0.95
    assert s["gaussian_tc"] < 0.05
    z, y, _, _ = aligned  # nuisance codes carry only sampling noise, whose modularity is arbitrary
    assert modularity(z[:, :4], y) > 0.95


def test_random_code_scores_near_zero(random_codes, aligned_scores):
    s = scores_from_codes(*random_codes, protocol=TINY, n_jobs=1)
    good = aligned_scores
    assert s["mig"] < 0.05
    assert s["dci_disentanglement"] < 0.25
    assert s["dci_informativeness"] < 0.45  # chance is 1/3 .. 1/6
    assert s["sap"] < 0.05 < good["sap"]
    assert s["explicitness"] < 0.56 < good["explicitness"]


def test_scores_invariant_to_permuting_code_dimensions(aligned, aligned_scores):
    z, y, zt, yt = aligned
    perm = np.array([4, 2, 0, 5, 1, 3])
    a = aligned_scores
    b = scores_from_codes(z[:, perm], y, zt[:, perm], yt, protocol=TINY, n_jobs=1)
    for name in ("mig", "sap", "modularity", "gaussian_tc"):
        assert b[name] == pytest.approx(a[name], abs=1e-12), name
    assert b["explicitness"] == pytest.approx(a["explicitness"], abs=1e-6)
    for name in ("dci_disentanglement", "dci_completeness", "dci_informativeness"):
        # the trees visit features in a seeded random order: only exact ties can change
        assert b[name] == pytest.approx(a[name], abs=0.01), name


def test_driver_equals_the_pure_functions(aligned, aligned_scores):
    z, y, zt, yt = aligned
    s = aligned_scores
    assert s["mig"] == mig(z, y)
    assert s["modularity"] == modularity(z, y)
    assert s["gaussian_tc"] == gaussian_tc(z)
    assert s["sap"] == sap(z, y, zt, yt, protocol=TINY)
    assert s["explicitness"] == explicitness(z, y, zt, yt, protocol=TINY)
    d = dci(z, y, zt, yt, protocol=TINY)
    assert all(s[name] == d[name] for name in d)


def test_parallel_fits_give_identical_values(aligned):
    z, y, zt, yt = aligned
    quick = replace(TINY, name="quick", dci_n_estimators=5)
    sequential = scores_from_codes(z, y, zt, yt, protocol=quick, metrics="dci,sap,explicitness", n_jobs=1)
    parallel = scores_from_codes(z, y, zt, yt, protocol=quick, metrics="dci,sap,explicitness", n_jobs=2)
    assert dict(parallel) == dict(sequential)


def test_same_seed_same_scores_whatever_the_metric_selection(aligned, aligned_scores):
    a = scores_from_codes(*aligned, protocol=TINY, metrics=["dci", "mig"], n_jobs=1)
    assert list(a) == ["mig", "dci_disentanglement", "dci_completeness", "dci_informativeness"]
    assert all(a[name] == aligned_scores[name] for name in a)


# ---------------------------------------------------------------- protocols, split, labelling
def test_split_rows_is_seeded_two_thirds_and_disjoint():
    train, test = split_rows(300, seed=0)
    assert len(train) == 200 and len(test) == 100
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(300))
    assert np.array_equal(split_rows(300, seed=0)[0], train)
    assert not np.array_equal(split_rows(300, seed=1)[0], train)


def test_without_test_arrays_the_documented_split_is_used(aligned):
    z, y, _, _ = aligned
    train, test = split_rows(len(z), seed=0)
    s = scores_from_codes(z, y, protocol=TINY, metrics="mig,sap", n_jobs=1)
    assert s["mig"] == mig(z[train], y[train])
    assert s["sap"] == sap(z[train], y[train], z[test], y[test], protocol=TINY)


def test_protocol_sample_counts_take_the_first_rows(aligned):
    z, y, zt, yt = aligned
    small = replace(TINY, name="small", num_train=300, num_test=100)
    s = scores_from_codes(z, y, zt, yt, protocol=small, metrics="mig,sap", n_jobs=1)
    assert s["mig"] == mig(z[:300], y[:300])
    assert s["sap"] == sap(z[:300], y[:300], zt[:100], yt[:100], protocol=small)
    # classifiers on fewer rows (as in ``fast``); MIG keeps all the training rows
    sub = replace(TINY, name="sub", classifier_num_train=200)
    s = scores_from_codes(z, y, zt, yt, protocol=sub, metrics="mig,sap", n_jobs=1)
    assert s["mig"] == mig(z, y)
    assert s["sap"] == sap(z[:200], y[:200], zt, yt, protocol=sub)


def test_dlib_protocol_has_the_published_constants():
    p = PROTOCOLS["dlib"]
    assert (p.num_train, p.num_test, p.num_bins) == (10_000, 5_000, 20)
    assert (p.dci_model, p.dci_n_estimators, p.dci_max_depth, p.dci_learning_rate) == ("gbt", 100, 3, 0.1)
    assert (p.sap_svm_C, p.dci_entropy_eps) == (0.01, 1e-11)
    assert (p.factor_vae_batch_size, p.factor_vae_num_variance, p.factor_vae_num_train) == (64, 10_000, 10_000)
    assert (p.factor_vae_num_eval, p.factor_vae_prune_std) == (5_000, 0.05)
    assert (p.beta_vae_batch_size, p.beta_vae_num_train, p.beta_vae_num_eval) == (64, 10_000, 5_000)
    assert p.comparable_with_published and not PROTOCOLS["fast"].comparable_with_published


def test_scores_carry_their_protocol_and_fast_columns_are_prefixed(aligned):
    s = scores_from_codes(*aligned, protocol="fast", metrics="mig", n_jobs=1)
    assert isinstance(s, Scores) and s.protocol == "fast"
    assert s.columns() == {"fast/mig": s["mig"]}
    assert Scores({"mig": 0.5}, "dlib").columns() == {"mig": 0.5}
    with pytest.raises(ValueError, match="new name"):
        replace("dlib", num_train=10)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(factors=a["factors"][:-1]), "codes has 600 rows but factors has 599"),
        (lambda a: a.update(factors=a["factors"] + 0.5), r"factors: expected integer factor indices, row 0"),
        (lambda a: a["factors"].__setitem__((3, 1), -2), r"factors: factor indices must be >= 0, row 3 column 1 is -2"),
        (lambda a: a["codes"].__setitem__((7, 2), np.nan), r"codes: 1 values are NaN or infinite \(first at row 7, column 2\)"),
        (lambda a: a["factors"].__setitem__((slice(None), 2), 5), r"factors: column 2 is constant \(every row is 5\)"),
        (lambda a: a.update(codes=a["codes"][:, :1]), "codes: need at least two code dimensions, got 1"),
        (lambda a: a.update(codes_test=a["codes_test"][:, :4]), "codes_test has 4 columns but codes has 6"),
        (lambda a: a.update(factors_test=a["factors_test"][:, :3]), "factors_test has 3 columns but factors has 4"),
        (lambda a: a.update(codes="abc"), "codes: expected a 2-D array"),
        (lambda a: a.update(factors_test=None), "codes_test and factors_test must be given together"),
        (lambda a: a.update(metrics="mig,factor_vae"), "factor_vae sample from a dataset and an encoder"),
        (lambda a: a.update(metrics="mig,foo"), r"metrics: unknown metric\(s\) \['foo'\]"),
    ],
)
def test_bad_input_raises_one_clear_error(aligned, change, message):
    z, y, zt, yt = aligned
    args = {"codes": z.copy(), "factors": y.copy(), "codes_test": zt.copy(), "factors_test": yt.copy(), "metrics": "mig"}
    change(args)
    with pytest.raises(MetricInputError, match=message):
        scores_from_codes(protocol=TINY, n_jobs=1, **args)


def test_unknown_protocol_is_named():
    with pytest.raises(ValueError, match="unknown protocol 'slow'"):
        scores_from_codes(np.zeros((4, 2)), np.array([[0], [1], [0], [1]]), protocol="slow")


def test_single_factor_dci_is_refused():
    y = factors(60, 0, sizes=(3,))
    z = np.random.default_rng(0).normal(size=(60, 3))
    assert 0 <= scores_from_codes(z, y, protocol=TINY, metrics="mig", n_jobs=1)["mig"] <= 1
    with pytest.raises(MetricInputError, match="at least two factors"):
        scores_from_codes(z, y, protocol=TINY, metrics="dci", n_jobs=1)
