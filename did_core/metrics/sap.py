"""SAP score (Kumar et al. 2018), discrete-factor version of disentanglement_lib.

``S[j, k]`` = test accuracy of a linear SVM (C=0.01, balanced class weights) that predicts factor k
from code j alone; SAP = mean over factors of the gap between the two largest ``S[:, k]``.

Example:
    >>> sap(codes, factors, codes_test, factors_test)
    0.12...
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from .protocols import Protocol, get_protocol
from .utils import check_train_test


def sap_column(codes, target, codes_test, target_test, protocol: Protocol, seed: int = 0) -> np.ndarray:
    """``S[:, k]`` for one factor: accuracy of a 1-D SVM on each code dimension, [d]."""
    column = np.zeros(codes.shape[1])
    for j in range(codes.shape[1]):
        svm = LinearSVC(
            C=protocol.sap_svm_C,
            class_weight="balanced",
            dual=protocol.sap_svm_dual,
            tol=protocol.sap_svm_tol,
            max_iter=protocol.sap_svm_max_iter,
            random_state=seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm.fit(codes[:, j : j + 1], target)
        column[j] = np.mean(svm.predict(codes_test[:, j : j + 1]) == target_test)
    return column


def sap_from_matrix(scores: np.ndarray) -> float:
    """SAP from the [d, K] score matrix."""
    top = np.sort(scores, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def sap(codes, factors, codes_test, factors_test, protocol="dlib", seed: int = 0) -> float:
    """SAP of codes [N, d] for factor indices [N, K]."""
    protocol = get_protocol(protocol)
    z, y, zt, yt = check_train_test(codes, factors, codes_test, factors_test)
    matrix = np.stack([sap_column(z, y[:, k], zt, yt[:, k], protocol, seed) for k in range(y.shape[1])], axis=1)
    return sap_from_matrix(matrix)
