"""V3's own scores, computed from its nets on held-out fragments (the test split's instances).

- Codebook (the authors' definition first): count matrix atoms x digits over test fragments;
  ``codebook_accuracy`` = mean over the atoms used of the row's purity (max / row sum);
  ``codebook_purity`` = the frequency-weighted purity (sum of row maxima / fragments);
  ``codebook_hungarian`` = one-to-one accuracy (best matching of atoms to digits, the rest wrong);
  ``codebook_atoms_used``. (The authors' mean over atoms counts a tiny atom as much as a large
  one, so a few nearly empty atoms lift it far above chance; purity and one-to-one do not.) Without quantisation (or before the codebook exists) the atoms are
  k-means clusters of the content codes (K of them), so the scores stay comparable.
- Retrieval PR-AUC for (z_c, digit), (z_s, colour) (high is good) and (z_s, digit), (z_c, colour)
  (low is good): each fragment queries the others by Euclidean distance; at k in 1, 2, 5, 10, 20,
  50, ... (and the last, N - 1) precision TP/k and recall TP/(same-label count - 1);
  AUC = sum_j (R_j - R_{j-1}) P_j, averaged over the queries. ``z_c`` before quantisation.
- ``swap_accuracy`` (this project's definition): decode the content of fragment i with the style
  of fragment j of another sample; correct when a digit classifier fitted on real fragments reads
  i's digit and the nearest palette colour is j's. ``swap_content_accuracy`` / ``swap_style_accuracy``
  each half alone; ``swap_reader_accuracy`` is both readers on real test fragments (the ceiling).
- ``recon_mse``: reconstruction error of the test fragments.

Example:
    >>> codebook_scores(np.array([0, 0, 1, 1]), np.array([3, 3, 4, 5]), codebook_size=2)[0]["codebook_accuracy"]
    0.75
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ...data.digit_sequences import BACKGROUND, FOREGROUND, DigitSequences
from ...metrics.registry import MODEL, Metric, register

CODEBOOK = {"codebook_accuracy": "maximize", "codebook_purity": "maximize", "codebook_hungarian": "maximize",
            "codebook_atoms_used": "maximize"}
RETRIEVAL = {"prauc_content_digit": "maximize", "prauc_style_colour": "maximize",
             "prauc_style_digit": "minimize", "prauc_content_colour": "minimize"}
SWAP = {"swap_content_accuracy": "maximize", "swap_style_accuracy": "maximize",
        "swap_reader_accuracy": "maximize", "recon_mse": "minimize"}
for _m in (Metric("v3_codebook", CODEBOOK, MODEL), Metric("v3_retrieval", RETRIEVAL, MODEL),
           Metric("v3_swap", SWAP, MODEL)):
    register(_m)
READER_TRAIN = 5000  # real train-split fragments the digit reader is fitted on


def codebook_scores(atoms: np.ndarray, digits: np.ndarray, codebook_size: int,
                    n_digits: int = 10) -> tuple[dict[str, float], np.ndarray]:
    """The four codebook scores and the count matrix [codebook_size, n_digits]."""
    counts = np.zeros((codebook_size, n_digits), dtype=np.int64)
    np.add.at(counts, (np.asarray(atoms), np.asarray(digits)), 1)
    used = counts.sum(axis=1) > 0
    rows = counts[used]
    rows_, cols_ = linear_sum_assignment(counts, maximize=True)
    return {
        "codebook_accuracy": float((rows.max(axis=1) / rows.sum(axis=1)).mean()),
        "codebook_purity": float(rows.max(axis=1).sum() / counts.sum()),
        "codebook_hungarian": float(counts[rows_, cols_].sum() / counts.sum()),
        "codebook_atoms_used": float(used.sum()),
    }, counts


def retrieval_ks(n: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... below ``n`` - 1, then ``n`` - 1 (every other item retrieved)."""
    ks, base = [], 1
    while True:
        for m in (1, 2, 5):
            if m * base >= n - 1:
                return ks + [n - 1]
            ks.append(m * base)
        base *= 10


def retrieval_pr_auc(z: np.ndarray | torch.Tensor, labels: np.ndarray) -> float:
    """Mean over the query rows of the area under the precision-recall curve (see the module)."""
    z = torch.as_tensor(np.asarray(z), dtype=torch.float64)
    labels = torch.as_tensor(np.asarray(labels))
    n = len(z)
    d = torch.cdist(z, z)
    d.fill_diagonal_(float("inf"))
    order = d.argsort(dim=1, stable=True)[:, : n - 1]
    hits = (labels[order] == labels[:, None]).double().cumsum(dim=1)  # [n, n-1] TP at k = 1..n-1
    ks = torch.tensor(retrieval_ks(n))
    tp = hits[:, ks - 1]
    relevant = (labels[None, :] == labels[:, None]).sum(dim=1).double() - 1
    keep = relevant > 0
    precision = tp[keep] / ks.double()
    recall = tp[keep] / relevant[keep, None]
    steps = torch.diff(recall, dim=1, prepend=torch.zeros(len(recall), 1, dtype=torch.float64))
    return float((steps * precision).sum(dim=1).mean())


def ink(images: torch.Tensor) -> torch.Tensor:
    """How far each pixel is from the background, whatever the colour: [N, 32, 32] in [0, 1]."""
    return ((BACKGROUND - images) / BACKGROUND).amax(dim=1).clamp(0, 1)


def read_colour(images: torch.Tensor) -> torch.Tensor:
    """The palette colour each image is best drawn in: per colour, each pixel is explained as the
    blend ``bg + a (fg - bg)`` with its best ``a`` in [0, 1]; the colour with the least residual."""
    fg = torch.as_tensor(FOREGROUND, device=images.device)  # [P, 3]
    delta = fg - BACKGROUND  # [P, 3]
    p = (images - BACKGROUND).flatten(2)  # [N, 3, S*S]
    a = torch.einsum("ncs,pc->nps", p, delta) / (delta * delta).sum(1)[None, :, None]
    a = a.clamp(0, 1)
    residual = (p[:, None] - a[:, :, None] * delta[None, :, :, None]).pow(2).sum(dim=(2, 3))  # [N, P]
    return residual.argmin(dim=1)


@dataclass
class DigitReader:
    """5 nearest neighbours on 16x16 pooled ink maps of real fragments (the train split's)."""

    model: object

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        return self.model.predict(_features(images))


def _features(images: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.avg_pool2d(ink(images.float().cpu())[:, None], 2).flatten(1).numpy()


@functools.lru_cache(maxsize=4)
def digit_reader(seed: int) -> DigitReader:
    from sklearn.neighbors import KNeighborsClassifier

    data = DigitSequences()
    y = data.sample_factors(READER_TRAIN, np.random.default_rng([seed, 17]))
    model = KNeighborsClassifier(5).fit(_features(data.images(y)), y[:, 0])
    return DigitReader(model)


@dataclass
class Evaluation:
    scores: dict[str, float]
    counts: np.ndarray  # atoms x digits on the test fragments
    swap_grid: torch.Tensor  # [1 + 10, 1 + n_styles, C, S, S]: styles along the top, contents down the left


@torch.no_grad()
def v3_evaluation(E, D, Q, data: DigitSequences, cfg, device: torch.device) -> Evaluation:
    """Every score above for the nets as they are (eval mode for the call, then restored)."""
    modes = [(m, m.training) for m in (E, D, Q)]
    for m, _ in modes:
        m.eval()
    try:
        return _evaluate(E, D, Q, data.split_view("test"), cfg, device)
    finally:
        for m, mode in modes:
            m.train(mode)


def held_out_factors(test: DigitSequences, cfg) -> tuple[np.ndarray, np.random.Generator]:
    """The factor rows [eval_samples x L, K] of the held-out fragments every evaluation scores
    (the same for every evaluation of a run: seeded by the run's seed), and the generator that
    drew them, for the evaluation's other draws."""
    rng = np.random.default_rng([cfg.seed, 2407])
    return test.sample_sequences(cfg.eval_samples, rng).reshape(-1, test.num_factors), rng


def _evaluate(E, D, Q, test: DigitSequences, cfg, device) -> Evaluation:
    y, rng = held_out_factors(test, cfg)
    x = test.images(y).to(device)
    zc, zs = E(x)
    zc, zs = zc.float(), zs.float()
    quantized = cfg.quantized and bool(Q.initialised)
    if quantized:
        atoms = Q.assign(zc)
        content = Q.codebook[atoms]
        atoms = atoms.cpu().numpy()
    else:
        from sklearn.cluster import KMeans

        atoms = KMeans(cfg.codebook_size, n_init=4, random_state=cfg.seed).fit_predict(zc.cpu().numpy())
        content = zc
    scores, counts = codebook_scores(atoms, y[:, 0], cfg.codebook_size)
    zc_np, zs_np = zc.cpu().numpy(), zs.cpu().numpy()
    scores["prauc_content_digit"] = retrieval_pr_auc(zc_np, y[:, 0])
    scores["prauc_style_colour"] = retrieval_pr_auc(zs_np, y[:, 1])
    scores["prauc_style_digit"] = retrieval_pr_auc(zs_np, y[:, 0])
    scores["prauc_content_colour"] = retrieval_pr_auc(zc_np, y[:, 1])
    scores["recon_mse"] = float((D(content, zs).float() - x).pow(2).mean())

    reader = digit_reader(cfg.seed)
    real_ok = (reader(x) == y[:, 0]) & (read_colour(x).cpu().numpy() == y[:, 1])
    scores["swap_reader_accuracy"] = float(real_ok.mean())
    L = test.sequence_length
    i = rng.integers(0, len(y), size=cfg.swap_pairs)
    j = (i // L + rng.integers(1, cfg.eval_samples, size=cfg.swap_pairs)) % cfg.eval_samples * L \
        + rng.integers(0, L, size=cfg.swap_pairs)  # a fragment of another sample
    swapped = D(content[i], zs[j]).float()
    digit_ok = reader(swapped) == y[i, 0]
    colour_ok = read_colour(swapped).cpu().numpy() == y[j, 1]
    scores["swap_accuracy"] = float((digit_ok & colour_ok).mean())
    scores["swap_content_accuracy"] = float(digit_ok.mean())
    scores["swap_style_accuracy"] = float(colour_ok.mean())
    return Evaluation(scores, counts, _swap_grid(x, content, zs, y, D, L))


def _swap_grid(x, content, zs, y, D, L: int) -> torch.Tensor:
    """Contents: the first sample's fragments in digit order; styles: one fragment of each of the
    next samples of a colour not seen yet (up to 8)."""
    first = np.argsort(y[:L, 0])
    styles, seen = [], set()
    for s in range(1, len(y) // L):
        if y[s * L, 1] not in seen:
            seen.add(y[s * L, 1])
            styles.append(s * L)
    content_rows = torch.as_tensor(first)
    style_cols = torch.as_tensor(styles)
    nc, ns = len(content_rows), len(style_cols)
    decoded = D(content[content_rows].repeat_interleave(ns, 0), zs[style_cols].repeat(nc, 1)).float()
    grid = torch.full((nc + 1, ns + 1, *x.shape[1:]), BACKGROUND)  # the corner stays blank
    grid[0, 1:] = x[style_cols].cpu()
    grid[1:, 0] = x[content_rows].cpu()
    grid[1:, 1:] = decoded.reshape(nc, ns, *x.shape[1:]).cpu()
    return grid
