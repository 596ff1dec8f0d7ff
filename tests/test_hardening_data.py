"""Issue 44, points 9-10: a ``file:`` dataset is checked for shape sanity before any trial (two
images or more, every factor with two values or more, a factor grid within a bound of the images
it holds), and no file makes each trial process allocate what it does not hold (a declared grid
of 10^12 points, an .h5 declaring 10^9 images, a compressed .npz inflating to gigabytes)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from did_core.data import DatasetError, get_dataset
from did_core.data import factor_file
from did_core.data.writers import write_factor_file
from orchestrator.study_file.resolve import parse_study
from orchestrator.study_file import StudyError
from test_plugins import STUDY

ROOT = Path(__file__).resolve().parent.parent


def images(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, 8, 8, 1), dtype=np.uint8)


def refused(path: Path, why: str) -> None:
    """Refused by the dataset and by the study check, before any trial, with the same one error."""
    with pytest.raises(DatasetError, match=why):
        get_dataset(f"file:{path}")
    with pytest.raises(StudyError, match=r"<study>: dataset: .*" + why):
        parse_study({**STUDY, "model": "beta_vae", "dataset": f"file:{path}"}, "smoke")


# ---- 9. shape sanity -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_a_file_with_no_image_or_a_single_image_is_refused(tmp_path, suffix):
    none = write_factor_file(tmp_path / f"none{suffix}", np.zeros((0, 8, 8, 1), np.uint8), ["a"], [2],
                             factors=np.zeros((0, 1), np.int64))
    refused(none, r"'images' holds 0 images; a dataset needs at least two")
    one = write_factor_file(tmp_path / f"one{suffix}", images(1), ["a"], [2], factors=np.array([[1]]))
    refused(one, r"'images' holds 1 image; a dataset needs at least two")


def test_a_factor_with_one_value_is_refused(tmp_path):
    declared = write_factor_file(tmp_path / "declared.npz", images(4), ["shape", "size"], [4, 1])
    refused(declared, r"factor 'size' has 1 value; every factor needs at least two")
    present = write_factor_file(tmp_path / "present.npz", images(4), ["shape", "size"], [4, 2],
                                factors=np.array([[0, 1], [1, 1], [2, 1], [3, 1]]))
    refused(present, r"factor 'size' takes one value in 'factors' \(1\); every factor needs at least two")


def test_a_sane_small_file_is_still_accepted(tmp_path):
    path = write_factor_file(tmp_path / "ok.npz", images(4), ["a", "b"], [2, 2], compressed=True)
    assert get_dataset(f"file:{path}").factor_sizes == (2, 2)


# ---- 10. no file makes a trial allocate what it does not hold -------------------------------------

def open_limited(path: Path) -> subprocess.CompletedProcess:
    """``get_dataset`` in a process whose address space may grow by at most 1.5 GB after its imports
    (so that the unfixed code's allocation of gigabytes fails fast instead of filling the machine)."""
    code = textwrap.dedent("""
        import resource, sys
        from did_core.data import DatasetError, get_dataset
        used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + (3 << 29), resource.RLIM_INFINITY))
        try:
            get_dataset("file:" + sys.argv[1])
            print("accepted")
        except DatasetError as e:
            print("DatasetError", e)
    """)
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_a_small_npz_declaring_a_huge_grid_is_one_error(tmp_path):
    path = write_factor_file(tmp_path / "huge.npz", images(200), ["a", "b"], [10**6, 10**6],
                             factors=np.stack([np.arange(200), np.arange(200)], axis=1))
    assert path.stat().st_size < 60_000
    p = open_limited(path)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.stdout.strip() == (f"DatasetError {path}: the factor grid 1000000 x 1000000 has 1,000,000,000,000 points "
                                "for 200 images (at most 1000 per image, or 1,048,576); check 'factor_sizes'")


def test_a_small_h5_declaring_a_billion_images_is_one_error(tmp_path):
    path = tmp_path / "sparse.h5"
    with h5py.File(path, "w") as f:  # chunks never written: 2 KB on disk
        f.create_dataset("images", shape=(10**9, 8, 8, 1), dtype="u1", chunks=(1, 8, 8, 1))
        f.create_dataset("factor_names", data=np.array(["a", "b"], dtype="S"))
        f.create_dataset("factor_sizes", data=np.array([10**5, 10**4]))
    assert path.stat().st_size < 4_000
    p = open_limited(path)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.stdout.strip() == (f"DatasetError {path}: 'images' declares shape (1000000000, 8, 8, 1) (64,000,000,000 "
                                "bytes), but the file stores 0 bytes for it; the file is corrupt or not written out")


def test_a_compressed_npz_inflating_past_the_bound_is_refused_with_advice(tmp_path, monkeypatch):
    """The bound is 256 MiB; here 1 MiB, so that the test need not inflate gigabytes."""
    monkeypatch.setattr(factor_file, "MAX_COMPRESSED_BYTES", 1 << 20, raising=False)
    path = write_factor_file(tmp_path / "bomb.npz", np.zeros((512, 64, 64, 1), np.uint8), ["a", "b"], [32, 16],
                             compressed=True)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("images.npy").file_size > 2 << 20 > path.stat().st_size * 20
    with pytest.raises(DatasetError, match=r"'images' is compressed and inflates to 2,097,280 bytes, which every trial "
                                           r"process would decompress into its memory \(at most 1 MiB\); store it "
                                           r"uncompressed \(np.savez, memory-mapped and shared\) or as .h5"):
        get_dataset(f"file:{path}")
    small = write_factor_file(tmp_path / "small.npz", images(4), ["a", "b"], [2, 2], compressed=True)
    assert get_dataset(f"file:{small}").num_rows == 4  # under the bound: read as before
