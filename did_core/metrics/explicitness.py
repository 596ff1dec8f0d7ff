"""Explicitness (Ridgeway & Mozer 2018) as in disentanglement_lib.

Codes are standardised with the training mean and std; per factor a logistic regression
(one-vs-rest, liblinear, C=1: the reference's scikit-learn defaults) predicts the factor; the
factor's score is the macro average over its classes of the one-vs-rest ROC-AUC of the predicted
probabilities on the test set. Explicitness is the mean over factors. (A class absent from the
test set has no ROC-AUC and is left out of the average; the reference would fail there.)

Example:
    >>> explicitness(codes, factors, codes_test, factors_test)
    0.87...
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.multiclass import OneVsRestClassifier

from .protocols import Protocol, get_protocol
from .utils import check_train_test, standardize


def logistic_regression(protocol: Protocol):
    """The reference's logistic regression: one-vs-rest liblinear fits."""
    base = LogisticRegression(
        solver="liblinear", C=protocol.logistic_C, tol=protocol.logistic_tol, max_iter=protocol.logistic_max_iter
    )
    return OneVsRestClassifier(base)


def explicitness_factor(codes, target, codes_test, target_test, protocol: Protocol) -> float:
    """One factor's explicitness from standardised codes: mean one-vs-rest test ROC-AUC."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = logistic_regression(protocol).fit(codes, target)
    proba = clf.predict_proba(codes_test)
    aucs = []
    for c, label in enumerate(clf.classes_):
        truth = target_test == label
        if truth.any() and not truth.all():
            aucs.append(roc_auc_score(truth, proba[:, c]))
    return float(np.mean(aucs))


def explicitness(codes, factors, codes_test, factors_test, protocol="dlib") -> float:
    """Explicitness of codes [N, d] for factor indices [N, K]."""
    protocol = get_protocol(protocol)
    z, y, zt, yt = check_train_test(codes, factors, codes_test, factors_test)
    z, zt = standardize(z, zt)
    return float(np.mean([explicitness_factor(z, y[:, k], zt, yt[:, k], protocol) for k in range(y.shape[1])]))
