"""FactorVAE score (Kim & Mnih 2018) with disentanglement_lib's constants.

Global variances come from codes of uniformly sampled observations; dimensions with std < 0.05
are pruned. Each vote fixes one random factor across a batch of 64 observations and picks the
active dimension with the smallest (variance within the batch / global variance). A majority-vote
classifier (dimension -> factor) is read off the training votes; the score is its accuracy on the
evaluation votes.

``codes_of(factor_rows) -> codes`` renders and encodes factor rows (see ``evaluate.py``).

Example:
    >>> factor_vae_score(dataset, codes_of, global_codes, "dlib", np.random.default_rng(0))
    0.83...
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .protocols import get_protocol

VOTES_PER_CHUNK = 1024


def votes_from_codes(codes: np.ndarray, fixed: np.ndarray, global_var: np.ndarray, active: np.ndarray,
                     num_labels: int) -> np.ndarray:
    """Vote counts [num_labels, d] of groups of codes [groups, L, d] whose group ``g`` held label
    ``fixed[g]`` fixed: each group votes for the active dimension with the smallest (variance within
    the group / ``global_var``). The FactorVAE score's vote, a pure function of the codes (also
    ModelCentrality's, on generated groups).

    Example:
        >>> votes_from_codes(codes, fixed, global_codes.var(axis=0, ddof=1), active, num_labels=5)
    """
    active_dims = np.flatnonzero(active)
    local_var = codes[:, :, active_dims].var(axis=1, ddof=1)
    winners = active_dims[np.argmin(local_var / global_var[active_dims], axis=1)]
    votes = np.zeros((num_labels, codes.shape[2]), dtype=np.int64)
    np.add.at(votes, (np.asarray(fixed, dtype=np.int64), winners), 1)
    return votes


def majority_vote_accuracy(train: np.ndarray, evaluation: np.ndarray) -> float:
    """Accuracy on the ``evaluation`` votes of the classifier dimension -> label read off the
    ``train`` votes (the most frequent label of each dimension); both [labels, d]."""
    classifier = np.argmax(train, axis=0)
    return float(evaluation[classifier, np.arange(evaluation.shape[1])].sum() / evaluation.sum())


def _votes(dataset, codes_of, num_votes, batch_size, rng, global_var, active) -> np.ndarray:
    """Vote counts [K, d]: how often fixing factor k made dimension j the least variable."""
    votes = np.zeros((dataset.num_factors, len(active)), dtype=np.int64)
    for start in range(0, num_votes, VOTES_PER_CHUNK):
        n = min(VOTES_PER_CHUNK, num_votes - start)
        fixed = np.empty(n, dtype=np.int64)
        rows = []
        for i in range(n):
            fixed[i] = rng.integers(dataset.num_factors)
            rows.append(dataset.sample_fixed_factor(int(fixed[i]), batch_size, rng))
        codes = codes_of(np.concatenate(rows)).reshape(n, batch_size, -1)
        votes += votes_from_codes(codes, fixed, global_var, active, dataset.num_factors)
    return votes


def factor_vae_score(
    dataset, codes_of: Callable[[np.ndarray], np.ndarray], global_codes: np.ndarray, protocol="dlib", rng=None
) -> float:
    """FactorVAE score; ``global_codes`` [n, d] are codes of uniformly sampled observations."""
    protocol = get_protocol(protocol)
    rng = rng if rng is not None else np.random.default_rng(0)
    global_var = np.var(global_codes, axis=0, ddof=1)
    active = np.sqrt(global_var) >= protocol.factor_vae_prune_std
    if not active.any():
        return 0.0
    bs = protocol.factor_vae_batch_size
    train = _votes(dataset, codes_of, protocol.factor_vae_num_train, bs, rng, global_var, active)
    evaluation = _votes(dataset, codes_of, protocol.factor_vae_num_eval, bs, rng, global_var, active)
    return majority_vote_accuracy(train, evaluation)
