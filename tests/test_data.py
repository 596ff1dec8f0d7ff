"""The file sources: small files in DeepMind's real formats round-trip, sample only present rows,
and every damaged or wrong file gives one DatasetError that names it."""
import pickle

import h5py
import numpy as np
import pytest
import torch

from did_core.data import DatasetError, get_dataset
from did_core.data.dsprites import FILENAME as DSPRITES_FILE
from did_core.data.files import read_npz_bits
from did_core.data.shapes3d import FILENAME as SHAPES3D_FILE
from did_core.data.writers import write_dsprites_npz, write_shapes3d_h5

torch.set_num_threads(1)


def _distinct_rows(name, n, seed):
    ds = get_dataset(name)
    return np.unique(ds.sample_factors(n, np.random.default_rng(seed)), axis=0)


@pytest.fixture(scope="module")
def dsprites_file(tmp_path_factory):
    y = _distinct_rows("dsprites", 300, 0)
    y = y[np.random.default_rng(1).permutation(len(y))]  # row order must not matter
    return write_dsprites_npz(tmp_path_factory.mktemp("dsprites") / DSPRITES_FILE, y), y


@pytest.fixture(scope="module")
def shapes3d_file(tmp_path_factory):
    y = _distinct_rows("shapes3d", 60, 0)
    y = y[np.random.default_rng(1).permutation(len(y))]
    return write_shapes3d_h5(tmp_path_factory.mktemp("shapes3d") / SHAPES3D_FILE, y), y


def test_dsprites_file_images_equal_the_procedural_images_they_were_written_from(dsprites_file):
    path, y = dsprites_file
    ds = get_dataset("dsprites", source="file", path=path)
    x = ds.images(y)
    assert x.dtype == torch.float32 and x.shape == (len(y), 1, 64, 64)
    assert torch.equal(x, get_dataset("dsprites").images(y))
    assert ds.num_rows == len(y) and not ds.complete


def test_shapes3d_file_images_round_trip_exactly_through_uint8(shapes3d_file):
    path, y = shapes3d_file
    ds = get_dataset("3dshapes", source="file", path=path)
    with h5py.File(path, "r") as f:
        stored, labels = f["images"][()], f["labels"][()]
    x = ds.images(y[::-1])  # a different order than the file's, with rows read sorted internally
    expected = torch.from_numpy(stored[::-1].transpose(0, 3, 1, 2).astype(np.float32)) / 255
    assert torch.equal(x, expected)
    assert np.allclose(labels[:, 3], ds.factor_values[3][y[:, 3]])  # scale values, e.g. 0.75..1.25
    assert (x - get_dataset("shapes3d").images(y[::-1])).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("name", ["dsprites", "shapes3d"])
def test_both_sources_have_identical_factor_metadata(name, dsprites_file, shapes3d_file):
    path = (dsprites_file if name == "dsprites" else shapes3d_file)[0]
    proc, file = get_dataset(name), get_dataset(name, source="file", path=path)
    assert (proc.name, proc.factor_names, proc.factor_sizes, proc.num_channels) == (
        file.name, file.factor_names, file.factor_sizes, file.num_channels
    )
    assert all(np.array_equal(a, b) for a, b in zip(proc.factor_values, file.factor_values))
    assert [len(v) for v in proc.factor_values] == list(proc.factor_sizes)
    assert proc.source == "procedural" and file.source == "file"


def test_file_is_found_from_a_folder_and_from_DID_DATA_DIR(dsprites_file, monkeypatch):
    path, y = dsprites_file
    by_folder = get_dataset("dsprites", source="file", path=path.parent)
    monkeypatch.setenv("DID_DATA_DIR", str(path.parent))
    by_env = get_dataset("dsprites", source="file")
    assert by_folder.path == by_env.path == path
    assert torch.equal(by_env.images(y[:5]), by_folder.images(y[:5]))


def test_a_partial_file_samples_only_rows_it_holds(shapes3d_file):
    path, y = shapes3d_file
    ds = get_dataset("shapes3d", source="file", path=path)
    rng = np.random.default_rng(0)
    held = {tuple(r) for r in y}
    drawn = ds.sample_factors(500, rng)
    assert {tuple(r) for r in drawn} <= held and len({tuple(r) for r in drawn}) > 40
    for factor in range(ds.num_factors):
        fixed = ds.sample_fixed_factor(factor, 30, rng)
        assert ds.contains(fixed).all() and (fixed[:, factor] == fixed[0, factor]).all()
        y1, y2 = ds.sample_pairs_with_fixed_factor(factor, 30, rng)
        assert ds.contains(y1).all() and ds.contains(y2).all()
        assert (y1[:, factor] == y2[:, factor]).all()
    x, yb = next(ds.batches(16, seed=3))
    assert torch.equal(x, ds.images(yb)) and ds.contains(yb).all()


def test_image_of_a_combination_the_file_lacks_names_the_file(dsprites_file):
    path, y = dsprites_file
    ds = get_dataset("dsprites", source="file", path=path)
    absent = next(r for r in get_dataset("dsprites").sample_factors(50, np.random.default_rng(9)) if not ds.contains(r[None])[0])
    with pytest.raises(DatasetError, match="holds no image for factors") as e:
        ds.images(np.stack([y[0], absent]))
    assert str(path) in str(e.value)


def test_shapes3d_file_dataset_pickles_and_reopens_its_file(shapes3d_file):
    path, y = shapes3d_file
    ds = get_dataset("shapes3d", source="file", path=path)
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone.images(y[:7]), ds.images(y[:7]))


# --- errors: one DatasetError (or ValueError for names) that names the file -------------------


def _copy_bytes(src, dst, edit):
    data = bytearray(src.read_bytes())
    dst.write_bytes(edit(data))
    return dst


def _assert_dataset_error(name, path, *fragments):
    with pytest.raises(DatasetError) as e:
        get_dataset(name, source="file", path=path)
    message = str(e.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("name", ["dsprites", "shapes3d"])
def test_missing_file_is_named(name, tmp_path):
    _assert_dataset_error(name, tmp_path / "nope.bin", "file not found")
    expected = DSPRITES_FILE if name == "dsprites" else SHAPES3D_FILE
    _assert_dataset_error(name, tmp_path, "file not found", expected)  # a folder without the file


def test_no_path_and_no_DID_DATA_DIR_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("DID_DATA_DIR", raising=False)
    with pytest.raises(DatasetError, match="DID_DATA_DIR"):
        get_dataset("dsprites", source="file")


@pytest.mark.parametrize("name", ["dsprites", "shapes3d"])
def test_truncated_file(name, dsprites_file, shapes3d_file, tmp_path):
    src = (dsprites_file if name == "dsprites" else shapes3d_file)[0]
    bad = _copy_bytes(src, tmp_path / src.name, lambda b: bytes(b[: len(b) // 2]))
    _assert_dataset_error(name, bad, "truncated")


@pytest.mark.parametrize("where", ["start", "middle"])
def test_corrupt_npz_bytes(where, dsprites_file, tmp_path):
    src = dsprites_file[0]

    def scramble(b):
        at = 0 if where == "start" else len(b) // 3
        b[at : at + 256] = np.random.default_rng(0).integers(0, 256, 256, dtype=np.uint8).tobytes()
        return bytes(b)

    _assert_dataset_error("dsprites", _copy_bytes(src, tmp_path / src.name, scramble))


def test_corrupt_h5_header(shapes3d_file, tmp_path):
    src = shapes3d_file[0]
    bad = _copy_bytes(src, tmp_path / src.name, lambda b: bytes(64) + bytes(b[64:]))
    _assert_dataset_error("shapes3d", bad, "corrupt")


def test_npz_with_a_wrong_key_or_shape_or_values(tmp_path):
    y = _distinct_rows("dsprites", 20, 2)
    imgs = get_dataset("dsprites").images(y)[:, 0].numpy().astype(np.uint8)
    good = write_dsprites_npz(tmp_path / "good.npz", y)
    arrays = dict(np.load(good, allow_pickle=True))

    renamed = {("images" if k == "imgs" else k): v for k, v in arrays.items()}
    np.savez_compressed(tmp_path / "key.npz", **renamed)
    _assert_dataset_error("dsprites", tmp_path / "key.npz", "missing key", "imgs")

    write_dsprites_npz(tmp_path / "shape.npz", y, images=imgs[:, :32, :32])
    _assert_dataset_error("dsprites", tmp_path / "shape.npz", "'imgs' has shape", "(n, 64, 64)")

    write_dsprites_npz(tmp_path / "pixels.npz", y, images=imgs * 255)
    _assert_dataset_error("dsprites", tmp_path / "pixels.npz", "pixel value 255")

    np.savez_compressed(tmp_path / "classes.npz", **{**arrays, "latents_classes": arrays["latents_classes"][:, :5]})
    _assert_dataset_error("dsprites", tmp_path / "classes.npz", "'latents_classes' has shape")

    values = arrays["latents_values"].copy()
    values[3, 2] = 0.77  # a scale that is not one of the six
    np.savez_compressed(tmp_path / "values.npz", **{**arrays, "latents_values": values})
    _assert_dataset_error("dsprites", tmp_path / "values.npz", "column 2 (scale)")

    twice = np.concatenate([y, y[:1]])
    write_dsprites_npz(tmp_path / "dup.npz", twice, images=np.concatenate([imgs, imgs[:1]]))
    _assert_dataset_error("dsprites", tmp_path / "dup.npz", "have the same factors")


def test_h5_with_a_wrong_dataset_name_or_shape_or_label(tmp_path):
    y = _distinct_rows("shapes3d", 10, 3)
    images = np.zeros((len(y), 64, 64, 3), np.uint8)
    labels = np.stack([v[y[:, k]] for k, v in enumerate(get_dataset("shapes3d").factor_values)], 1)

    def write(name, **datasets):
        with h5py.File(tmp_path / name, "w") as f:
            for key, value in datasets.items():
                f.create_dataset(key, data=value)
        return tmp_path / name

    _assert_dataset_error("shapes3d", write("key.h5", imgs=images, labels=labels), "missing dataset", "images")
    _assert_dataset_error("shapes3d", write("shape.h5", images=images[..., :1], labels=labels), "(n, 64, 64, 3)")
    _assert_dataset_error("shapes3d", write("dtype.h5", images=images.astype(np.float32), labels=labels), "uint8")
    _assert_dataset_error("shapes3d", write("rows.h5", images=images, labels=labels[:-1]), "'labels' has shape")
    bad = labels.copy()
    bad[4, 5] = 7.0  # an orientation between two grid values (-30..30 in steps of 60/14)
    _assert_dataset_error("shapes3d", write("label.h5", images=images, labels=bad), "labels[4, 5] (orientation)")


def test_unknown_dataset_name_or_source_is_a_value_error():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        get_dataset("mnist")
    with pytest.raises(ValueError, match="unknown dataset source 'web'"):
        get_dataset("dsprites", source="web")
    with pytest.raises(ValueError, match="only used with source='file'"):
        get_dataset("dsprites", path="/tmp/x.npz")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_dataset("shapes3d", device="cuda")



@pytest.mark.parametrize("compressed", [True, False])
def test_npz_images_are_read_in_chunks_into_packed_bits(tmp_path, compressed):
    y = _distinct_rows("dsprites", 50, 4)
    path = write_dsprites_npz(tmp_path / "d.npz", y, compressed=compressed)
    bits = read_npz_bits(path, "imgs", (64, 64), chunk_rows=7)  # 50 rows: 7 full chunks and one of 1
    assert bits.shape == (len(y), 512)
    with np.load(path, allow_pickle=False) as npz:
        assert np.array_equal(np.unpackbits(bits, axis=1).reshape(-1, 64, 64), npz["imgs"])
    assert torch.equal(get_dataset("dsprites", source="file", path=path).images(y), get_dataset("dsprites").images(y))
