"""ModelCentrality (Lin et al., ICML 2020, "InfoGAN-CR"): which model of a pool the others agree with,
scored without labels, as the authors' ``main_mc_generate_data.py``, ``main_mc_cross_evaluation.py``
and ``main_mc.py`` compute it.

For every ordered pair of models with a generator and an encoder:

1. generator ``g`` draws ``M`` groups of ``L`` images (``mc_num_groups`` x ``mc_group_size`` of the
   protocol; ``dlib``: the authors' 500 x 100). Group ``k`` fixes latent ``k mod n_latents`` (the
   latents the model regularises, in turn) at the value of the group's first draw; every other
   latent, noise latents included, is drawn afresh. It also draws ``mc_num_variance`` free images
   (the authors: a tenth of the training set's size, ``None`` in the protocol);
2. encoder ``e`` reads them: its spread per code dimension on the free images, then one FactorVAE
   vote per group (the dimension whose variance within the group, relative to that spread, is the
   smallest; :func:`~did_core.metrics.factor_vae.votes_from_codes`); ``matrix[e, g]`` is the
   accuracy of the majority-vote classifier read off those votes, on the same votes (the authors'
   ``FactorVAEMetric`` on generated groups: no train / evaluation split, no pruning of dimensions);
3. the matrix is symmetrised, ``(S + S^T) / 2``, and a model's centrality is the mean of its row
   off the diagonal (its own pair is not computed).

Departures: a code dimension with no spread at all on the free images takes no vote (the authors
divide by its zero std). Random draws come from one seeded ``numpy`` stream per generator; the
images it makes do not depend on which encoders read them, so a pair can be computed alone and
cached.

A model is any object with the small :class:`GenerativeModel` contract (the trained models'
hooks build it from a checkpoint, ``did_core.models.<name>``'s ``load_selection``).

Example:
    >>> result = model_centrality([model_a, model_b, model_c], protocol="fast", seed=0)
    >>> result.scores           # one per model, higher = more central
    >>> encoder_scores(model_a, [model_b, model_c], "fast", np.random.default_rng([0, 7]))  # two pairs
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from .factor_vae import majority_vote_accuracy, votes_from_codes
from .protocols import Protocol as MetricProtocol
from .protocols import get_protocol
from .utils import MetricInputError

CHUNK_IMAGES = 2048  # images generated (and read by every encoder) at a time


@runtime_checkable
class GenerativeModel(Protocol):
    """What ModelCentrality needs of a model: a generator from a prior and an encoder.

    ``sample`` and ``encode`` exchange images in whatever array type the pool's models share (the
    trained models: float torch tensors [n, C, H, W] in [0, 1] on their device); codes are numpy."""

    n_latents: int  # the latents the model regularises: the first n_latents columns of its codes

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` latent codes [n, n_code] from the model's prior (n_code >= n_latents)."""

    def sample(self, codes: np.ndarray) -> Any:
        """Images of the codes [n, n_code]."""

    def encode(self, images: Any) -> np.ndarray:
        """The representation of images: codes [n, d] (float)."""


@dataclass(frozen=True)
class ModelCentrality:
    """``matrix[e, g]``: encoder ``e`` scored on generator ``g``'s groups (diagonal not computed,
    NaN); ``symmetric`` = (matrix + matrix^T) / 2; ``scores[i]`` the mean of row i of ``symmetric``
    off the diagonal."""

    matrix: np.ndarray
    symmetric: np.ndarray
    scores: np.ndarray


def num_variance(protocol: MetricProtocol, dataset_size: int | None) -> int:
    """Free draws for the encoders' spread: the protocol's count, or a tenth of the training set."""
    if protocol.mc_num_variance is not None:
        return protocol.mc_num_variance
    if not dataset_size:
        raise MetricInputError(f"protocol {protocol.name!r}: ModelCentrality's spread comes from a tenth of the "
                               "training set's size (mc_num_variance=None); give dataset_size")
    return max(2, dataset_size // 10)


def group_codes(model: GenerativeModel, num_groups: int, group_size: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Codes [groups * L, n_code] of the groups, and the latent each group fixes [groups]."""
    if not 1 <= model.n_latents:
        raise MetricInputError(f"n_latents: a generator needs >= 1 latent to fix, got {model.n_latents}")
    fixed = np.arange(num_groups) % model.n_latents
    codes = np.asarray(model.sample_prior(num_groups * group_size, rng), dtype=np.float64)
    codes = codes.reshape(num_groups, group_size, -1)
    rows = np.arange(num_groups)
    codes[rows, :, fixed] = codes[rows, 0, fixed][:, None]
    return codes.reshape(num_groups * group_size, -1), fixed


class _Spread:
    """Running variance per dimension of chunks of codes (shifted sums: no catastrophic cancellation)."""

    def __init__(self):
        self.n, self.shift, self.s1, self.s2 = 0, None, 0.0, 0.0

    def add(self, codes: np.ndarray) -> None:
        if self.shift is None:
            self.shift = codes.mean(axis=0)
        x = codes - self.shift
        self.n, self.s1, self.s2 = self.n + len(x), self.s1 + x.sum(axis=0), self.s2 + (x * x).sum(axis=0)

    def var(self) -> np.ndarray:
        return np.maximum(self.s2 - self.s1 ** 2 / self.n, 0.0) / (self.n - 1)


def _chunks(n: int, step: int):
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def _encoded(encoder: GenerativeModel, images: Any, n: int) -> np.ndarray:
    codes = np.asarray(encoder.encode(images), dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != n or not np.isfinite(codes).all():
        raise MetricInputError(f"encode: must return finite codes [{n}, d] for {n} images, got shape {codes.shape}")
    return codes


def encoder_scores(generator: GenerativeModel, encoders: Sequence[GenerativeModel], protocol="dlib",
                   rng: np.random.Generator | None = None, dataset_size: int | None = None) -> np.ndarray:
    """Each encoder's FactorVAE score on ``generator``'s groups: [len(encoders)] (steps 1-2).

    The generator's draws come from ``rng`` alone, spread images first, then the groups."""
    p = get_protocol(protocol)
    rng = rng if rng is not None else np.random.default_rng(0)
    if p.mc_group_size < 2 or p.mc_num_groups < 1:
        raise MetricInputError(f"protocol {p.name!r}: ModelCentrality needs groups of >= 2 images")
    free = np.asarray(generator.sample_prior(num_variance(p, dataset_size), rng), dtype=np.float64)
    groups, fixed = group_codes(generator, p.mc_num_groups, p.mc_group_size, rng)
    spreads = [_Spread() for _ in encoders]
    for start, stop in _chunks(len(free), CHUNK_IMAGES):
        images = generator.sample(free[start:stop])
        for spread, encoder in zip(spreads, encoders):
            spread.add(_encoded(encoder, images, stop - start))
    global_vars = [s.var() for s in spreads]
    votes: list[np.ndarray | None] = [None] * len(encoders)  # [n_latents, d] per encoder
    per_chunk = max(1, CHUNK_IMAGES // p.mc_group_size)
    for first, last in _chunks(p.mc_num_groups, per_chunk):
        images = generator.sample(groups[first * p.mc_group_size:last * p.mc_group_size])
        for k, encoder in enumerate(encoders):
            active = global_vars[k] > 0
            if not active.any():
                continue  # a constant encoder: no dimension can take a vote, it scores 0
            codes = _encoded(encoder, images, (last - first) * p.mc_group_size)
            counted = votes_from_codes(codes.reshape(last - first, p.mc_group_size, -1), fixed[first:last],
                                       global_vars[k], active, generator.n_latents)
            votes[k] = counted if votes[k] is None else votes[k] + counted
    return np.array([majority_vote_accuracy(v, v) if v is not None else 0.0 for v in votes])


def centrality(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: ``(symmetric, scores)`` of a square score matrix (its diagonal is ignored).

    Example:
        >>> sym, scores = centrality(np.array([[np.nan, 0.9, 0.2], [0.7, np.nan, 0.4], [0.2, 0.2, np.nan]]))
        >>> scores.round(3).tolist()
        [0.5, 0.55, 0.25]
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    n = len(matrix)
    if matrix.shape != (n, n) or n < 2:
        raise MetricInputError(f"matrix: ModelCentrality needs a square matrix of >= 2 models, got shape {matrix.shape}")
    symmetric = (matrix + matrix.T) / 2
    off = ~np.eye(n, dtype=bool)
    return symmetric, np.array([symmetric[i, off[i]].mean() for i in range(n)])


def model_centrality(models: Sequence[GenerativeModel], protocol="dlib", seed: int = 0,
                     dataset_size: int | None = None) -> ModelCentrality:
    """ModelCentrality of a pool of >= 2 models; generator ``g`` draws from ``default_rng([seed, g])``."""
    n = len(models)
    if n < 2:
        raise MetricInputError(f"models: ModelCentrality compares models with each other; got {n}, need >= 2")
    matrix = np.full((n, n), np.nan)
    for g, generator in enumerate(models):
        others = [e for e in range(n) if e != g]
        matrix[others, g] = encoder_scores(generator, [models[e] for e in others], protocol,
                                           np.random.default_rng([seed, g]), dataset_size)
    symmetric, scores = centrality(matrix)
    return ModelCentrality(matrix=matrix, symmetric=symmetric, scores=scores)
