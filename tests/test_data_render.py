"""The procedural renderers: layout, factors that all show, determinism, dtype/range/device."""
import colorsys

import numpy as np
import pytest
import torch

from did_core.data import get_dataset
from did_core.data.dsprites import MARGIN, UNIT

torch.set_num_threads(1)
NAMES = ["dsprites", "shapes3d"]


@pytest.mark.parametrize("name", NAMES)
def test_images_are_float32_in_unit_range_with_the_right_shape_and_device(name):
    ds = get_dataset(name)
    y = ds.sample_factors(40, np.random.default_rng(0))
    x = ds.images(y)
    assert x.dtype == torch.float32 and x.device == torch.device("cpu")
    assert x.shape == (40, ds.num_channels, 64, 64)
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.5
    assert ds.images(torch.from_numpy(y)).equal(x)  # torch indices work too
    if name == "dsprites":
        assert set(torch.unique(x).tolist()) == {0.0, 1.0}  # binary, like the original


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_rendering_matches_cpu(name):
    y = get_dataset(name).sample_factors(64, np.random.default_rng(0))
    gpu = get_dataset(name, device="cuda").images(y)
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - get_dataset(name).images(y)).abs().mean() < 1e-3


def test_sprites_stay_inside_the_frame_at_every_extreme_position():
    ds = get_dataset("dsprites")
    y = np.array([[s, sc, o, px, py] for s in range(3) for sc in (0, 5) for o in range(40) for px in (0, 31) for py in (0, 31)])
    x = ds.images(y)[:, 0]
    border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], dim=1)
    assert border.max() == 0
    assert x.sum(dim=(1, 2)).min() >= 30  # even the smallest sprite is drawn


def test_square_area_and_position_follow_scale_and_posX_posY():
    ds = get_dataset("dsprites")
    pos = np.arange(32)
    x = ds.images(np.array([[0, 5, 0, p, 31 - p] for p in pos]))[:, 0]
    area = x.sum(dim=(1, 2))
    side = 2 * UNIT  # at scale 1 a square has side 2 * UNIT pixels
    assert ((area >= (side - 1) ** 2) & (area <= (side + 1) ** 2)).all()
    cols = (x.sum(1) * torch.arange(64)).sum(1) / area + 0.5  # centroids in pixel units
    rows = (x.sum(2) * torch.arange(64)).sum(1) / area + 0.5
    expected = torch.tensor(MARGIN + pos / 31 * (64 - 2 * MARGIN), dtype=torch.float32)
    assert (cols - expected).abs().max() <= 0.5
    assert (rows - expected.flip(0)).abs().max() <= 0.5  # posY grows downwards
    half = ds.images(np.array([[0, 0, 0, 16, 16]]))[0, 0].sum()
    assert abs(half / area[16] - 0.25) < 0.05  # scale 0.5 halves the side


@pytest.mark.parametrize("name", NAMES)
def test_every_factor_changes_the_image_between_neighbouring_values(name):
    ds = get_dataset(name)
    for base in ds.sample_factors(3, np.random.default_rng(5)):
        for k, size in enumerate(ds.factor_sizes):
            y = np.repeat(base[None], size, axis=0)
            y[:, k] = np.arange(size)
            x = ds.images(y)
            changed = (x[1:] - x[:-1]).abs().flatten(1).amax(1)
            assert (changed > 0.05).all(), f"{name}: factor {ds.factor_names[k]} leaves the image unchanged at {base}"


def test_orientation_0_and_2pi_are_the_same_image_and_other_angles_differ():
    ds = get_dataset("dsprites")
    assert ds.factor_values[2][0] == 0 and ds.factor_values[2][-1] == 2 * np.pi
    y0 = ds.sample_factors(200, np.random.default_rng(1))
    y0[:, 2] = 0
    y39 = y0.copy()
    y39[:, 2] = 39
    assert torch.equal(ds.images(y0), ds.images(y39))
    y20 = y0.copy()
    y20[:, 2] = 20  # close to pi: hearts and ellipse/square (pi-symmetric) differ only slightly or not
    hearts = y0[:, 0] == 2
    assert not torch.equal(ds.images(y0[hearts]), ds.images(y20[hearts]))


@pytest.mark.parametrize("name", NAMES)
def test_rendering_is_deterministic_and_batches_follow_the_seed(name):
    a, b = get_dataset(name), get_dataset(name)
    y = a.sample_factors(32, np.random.default_rng(2))
    assert torch.equal(a.images(y), b.images(y))
    assert torch.equal(a.images(y[:5]), a.images(y)[:5])  # an image does not depend on its batch
    (x1, y1), (x2, y2), (x3, y3) = next(a.batches(16, 7)), next(b.batches(16, 7)), next(a.batches(16, 8))
    assert np.array_equal(y1, y2) and torch.equal(x1, x2)
    assert not np.array_equal(y1, y3)


def test_shapes3d_colours_are_the_floor_wall_and_object_hues():
    ds = get_dataset("shapes3d")
    for hue in range(10):
        y = np.array([[hue, (hue + 3) % 10, (hue + 6) % 10, 7, 0, 7], [hue, (hue + 3) % 10, (hue + 1) % 10, 7, 0, 7]])
        x = ds.images(y)
        floor = colorsys.rgb_to_hsv(*x[0, :, 62, 32].tolist())[0]
        wall = colorsys.rgb_to_hsv(*x[0, :, 1, 32].tolist())[0]
        obj_pixels = (x[0] - x[1]).abs().sum(0) > 0.1  # where only the object's hue differs
        obj = colorsys.rgb_to_hsv(*x[0][:, obj_pixels].mean(1).tolist())[0]
        assert obj_pixels.sum() > 100
        for got, want in ((floor, hue), (wall, (hue + 3) % 10), (obj, (hue + 6) % 10)):
            assert min(abs(got - want / 10), 1 - abs(got - want / 10)) < 0.02


def test_out_of_range_or_misshapen_factors_are_refused_with_the_factor_named():
    ds = get_dataset("shapes3d")
    with pytest.raises(ValueError, match="factor 'shape' index 4 is outside"):
        ds.images(np.array([[0, 0, 0, 0, 4, 0]]))
    with pytest.raises(ValueError, match=r"shape \[n, 6\]"):
        ds.images(np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="integer"):
        ds.images(np.zeros((2, 6)))
