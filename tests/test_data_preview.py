"""The PNG grid helper and ``python -m did_core.data preview``."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from did_core.data import get_dataset
from did_core.data.__main__ import main, traversal_rows
from did_core.data.writers import write_dsprites_npz
from did_core.images import save_image_grid

torch.set_num_threads(1)


def test_grid_places_every_image_between_separators(tmp_path):
    x = torch.stack([torch.full((2, 3, 4, 5), v) for v in (0.0, 1.0)])  # rows of black, then white
    x[1, 1, 0] = 0.2  # red channel of the last image
    out = save_image_grid(x, tmp_path / "g.png", padding=1, separator=0.5)
    a = np.asarray(Image.open(out))
    assert a.shape == (1 + 2 * (4 + 1), 1 + 2 * (5 + 1), 3)
    assert (a[0] == 128).all() and (a[:, 0] == 128).all() and (a[5] == 128).all()  # separators
    assert (a[1:5, 1:6] == 0).all()  # row 0, column 0
    assert (a[6:10, 7:12] == [51, 255, 255]).all()  # row 1, column 1, red at 0.2


def test_grid_takes_ragged_rows_grey_images_and_empty_cells(tmp_path):
    grey = torch.rand(3, 1, 8, 8)
    out = save_image_grid([grey, [grey[0], None]], tmp_path / "r.png", padding=2, zoom=2)
    a = np.asarray(Image.open(out))
    assert a.ndim == 2 and a.shape == (2 + 2 * 18, 2 + 3 * 18)  # grey PNG, 3 columns of 16 + 2
    assert np.array_equal(a[20:36, 2:18], a[2:18, 2:18])  # the same image in both rows
    assert (a[20:36, 20:36] == 128).all()  # the empty cell shows the separator colour
    mixed = save_image_grid([grey[:1], torch.rand(1, 3, 8, 8)], tmp_path / "m.png")
    assert np.asarray(Image.open(mixed)).shape[-1] == 3  # grey is drawn in colour next to colour


def test_grid_refuses_images_it_cannot_draw(tmp_path):
    with pytest.raises(ValueError, match="C in \\(1, 3\\)"):
        save_image_grid(torch.rand(2, 4, 8, 8), tmp_path / "x.png")
    with pytest.raises(ValueError, match="same height and width"):
        save_image_grid([torch.rand(1, 1, 8, 8), torch.rand(1, 1, 9, 8)], tmp_path / "x.png")


@pytest.mark.parametrize("name", ["dsprites", "shapes3d"])
def test_traversal_moves_one_factor_per_row_away_from_one_random_draw(name):
    ds = get_dataset(name)
    rows, labels = traversal_rows(ds, seed=4)
    base = ds.sample_factors(1, np.random.default_rng(4))[0]
    base_image = ds.images(base[None])[0]
    assert len(rows) == ds.num_factors and labels[0].startswith(ds.factor_names[0])
    assert [len(r) for r in rows] == [min(s, 16) for s in ds.factor_sizes]
    for k, row in enumerate(rows):
        assert not torch.equal(row[0], row[1])  # (first and last agree for orientation: 0 and 2pi)
        if ds.factor_sizes[k] <= 16:  # every value shown, so the draw itself is in the row
            assert torch.equal(row[base[k]], base_image)


def test_preview_command_writes_a_png_and_leaves_cells_a_partial_file_lacks_empty(tmp_path, capsys):
    ds = get_dataset("dsprites")
    y = ds.sample_factors(1, np.random.default_rng(0))
    y = np.repeat(y, 3, axis=0)
    y[:, 0], y[:, 1] = [0, 1, 2], 0  # all three shapes, one scale
    path = write_dsprites_npz(tmp_path / "d.npz", y)
    out = tmp_path / "p.png"
    assert main(["preview", "dsprites", "--source", "file", "--path", str(path), "--out", str(out), "--zoom", "1"]) == 0
    a = np.asarray(Image.open(out))
    assert a.shape[0] == 2 + 5 * 66  # five factor rows of 64 pixels and 2-pixel separators
    left = a.shape[1] - 2 - 16 * 66  # the labels' column
    cell = lambda r, c: a[2 + r * 66 : 66 + r * 66, left + 2 + c * 66 : left + 66 + c * 66]  # noqa: E731
    assert all(cell(0, c).max() == 255 for c in range(3))  # the shape row: all three shapes drawn
    assert cell(1, 0).max() == 255 and all((cell(1, c) == 128).all() for c in range(1, 6))  # one scale only
    assert "wrote" in capsys.readouterr().out


def test_preview_of_a_missing_file_prints_one_line_and_fails(tmp_path):
    missing = tmp_path / "nothing.npz"
    r = subprocess.run(
        [sys.executable, "-m", "did_core.data", "preview", "dsprites", "--source", "file", "--path", str(missing),
         "--out", str(tmp_path / "p.png")],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and str(missing) in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "p.png").exists()


def test_preview_of_an_unknown_dataset_fails_cleanly(tmp_path, capsys):
    assert main(["preview", "mnist", "--out", str(tmp_path / "p.png")]) == 2
    assert "unknown dataset 'mnist'" in capsys.readouterr().err
