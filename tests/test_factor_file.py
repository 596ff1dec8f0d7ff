"""The generic factor-labelled dataset (``dataset: file:PATH``): a 4-factor toy grid as .npz or
.h5, indices or the full grid, names in the file or beside it; a β-VAE trains on it and scores
MIG; each malformed file is one error naming the file and the array."""
from __future__ import annotations

import io
import os
import zipfile

import h5py
import numpy as np
import pytest
import torch

from did_core.data import DatasetError, dataset_factors, get_dataset
from did_core.data.writers import write_factor_file
from did_core.models import ConfigError, get_model
from orchestrator.study_file.resolve import parse_study
from orchestrator.study_file import StudyError
from toy import TOY

NAMES, SIZES = ("width", "height", "posX", "posY"), (3, 2, 4, 4)


def toy_grid() -> tuple[np.ndarray, np.ndarray]:
    """uint8 [96, 64, 64, 1] white rectangles and their factor indices, in C order."""
    factors = np.stack(np.unravel_index(np.arange(int(np.prod(SIZES))), SIZES), axis=1)
    images = np.zeros((len(factors), 64, 64, 1), np.uint8)
    for n, (w, h, x, y) in enumerate(factors):
        cx, cy, half_w, half_h = 12 + 13 * x, 12 + 13 * y, 4 * (w + 1), 4 * (h + 1)
        images[n, max(cy - half_h, 0):cy + half_h, max(cx - half_w, 0):cx + half_w, 0] = 255
    return images, factors


IMAGES, FACTORS = toy_grid()


def expected(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(IMAGES[np.ravel_multi_index(tuple(y.T), SIZES)].transpose(0, 3, 1, 2)).float() / 255


@pytest.mark.parametrize("name, kw", [
    ("grid.npz", {}),                                                                # memory-mapped, the full grid
    ("grid_zip.npz", {"compressed": True}),
    ("rows.h5", {"factors": "shuffled", "names_beside": True}),                      # indices, names in grid.yaml
    ("half.npz", {"factors": "half"}),                                               # part of the grid
])
def test_a_factor_file_reads_like_a_built_in_dataset(tmp_path, name, kw):
    images, factors = IMAGES, None
    if kw.pop("factors", None) == "shuffled":
        order = np.random.default_rng(0).permutation(len(IMAGES))
        images, factors = IMAGES[order], FACTORS[order]
    elif name == "half.npz":
        images, factors = IMAGES[::2], FACTORS[::2]
    path = write_factor_file(tmp_path / name, images, list(NAMES), list(SIZES), factors=factors, **kw)
    ds = get_dataset(f"file:{path}")
    assert (ds.factor_names, ds.factor_sizes) == (NAMES, SIZES) == dataset_factors(f"file:{path}")
    assert (ds.num_channels, ds.image_size, ds.complete) == (1, 64, name != "half.npz")
    assert isinstance(ds._images, np.memmap) == (name in ("grid.npz", "half.npz"))  # np.savez: stored, mapped
    y = ds.sample_factors(32, np.random.default_rng(1))
    assert torch.equal(ds.images(y), expected(y))
    same = ds.sample_fixed_factor(2, 16, np.random.default_rng(2))
    assert len(set(same[:, 2])) == 1 and ds.contains(same).all()


def test_a_beta_vae_trains_on_a_factor_file_and_scores_mig(tmp_path):
    path = write_factor_file(tmp_path / "toy.npz", IMAGES, list(NAMES), list(SIZES))
    spec = get_model("beta_vae")
    cfg = spec.config_cls.from_preset("smoke", dataset=f"file:{path}", eval_metrics="mig", steps=10, eval_every=0)
    final = list(spec.train(cfg, out_dir=tmp_path / "run"))[-1]
    assert final.kind == "final" and 0.0 <= final.scores["mig"] <= 1.0
    assert (tmp_path / "run" / "traversal.png").exists()
    with pytest.raises(ConfigError, match=r"Config.dataset: 'file:.*nope.npz': file not found"):
        spec.config_cls(dataset=f"file:{tmp_path / 'nope.npz'}")


def _claims_more_rows(path):
    """An .npz whose 'images' header claims 10x the rows its member holds (a truncated file)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (960, 64, 64, 1)})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images.npy", header.getvalue() + IMAGES.tobytes())
        for key, value in (("factor_names", np.array(NAMES)), ("factor_sizes", np.array(SIZES))):
            buf = io.BytesIO()
            np.save(buf, value)
            zf.writestr(key + ".npy", buf.getvalue())


def _write(path, **arrays):
    if path.suffix == ".npz":
        np.savez(path, **arrays)
    else:
        with h5py.File(path, "w") as f:
            for k, v in arrays.items():
                f[k] = v.astype("S") if v.dtype.kind == "U" else v


out_of_range = FACTORS.copy()
out_of_range[7, 2] = 4
MALFORMED = {
    "out_of_range.npz": (dict(images=IMAGES, factors=out_of_range),
                         r"'factors'\[7, 2\] \(posX\) = 4 is outside \[0, 4\)"),
    "not_the_grid.h5": (dict(images=IMAGES[:90]),
                        r"'images' holds 90 images, but the factor grid 3 x 2 x 4 x 4 has 96: store the full grid"),
    "float_images.npz": (dict(images=IMAGES.astype(np.float32)), r"'images' has dtype float32, expected uint8"),
    "float_factors.h5": (dict(images=IMAGES, factors=FACTORS.astype(float)),
                         r"'factors' has dtype float64, expected integer indices"),
    "wrong_rows.npz": (dict(images=IMAGES, factors=FACTORS[:50]), r"'factors' has shape \(50, 4\), expected \(96, 4\)"),
    "truncated.npz": (None, r"'images': its header claims shape \(960, 64, 64, 1\) \(3,932,160 bytes\), but the "
                            r"archive holds 393,344 bytes for it"),
    "sizes_short.npz": (dict(images=IMAGES, factor_sizes=np.array(SIZES[:3])),
                        r"'factor_sizes' must be 4 integers >= 1 \(one per name in 'factor_names'\), got \[3, 2, 4\]"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_file_is_one_error_naming_the_file_and_the_array(tmp_path, name):
    arrays, message = MALFORMED[name]
    path = tmp_path / name
    if arrays is None:
        _claims_more_rows(path)
    else:
        _write(path, **{"factor_names": np.array(NAMES), "factor_sizes": np.array(SIZES), **arrays})
    with pytest.raises(DatasetError, match=f"^{path}: {message}"):
        get_dataset(f"file:{path}")
    # the study command says the same before anything is written
    study = {"name": "f", "model": "toy", "dataset": f"file:{path}", "objectives": [{"metric": "mig"}],
             "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 2}}}}
    with pytest.raises(StudyError, match=f"^<study>: dataset: {path}: {message}"):
        parse_study(study, "smoke", model=TOY)


def test_names_beside_the_file_must_agree_and_be_there(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=IMAGES)
    with pytest.raises(DatasetError, match=r"d.npz: no factor names and sizes: store the arrays 'factor_names' and "
                                           r"'factor_sizes' in the file, or write them into .*d.yaml"):
        get_dataset(f"file:{path}")
    (tmp_path / "d.yaml").write_text("factor_names: [a, b]\nfactor_sizes: [48, two]\n")
    with pytest.raises(DatasetError, match=r"d.yaml: 'factor_sizes' must be a list of integers"):
        get_dataset(f"file:{path}")


def test_a_relative_file_in_a_study_is_read_from_where_the_command_runs(tmp_path, monkeypatch):
    write_factor_file(tmp_path / "toy.npz", IMAGES, list(NAMES), list(SIZES))
    monkeypatch.chdir(tmp_path)
    study = {"name": "f", "model": "toy", "dataset": "file:toy.npz", "objectives": [{"metric": "mig"}],
             "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 2}}}}
    resolved = parse_study(study, "smoke", model=TOY)
    assert resolved.fixed["dataset"] == f"file:{tmp_path / 'toy.npz'}"  # every trial reads the same file
    assert os.path.isabs(resolved.fixed["dataset"][len("file:"):])
