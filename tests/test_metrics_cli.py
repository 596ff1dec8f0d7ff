"""python -m did_core.metrics FILE.npz: keys, the documented split, protocols and bad files."""
import json
import subprocess
import sys

import numpy as np
import pytest

from did_core.metrics import scores_from_codes, split_rows
from did_core.metrics.__main__ import main

ALL_KEYS = [
    "mig", "dci_disentanglement", "dci_completeness", "dci_informativeness",
    "sap", "modularity", "explicitness", "gaussian_tc",
]


def codes_and_factors(n, seed):
    rng = np.random.default_rng(seed)
    y = np.stack([rng.integers(0, 3, n), rng.integers(0, 4, n)], axis=1)
    z = np.concatenate([y + 0.1 * rng.normal(size=y.shape), rng.normal(size=(n, 1))], axis=1)
    return z, y


@pytest.fixture
def npz(tmp_path):
    z, y = codes_and_factors(300, 0)
    path = tmp_path / "codes.npz"
    np.savez(path, codes=z, factors=y)
    return path


def run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_json_has_exactly_the_requested_keys_and_uses_the_documented_split(npz, capsys):
    rc, out, err = run([npz, "--metrics", "sap,mig", "--json", "--n-jobs", "1"], capsys)
    assert rc == 0, err
    scores = json.loads(out)
    assert list(scores) == ["mig", "sap"]
    z, y = codes_and_factors(300, 0)
    train, test = split_rows(300, seed=0)
    expected = scores_from_codes(z[train], y[train], z[test], y[test], metrics="mig,sap", n_jobs=1)
    assert scores == pytest.approx(dict(expected), abs=1e-12)
    assert "protocol: dlib" in err


def test_test_arrays_are_used_when_present(tmp_path, capsys):
    z, y = codes_and_factors(200, 1)
    zt, yt = codes_and_factors(100, 2)
    path = tmp_path / "both.npz"
    np.savez(path, codes=z, factors=y, codes_test=zt, factors_test=yt)
    rc, out, _ = run([path, "--metrics", "sap", "--json", "--n-jobs", "1"], capsys)
    assert rc == 0
    expected = scores_from_codes(z, y, zt, yt, metrics="sap", n_jobs=1)["sap"]
    assert json.loads(out)["sap"] == pytest.approx(expected, abs=1e-12)


def test_module_entry_point_prints_every_key(npz):
    proc = subprocess.run(
        [sys.executable, "-m", "did_core.metrics", str(npz), "--protocol", "fast", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(proc.stdout)
    assert list(scores) == ALL_KEYS
    assert all(np.isfinite(v) for v in scores.values())
    assert "protocol: fast" in proc.stderr and "NOT comparable" in proc.stderr


def test_plain_output_is_a_table(npz, capsys):
    rc, out, _ = run([npz, "--metrics", "mig,gaussian_tc"], capsys)
    assert rc == 0
    rows = [line.split() for line in out.strip().splitlines()]
    assert [r[0] for r in rows] == ["mig", "gaussian_tc"] and all(len(r) == 2 for r in rows)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"codes": np.zeros((10, 3))}, "missing array 'factors' (found: codes)"),
        ({"codes": np.full((10, 3), np.nan), "factors": np.arange(10)[:, None] % 2}, "codes: 30 values are NaN"),
        ({"codes": np.zeros((10, 3)), "factors": np.arange(9)[:, None] % 2}, "codes has 10 rows but factors has 9"),
        ({"codes": np.zeros((10, 3)), "factors": np.arange(10)[:, None] % 2, "codes_test": np.zeros((5, 3))},
         "codes_test and factors_test must be given together"),
    ],
)
def test_bad_files_exit_2_with_one_clear_message(tmp_path, capsys, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    rc, out, err = run([path, "--json"], capsys)
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_missing_or_corrupt_file_and_unknown_metric(tmp_path, capsys, npz):
    rc, _, err = run([tmp_path / "nope.npz"], capsys)
    assert rc == 2 and "nope.npz: no such file" in err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    rc, _, err = run([junk], capsys)
    assert rc == 2 and "junk.npz: not a readable .npz archive" in err
    rc, _, err = run([npz, "--metrics", "mig,beta_vae"], capsys)
    assert rc == 2 and "beta_vae sample from a dataset and an encoder" in err
