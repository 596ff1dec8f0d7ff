"""PartedVAE's own scores, registered as provided by the model (``did_core.metrics.registry``):

- ``class_accuracy``: argmax ``q(c|x)`` against the class factor on ``score_rows`` images drawn
  uniformly (mean over the categorical variables; chance = 1 / classes);
- ``class_accuracy_matched``: the same after the best one-to-one relabelling of the classes
  (Hungarian assignment on the confusion matrix): a run without labels may name shapes in any order;
- ``prior_overlap``: the largest Bhattacharyya coefficient between two components of ``u``'s
  prior (1 = two classes share one component; the ``standard`` prior's are all N(0, I), so 1);
- ``swap_accuracy``: decode ``[z_j, u_i]`` (``z`` of image ``j``, ``u`` of image ``i``, whose class
  differs from ``j``'s); the decoded class is the class value whose re-render of ``j``'s factors
  is nearest (squared error) to the decoded image; the fraction of pairs where it is
  ``i``'s class (for several variables: all of them), over ``swap_pairs`` pairs. Keeping ``j``'s own
  class scores 0; a decoder that ignores both ``z`` and ``u`` about 1 / classes.

Everything is drawn from generators seeded by the run's seed, never the training RNG, so scoring a
run does not change it. The encoder sees evaluation's one-hot ``c`` and the slope's cap.

Example:
    >>> scores = model_scores(enc, dec, prior, get_dataset("dsprites"), cfg, [0], torch.device("cpu"))
    >>> sorted(scores)
    ['class_accuracy', 'class_accuracy_matched', 'prior_overlap', 'swap_accuracy']
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ...metrics.registry import MODEL, Metric, register
from .losses import pairwise_bc

# swap_accuracy, which V3 also provides, is registered once in did_core.metrics.registry ("swap")
DIRECTIONS = {"class_accuracy": "maximize", "class_accuracy_matched": "maximize", "prior_overlap": "minimize"}
register(Metric("parted_vae", DIRECTIONS, MODEL))
BATCH = 500
STREAM = 0x5CA1E  # this module's random stream, next to the run's seed


def matched_accuracy(pred: np.ndarray, true: np.ndarray, k: int) -> float:
    """Accuracy after the one-to-one relabelling of predicted classes that maximises it."""
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (pred, true), 1)
    rows, cols = linear_sum_assignment(-confusion)
    return float(confusion[rows, cols].sum() / max(len(true), 1))


def encode_hard(enc, x: torch.Tensor, cfg):
    """The posterior as evaluation sees it: one-hot ``c``, the slope at its cap."""
    return enc(x, slope=cfg.slope_max, temperature=cfg.temperature, hard=True)


@torch.no_grad()
def model_scores(enc, dec, prior, dataset, cfg, class_columns: list[int], device: torch.device) -> dict[str, float]:
    """The four scores above for the nets as they are now."""
    rng = np.random.default_rng([cfg.seed, STREAM])
    sizes = [dataset.factor_sizes[c] for c in class_columns]
    y = dataset.sample_factors(cfg.score_rows, rng)
    preds = []
    for start in range(0, cfg.score_rows, BATCH):
        logits = encode_hard(enc, dataset.images(y[start:start + BATCH]).to(device), cfg).c_logits.float()
        preds.append(torch.stack([chunk.argmax(1) for chunk in logits.split(sizes, dim=1)], dim=1).cpu().numpy())
    pred = np.concatenate(preds)
    true = y[:, class_columns]
    bcs = pairwise_bc(prior.means, prior.logvars(), sizes)
    return {
        "class_accuracy": float(np.mean([(pred[:, i] == true[:, i]).mean() for i in range(len(sizes))])),
        "class_accuracy_matched": float(np.mean([matched_accuracy(pred[:, i], true[:, i], k)
                                                 for i, k in enumerate(sizes)])),
        "prior_overlap": float(max(bcs).item()) if bcs else 0.0,
        "swap_accuracy": swap_accuracy(enc, dec, dataset, cfg, class_columns, device, rng),
    }


def swap_pairs(dataset, n: int, class_columns: list[int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Factor rows ``(y_i, y_j)``, ``n`` each, drawn uniformly except that ``j``'s class differs from
    ``i``'s in every class factor with more than one value."""
    y_i, y_j = dataset.sample_factors(n, rng), dataset.sample_factors(n, rng)
    for c in class_columns:
        k = dataset.factor_sizes[c]
        if k > 1:
            y_j[:, c] = (y_i[:, c] + rng.integers(1, k, size=n)) % k
    return y_i, y_j


def swap_decode(enc, dec, x_i: torch.Tensor, x_j: torch.Tensor, cfg) -> torch.Tensor:
    """Images decoded from ``z`` of ``x_j`` and ``u`` of ``x_i`` (probabilities in [0, 1])."""
    post_i, post_j = encode_hard(enc, x_i, cfg), encode_hard(enc, x_j, cfg)
    return torch.sigmoid(dec(torch.cat([post_j.z_mean, post_i.u_mean], dim=1)).float())


def swap_accuracy(enc, dec, dataset, cfg, class_columns: list[int], device: torch.device,
                  rng: np.random.Generator) -> float:
    y_i, y_j = swap_pairs(dataset, cfg.swap_pairs, class_columns, rng)
    hits = []
    for start in range(0, cfg.swap_pairs, BATCH):
        a, b = y_i[start:start + BATCH], y_j[start:start + BATCH]
        decoded = swap_decode(enc, dec, dataset.images(a).to(device), dataset.images(b).to(device), cfg)
        correct = np.ones(len(a), dtype=bool)
        for c in class_columns:
            errors = []
            for v in range(dataset.factor_sizes[c]):  # j's factors re-rendered with class value v
                candidate = b.copy()
                candidate[:, c] = v
                for other in class_columns:
                    if other != c:
                        candidate[:, other] = a[:, other]
                errors.append((decoded - dataset.images(candidate).to(device)).pow(2).flatten(1).sum(1))
            correct &= torch.stack(errors, 1).argmin(1).cpu().numpy() == a[:, c]
        hits.append(correct)
    return float(np.concatenate(hits).mean())
