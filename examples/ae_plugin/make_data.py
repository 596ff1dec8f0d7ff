"""Write ``did_ae_plugin/tiny_bars.npz``: the full grid of the tiny bars dataset in C order.

    python examples/ae_plugin/make_data.py
"""
from pathlib import Path

import numpy as np

from did_core.data.writers import write_factor_file

NAMES, SIZES = ("orientation", "position", "thickness"), (2, 8, 3)


def bars() -> np.ndarray:
    """uint8 [48, 32, 32, 1]: row (o, p, t) is a bar of thickness 2 + 2t starting at pixel 2 + 3p."""
    images = np.zeros((int(np.prod(SIZES)), 32, 32, 1), np.uint8)
    for n, (o, p, t) in enumerate(np.ndindex(*SIZES)):
        lo = 2 + 3 * p
        band = slice(lo, lo + 2 + 2 * t)
        if o == 0:
            images[n, band, 4:28, 0] = 255
        else:
            images[n, 4:28, band, 0] = 255
    return images


if __name__ == "__main__":
    out = Path(__file__).parent / "did_ae_plugin" / "tiny_bars.npz"
    print(write_factor_file(out, bars(), NAMES, SIZES, compressed=True))
