"""Digit sequences: coloured handwritten digits in samples of ten fragments (V3's data).

Built from the 1,797 8x8 digit images scikit-learn ships (``sklearn.datasets.load_digits``, no
download). A *sample* is the ten digits in a random order, all drawn in one colour; a *fragment*
is one 32x32 RGB image of it: a random instance of its digit (upscaled x3 to 24x24) placed with a
small shift. Content (the digit) varies between the fragments of one sample; style (the colour)
is constant within a sample and varies between samples.

Factors of a fragment: digit 10, colour 8 (the V3 authors' palette: black, blue, green, red,
teal, purple, orange, brown; foreground ``240 * rgb + 8``, background 245, blended by the ink),
instance (the digit's images of this split), dx 5, dy 5 (shift -2..2 pixels). Each digit's
images are split once, with a fixed seed, 2/3 into ``train`` and 1/3 into ``test``; a split
offers as many instances per digit as its smallest digit has (116 train, 58 test).

Two variants for diagnosis (docs/v3.md, "V3 at the quick budget"): ``digit_sequences_sample_shift``,
one shift for all the fragments of a sample (by V3's definitions a per-fragment shift is content,
a per-sample one style, like the colour), and ``digit_sequences_centred``, no shift at all (dx =
dy = 0 for every fragment; the factors keep their sizes).

Sequence hook: :meth:`sample_sequences` draws factor rows ``[n, 10, 5]`` (a permutation of the
digits, one colour per sample); :meth:`scoring_view` is what the disentanglement metrics see:
fragments of the test split with factors (digit, colour) only, instance and shift drawn at random.

Example:
    >>> ds = DigitSequences()                              # the train split
    >>> y = ds.sample_sequences(4, np.random.default_rng(0))  # [4, 10, 5]
    >>> x = ds.images(y.reshape(-1, 5))                      # [40, 3, 32, 32] in [0, 1]
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from .base import GroundTruthDataset

IMAGE_SIZE = 32
SCALE = 3  # 8x8 -> 24x24
N_DIGITS = 10
SHIFTS = (-2, -1, 0, 1, 2)
SPLITS = ("train", "test")
SPLIT_SEED = 0
# the authors' eight colours as RGB in [0, 1] (matplotlib's named colours of those names)
PALETTE_NAMES = ("black", "blue", "green", "red", "teal", "purple", "orange", "brown")
PALETTE_RGB = np.array([(0, 0, 0), (0, 0, 1), (0, 0.5, 0), (1, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5),
                        (1, 0.647, 0), (0.647, 0.165, 0.165)], dtype=np.float32)
FOREGROUND = (240 * PALETTE_RGB + 8) / 255  # [8, 3]
BACKGROUND = 245 / 255


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


@functools.lru_cache(maxsize=2)
def split_instances(split: str) -> np.ndarray:
    """``[10, n]``: row ``d`` holds the indices (into ``load_digits``) of digit ``d``'s images of
    ``split``, ``n`` the smallest digit's count, so that every (digit, instance) exists."""
    if split not in SPLITS:
        raise ValueError(f"digit_sequences: split must be one of {list(SPLITS)}, got {split!r}")
    _, target = _digits()
    rng = np.random.default_rng(SPLIT_SEED)
    rows = []
    for d in range(N_DIGITS):
        idx = rng.permutation(np.flatnonzero(target == d))
        n_train = len(idx) * 2 // 3
        rows.append(idx[:n_train] if split == "train" else idx[n_train:])
    n = min(len(r) for r in rows)
    return np.stack([r[:n] for r in rows])


@functools.lru_cache(maxsize=2)
def _canvases(split: str) -> torch.Tensor:
    """Every (digit, instance) of ``split`` at every shift: ink in 1/16 steps as uint8
    ``[10 * n_inst, len(SHIFTS) ** 2, 32, 32]`` (row ``digit * n_inst + instance``, shift ``dx * 5 + dy``)."""
    images, _ = _digits()
    index = split_instances(split).reshape(-1)
    ink = torch.from_numpy(np.rint(images[index] * 16).astype(np.uint8))
    ink = ink.repeat_interleave(SCALE, 1).repeat_interleave(SCALE, 2)  # nearest x3: 24x24
    size, margin = 8 * SCALE, (IMAGE_SIZE - 8 * SCALE) // 2
    out = torch.zeros(len(index), len(SHIFTS) ** 2, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    for i, dx in enumerate(SHIFTS):
        for j, dy in enumerate(SHIFTS):
            top, left = margin + dy, margin + dx
            out[:, i * len(SHIFTS) + j, top:top + size, left:left + size] = ink
    return out


class DigitSequences(GroundTruthDataset):
    name = "digit_sequences"
    source = "procedural"
    num_channels = 3
    image_size = IMAGE_SIZE
    sequence_length = N_DIGITS
    shift_per = "fragment"  # "sample": one (dx, dy) for all of a sample's fragments; "none": centred

    def __init__(self, device: str | torch.device = "cpu", split: str = "train"):
        super().__init__(device)
        self.split = split
        self._instances = split_instances(split)
        self._canvases = _canvases(split).to(self.device)  # uint8 ink x 16, [10 * n_inst, 25 shifts, 32, 32]
        self._fg = torch.from_numpy(FOREGROUND).to(self.device)
        n_inst = self._instances.shape[1]
        self.factor_names = ("digit", "colour", "instance", "dx", "dy")
        self.factor_sizes = (N_DIGITS, len(PALETTE_NAMES), n_inst, len(SHIFTS), len(SHIFTS))
        self.factor_values = (np.arange(N_DIGITS, dtype=float), np.arange(len(PALETTE_NAMES), dtype=float),
                              np.arange(n_inst, dtype=float), np.array(SHIFTS, float), np.array(SHIFTS, float))

    def split_view(self, split: str) -> "DigitSequences":
        return self if split == self.split else type(self)(self.device, split)

    def sample_sequences(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` samples of factor rows, int64 ``[n, 10, 5]``: each sample's digits a random
        permutation of 0..9 and one colour for all its fragments; instance per fragment, shift per
        fragment, per sample or none (``shift_per``)."""
        L = self.sequence_length
        y = np.empty((n, L, self.num_factors), dtype=np.int64)
        y[:, :, 0] = rng.permuted(np.tile(np.arange(L), (n, 1)), axis=1)
        y[:, :, 1] = rng.integers(0, self.factor_sizes[1], size=(n, 1))
        for k in (2, 3, 4):
            y[:, :, k] = rng.integers(0, self.factor_sizes[k], size=(n, L))
        if self.shift_per == "sample":
            y[:, :, 3:5] = y[:, :1, 3:5]
        elif self.shift_per == "none":
            y[:, :, 3:5] = SHIFTS.index(0)
        return y

    def images(self, factors: np.ndarray | torch.Tensor) -> torch.Tensor:
        y = torch.from_numpy(self.check_factors(factors)).to(self.device)
        n_inst, n_shift = self.factor_sizes[2], len(SHIFTS)
        a = self._canvases[y[:, 0] * n_inst + y[:, 2], y[:, 3] * n_shift + y[:, 4]].unsqueeze(1).float() / 16
        fg = self._fg[y[:, 1]][:, :, None, None]  # [n, 3, 1, 1]
        return BACKGROUND * (1 - a) + fg * a

    def scoring_view(self, seed: int = 0) -> "FragmentScoring":
        """The test split's fragments as the disentanglement metrics see them: factors (digit, colour)."""
        return FragmentScoring(self.split_view("test"), seed)


class DigitSequencesSampleShift(DigitSequences):
    """Digit sequences whose fragments share one shift per sample (style, by V3's definitions)."""

    name = "digit_sequences_sample_shift"
    shift_per = "sample"


class DigitSequencesCentred(DigitSequences):
    """Digit sequences without the shift: every fragment centred."""

    name = "digit_sequences_centred"
    shift_per = "none"


class FragmentScoring(GroundTruthDataset):
    """Fragments with factors (digit, colour); instance and shift are nuisances drawn from a stream
    seeded at construction (so one view gives the same images for the same sequence of calls)."""

    binary = False
    source = "procedural"
    num_channels = 3
    image_size = IMAGE_SIZE
    factor_names = ("digit", "colour")
    factor_sizes = (N_DIGITS, len(PALETTE_NAMES))
    factor_values = (np.arange(N_DIGITS, dtype=float), np.arange(len(PALETTE_NAMES), dtype=float))

    def __init__(self, fragments: DigitSequences, seed: int = 0):
        super().__init__(fragments.device)
        self.name = f"{fragments.name}/{fragments.split} (digit, colour)"
        self._fragments = fragments
        self._rng = np.random.default_rng([seed, 91])

    def images(self, factors: np.ndarray | torch.Tensor) -> torch.Tensor:
        y = self.check_factors(factors)
        sizes = self._fragments.factor_sizes
        nuisance = np.stack([self._rng.integers(0, sizes[k], size=len(y)) for k in (2, 3, 4)], axis=1)
        if self._fragments.shift_per == "none":
            nuisance[:, 1:] = SHIFTS.index(0)
        return self._fragments.images(np.concatenate([y, nuisance], axis=1))
