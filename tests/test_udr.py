"""UDR (did_core/metrics/udr.py): known values derived by hand, the invariants of the authors'
definition, the dead-dimension mask, and ``python -m did_core.metrics.udr``'s output and errors.

(The match with disentanglement_lib's own ``compute_udr_sklearn`` was checked outside the
repository, on random representations; see docs/selection.md.)
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from did_core.metrics import MetricInputError
from did_core.metrics.udr import lasso_matrix, main, relative_strength, spearman_matrix, udr

N, D = 1000, 5
PERM, SIGNS = [2, 0, 4, 1, 3], np.array([1, -1, 1, -1, 1])


@pytest.fixture(scope="module")
def base():
    return np.random.default_rng(0).normal(size=(N, D))


def aligned(z, rng=None):
    """The same code, its dimensions permuted, sign-flipped, rescaled and shifted."""
    return z[:, PERM] * SIGNS * np.array([3, 0.5, 2, 1, 7]) + 2


def rotated(z, seed=1):
    return z @ np.linalg.qr(np.random.default_rng(seed).normal(size=(D, D)))[0]


def test_relative_strength_known_values():
    assert relative_strength(np.eye(3)) == 1.0
    # two dimensions that each explain both of the others' (a split factor): columns and rows 1/2, 1/2, 1
    assert relative_strength(np.array([[1.0, 1, 0], [1, 1, 0], [0, 0, 1]])) == pytest.approx(2 / 3)
    assert relative_strength(np.ones((3, 3))) == pytest.approx(1 / 3)
    assert relative_strength(np.zeros((3, 3))) == 0.0  # 0/0 is taken as 0
    # a column holding a NaN (an undefined rank correlation) scores 0, as does its row
    corr = np.eye(3)
    corr[0, 0] = np.nan
    assert relative_strength(corr) == pytest.approx(2 / 3)
    assert relative_strength(np.zeros((0, 3))) == 0.0  # nothing alive


def test_aligned_models_score_near_one_rotations_low(base):
    lasso = udr(np.stack([base, aligned(base)]), correlation="lasso")
    # by hand: on standardised codes the lasso coefficient of a perfect match is 1 - alpha = 0.9,
    # every other coefficient 0 (the sample correlations, ~0.03, stay below alpha)
    assert lasso.pairwise[0, 1] == pytest.approx(0.9, abs=1e-6)
    assert lasso.pairwise[1, 0] == pytest.approx(0.9, abs=1e-6)
    assert lasso.model_scores == pytest.approx([0.9, 0.9], abs=1e-6)
    spearman = udr(np.stack([base, aligned(base)]), correlation="spearman")
    # |rho| = 1 on the matched pairs, the others ~ sqrt(2 / pi) / sqrt(N) each: 1 / (1 + 4 * 0.025) ~ 0.9
    assert spearman.model_scores == pytest.approx([0.9, 0.9], abs=0.03)
    for correlation in ("lasso", "spearman"):
        mixed = udr(np.stack([base, rotated(base)]), correlation=correlation)
        assert mixed.model_scores.max() < 0.5
        noise = udr(np.stack([base, np.random.default_rng(5).normal(size=(N, D))]), correlation=correlation)
        assert noise.model_scores.max() < 0.05


def test_model_score_is_the_median_of_its_column(base):
    codes = np.stack([base, aligned(base), rotated(base), rotated(base, seed=2)])
    result = udr(codes, correlation="lasso")
    assert np.diag(result.pairwise).tolist() == [0.0] * 4
    for i in range(4):
        assert result.model_scores[i] == pytest.approx(np.median(np.delete(result.pairwise[:, i], i)))
    # the two aligned models agree with each other only: their median over three others is a rotated pair's
    assert result.model_scores[0] == pytest.approx(np.median([0.9, result.pairwise[2, 0], result.pairwise[3, 0]]),
                                                   abs=1e-6)


def test_correlation_matrices_orientation(base):
    # rows: dimensions of the first model; columns: of the second
    other = aligned(base)
    ranks = lambda z: np.argsort(np.argsort(z, axis=0), axis=0).astype(float) + 1  # noqa: E731
    rho = spearman_matrix(ranks(base), ranks(other))
    lasso = lasso_matrix((base - base.mean(0)) / base.std(0), (other - other.mean(0)) / other.std(0))
    for m in (rho, lasso):
        assert [int(np.argmax(m[a])) for a in range(D)] == [PERM.index(a) for a in range(D)]


def test_a_dead_dimension_is_masked(base):
    """A collapsed latent (mean KL ~0) is zeroed and left out: the scores are those of the live dims."""
    rng = np.random.default_rng(3)
    alive = np.stack([base, aligned(base)])
    noisy = np.concatenate([alive, rng.normal(size=(2, N, 1))], axis=2)  # one extra dimension of noise each
    kl = np.concatenate([np.ones((2, D)), [[0.001], [0.0]]], axis=1)
    for correlation in ("lasso", "spearman"):
        masked = udr(noisy, kl, correlation=correlation)
        assert masked.model_scores == pytest.approx(udr(alive, None, correlation).model_scores, abs=1e-9)
        unmasked = udr(noisy, None, correlation=correlation)  # kept alive, the noise dimension costs
        assert unmasked.model_scores.max() < masked.model_scores.min() - 0.05


def test_the_threshold_masks_and_the_fixed_001_zeroes(base):
    """As the reference: dimensions with KL <= 0.01 are zeroed before the fits whatever the
    threshold; the threshold only decides which rows and columns count."""
    codes = np.stack([base, aligned(base)])
    kl = np.ones((2, D))
    kl[0, 0] = 0.015  # alive at 0.01, masked at 0.02
    low, high = (udr(codes, kl, "lasso", kl_threshold=t) for t in (0.01, 0.02))
    assert low.model_scores == pytest.approx([0.9, 0.9], abs=1e-6)
    # at 0.02 model 0's row 0 is gone: its match (model 1's dimension 1) is a column with nothing left in it
    assert high.pairwise[0, 1] < low.pairwise[0, 1]


@pytest.mark.parametrize("codes, kl, needle", [
    (np.zeros((1, 10, 3)), None, "need >= 2"),
    (np.zeros((10, 3)), None, "[models, points, dims]"),
    (np.full((2, 10, 3), np.nan), None, "codes: 60 values are NaN"),
    (np.zeros((2, 10, 3)), np.zeros((2, 4)), "kl: expected [models, dims] = [2, 3]"),
    (np.zeros((2, 10, 3)), np.array([[0, 1, np.inf], [0, 0, 0]]), "kl: 1 values are NaN or infinite"),
    (np.array([[["a"]]] * 2), None, "codes: expected numbers"),
])
def test_bad_arrays_are_one_error_naming_the_array(codes, kl, needle):
    with pytest.raises(MetricInputError, match=None) as err:
        udr(codes, kl)
    assert needle in str(err.value)


def test_cli_json_matches_the_function(base, tmp_path, capsys):
    codes = np.stack([base, aligned(base), rotated(base)])
    kl = np.ones((3, D))
    kl[2, 4] = 0.0
    path = tmp_path / "reps.npz"
    np.savez(path, codes=codes, kl=kl)
    for correlation in ("lasso", "spearman"):
        assert main([str(path), "--correlation", correlation, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert list(out) == ["model_scores", "pairwise"]
        assert np.array(out["pairwise"]).shape == (3, 3) and len(out["model_scores"]) == 3
        expected = udr(codes, kl, correlation)
        assert out["model_scores"] == pytest.approx(expected.model_scores.tolist(), abs=1e-12)
        assert np.abs(np.array(out["pairwise"]) - expected.pairwise).max() < 1e-12
    assert main([str(path), "--kl-threshold", "2", "--json"]) == 0  # every dimension masked: 0, not a crash
    assert json.loads(capsys.readouterr().out)["model_scores"] == [0.0, 0.0, 0.0]


def ragged_models() -> np.ndarray:
    """Two models of 3 and 2 dimensions in one array: only an object array holds them."""
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = np.zeros((5, 3)), np.zeros((5, 2))
    return arr


def test_cli_bad_files_exit_2_without_traceback(tmp_path, capsys):
    cases = {
        "nan.npz": (dict(codes=np.full((2, 5, 3), np.nan)), "codes: 30 values are NaN"),
        "one.npz": (dict(codes=np.zeros((1, 5, 3))), "got 1 model(s)"),
        "ragged.npz": (dict(codes=np.zeros((2, 5, 3)), kl=np.zeros((2, 2))), "kl: expected [models, dims] = [2, 3]"),
        "object.npz": (dict(codes=ragged_models()), "array 'codes' holds Python objects"),
        "nocodes.npz": (dict(reps=np.zeros((2, 5, 3))), "missing array 'codes'"),
    }
    for name, (arrays, needle) in cases.items():
        np.savez(tmp_path / name, **arrays)
        assert main([str(tmp_path / name), "--json"]) == 2, name
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("error: ") and needle in err, (name, err)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main([str(tmp_path / "junk.npz")]) == 2 and "not a readable .npz archive" in capsys.readouterr().err
    # the module entry point: one line on stderr, exit 2, no traceback
    proc = subprocess.run([sys.executable, "-m", "did_core.metrics.udr", str(tmp_path / "object.npz"), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'object.npz'}: array 'codes' holds Python objects "
                                                "(dtype object), not numbers; save it as a numeric array"]
