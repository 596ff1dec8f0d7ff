"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018).

One classifier per factor predicts the factor from all codes; its feature importances form the
column ``R[:, k]`` of the importance matrix [d, K]. Under ``dlib`` the classifier is scikit-learn's
gradient-boosted trees with its defaults (100 stages, depth 3, learning rate 0.1); under ``fast``
a random forest (see ``protocols.py``).

- disentanglement: ``sum_j (1 - H_K(R[j, :])) * sum_k R[j, k] / sum R``
- completeness: ``sum_k (1 - H_d(R[:, k])) * sum_j R[j, k] / sum R``
- informativeness: mean test accuracy of the K classifiers

Entropies are taken of the normalised rows/columns of ``R + 1e-11``, in base K (resp. d).

Example:
    >>> scores = dci(codes, factors, codes_test, factors_test)
    >>> scores["dci_disentanglement"], scores["dci_informativeness"]
"""
from __future__ import annotations

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

from .protocols import Protocol, get_protocol
from .utils import MetricInputError, check_train_test


def make_classifier(protocol: Protocol, seed: int):
    """The per-factor classifier of a protocol, with a fixed ``random_state``."""
    if protocol.dci_model == "gbt":
        return GradientBoostingClassifier(
            n_estimators=protocol.dci_n_estimators,
            learning_rate=protocol.dci_learning_rate,
            max_depth=protocol.dci_max_depth,
            random_state=seed,
        )
    if protocol.dci_model == "forest":
        return RandomForestClassifier(
            n_estimators=protocol.dci_n_estimators, max_depth=protocol.dci_max_depth, random_state=seed
        )
    raise ValueError(f"protocol.dci_model: unknown model {protocol.dci_model!r} (gbt or forest)")


def fit_factor(codes, target, codes_test, target_test, protocol: Protocol, seed: int = 0):
    """Fit one factor's classifier: (importances [d], test accuracy). Codes are float32 arrays."""
    model = make_classifier(protocol, seed).fit(codes, target)
    accuracy = float(np.mean(model.predict(codes_test) == target_test))
    return np.abs(model.feature_importances_), accuracy


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    p = p / p.sum(axis=1, keepdims=True)
    return -(p * np.log(p)).sum(axis=1) / np.log(base)


def disentanglement(importance: np.ndarray, eps: float = 1e-11) -> float:
    """D from the importance matrix [d, K]."""
    per_code = 1.0 - _entropy_rows(importance + eps, importance.shape[1])
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    return float(np.sum(per_code * weights.sum(axis=1) / weights.sum()))


def completeness(importance: np.ndarray, eps: float = 1e-11) -> float:
    """C from the importance matrix [d, K]."""
    per_factor = 1.0 - _entropy_rows(importance.T + eps, importance.shape[0])
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    return float(np.sum(per_factor * weights.sum(axis=0) / weights.sum()))


def dci_from_importance(importance: np.ndarray, accuracies, eps: float = 1e-11) -> dict[str, float]:
    return {
        "dci_disentanglement": disentanglement(importance, eps),
        "dci_completeness": completeness(importance, eps),
        "dci_informativeness": float(np.mean(accuracies)),
    }


def dci(codes, factors, codes_test, factors_test, protocol="dlib", seed: int = 0) -> dict[str, float]:
    """DCI scores of codes [N, d] for factor indices [N, K] (classifiers fitted one after another)."""
    protocol = get_protocol(protocol)
    z, y, zt, yt = check_train_test(codes, factors, codes_test, factors_test)
    if y.shape[1] < 2:
        raise MetricInputError("factors: DCI needs at least two factors")
    z32, zt32 = z.astype(np.float32), zt.astype(np.float32)
    importance = np.zeros((z.shape[1], y.shape[1]))
    accuracies = []
    for k in range(y.shape[1]):
        importance[:, k], acc = fit_factor(z32, y[:, k], zt32, yt[:, k], protocol, seed)
        accuracies.append(acc)
    return dci_from_importance(importance, accuracies, protocol.dci_entropy_eps)
