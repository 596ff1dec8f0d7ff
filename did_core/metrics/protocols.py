"""The constants of each evaluation protocol, one frozen dataclass per protocol.

``dlib`` reproduces the published protocol of Locatello et al. (2019, "disentanglement_lib"):
every sample count, bin count and classifier setting below is the one behind published numbers
(scikit-learn estimators pinned to the defaults that the reference code called, so that a future
scikit-learn release cannot silently change a score). ``fast`` is for monitoring during training:
the classifiers (DCI, SAP, explicitness) are fitted on 3,000 rows and tested on 1,500, DCI uses a
random forest (30 trees, depth 8) instead of gradient boosting, and the FactorVAE / BetaVAE
scores use 800 / 400 votes (points), UDR 500 observations, ModelCentrality 100 groups of 10
generated images (spreads from 300); MIG, modularity and Gaussian TC use the same 10,000 rows as
``dlib``. ``fast`` scores track the ``dlib`` ranking (Spearman >= 0.9 over a family of
representations, see ``benchmarks/metrics_speed.py``) but are NOT comparable with published
numbers.

How the "never mixed" rule is enforced: the driver returns a :class:`~did_core.metrics.Scores`
(a ``dict`` that knows its ``protocol``), and every model event carries its protocol. A study's
tables name in-training scores ``<protocol>/<score>`` (``fast/mig``) and hold final scores of one
protocol only: a study whose arms or parameters would mix two is refused, a run folder never
takes a second one, and a final event of another protocol fails its trial (see
``orchestrator/run_folder/layout.py``). Outside a study, :meth:`Scores.columns` names scores for a table
(bare for ``dlib``, prefixed otherwise). The CLI prints the protocol on stderr with every result.

Example:
    >>> from did_core.metrics.protocols import get_protocol
    >>> get_protocol("dlib").num_train, get_protocol("fast").dci_model
    (10000, 'forest')
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    name: str
    comparable_with_published: bool
    # samples for the metrics computed from (codes, factors)
    num_train: int = 10_000
    num_test: int = 5_000
    # training rows for the classifiers of DCI, SAP and explicitness (None: all num_train rows);
    # MIG, modularity and Gaussian TC always use all num_train rows (they are cheap)
    classifier_num_train: int | None = None
    # MIG / modularity: equal-width histogram bins per code dimension (train codes only)
    num_bins: int = 20
    # DCI: "gbt" = GradientBoostingClassifier, "forest" = RandomForestClassifier, one per factor
    dci_model: str = "gbt"
    dci_n_estimators: int = 100
    dci_max_depth: int | None = 3
    dci_learning_rate: float = 0.1  # gbt only
    dci_entropy_eps: float = 1e-11
    # SAP: LinearSVC per (code, factor); dual=True was scikit-learn's default in the reference
    sap_svm_C: float = 0.01
    sap_svm_dual: bool = True
    sap_svm_tol: float = 1e-4
    sap_svm_max_iter: int = 1000
    # Explicitness and the BetaVAE score: logistic regression as the reference ran it
    # (scikit-learn < 0.22 defaults: liblinear, one-vs-rest, C=1, tol=1e-4, max_iter=100)
    logistic_C: float = 1.0
    logistic_tol: float = 1e-4
    logistic_max_iter: int = 100
    # FactorVAE score
    factor_vae_batch_size: int = 64
    factor_vae_num_variance: int = 10_000
    factor_vae_num_train: int = 10_000
    factor_vae_num_eval: int = 5_000
    factor_vae_prune_std: float = 0.05
    # BetaVAE score
    beta_vae_batch_size: int = 64
    beta_vae_num_train: int = 10_000
    beta_vae_num_eval: int = 5_000
    # run the per-factor classifier fits in worker processes (worth it only for long fits)
    parallel_fits: bool = True
    # UDR (study-level, from the seeds of a configuration): disentanglement_lib's udr.gin
    udr_num_points: int = 1_000
    udr_lasso_alpha: float = 0.1
    udr_kl_threshold: float = 0.01
    # ModelCentrality (study-level, across the models of a study): InfoGAN-CR's main_mc_* scripts,
    # M groups of L generated images with one latent fixed per group; the encoders' global spread
    # from free samples, None = a tenth of the training set's size (the authors' N / 10)
    mc_num_groups: int = 500
    mc_group_size: int = 100
    mc_num_variance: int | None = None


DLIB = Protocol(name="dlib", comparable_with_published=True)

FAST = Protocol(
    name="fast",
    comparable_with_published=False,
    num_test=1_500,
    classifier_num_train=3_000,
    dci_model="forest",
    dci_n_estimators=30,
    dci_max_depth=8,
    factor_vae_num_train=800,
    factor_vae_num_eval=400,
    beta_vae_num_train=800,
    beta_vae_num_eval=400,
    parallel_fits=False,
    udr_num_points=500,
    mc_num_groups=100,
    mc_group_size=10,
    mc_num_variance=300,
)

PROTOCOLS: dict[str, Protocol] = {"dlib": DLIB, "fast": FAST}


def get_protocol(protocol: str | Protocol) -> Protocol:
    """The :class:`Protocol` named ``protocol`` (or ``protocol`` itself if it already is one)."""
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def replace(protocol: str | Protocol, **changes) -> Protocol:
    """A copy of a protocol with some constants changed (tests, small experiments).

    A changed copy is never the published protocol, so it must carry its own name.

    Example:
        >>> tiny = replace("dlib", name="tiny", num_train=500, num_test=250)
    """
    base = get_protocol(protocol)
    if "name" not in changes or changes["name"] in PROTOCOLS:
        raise ValueError("protocol: a modified protocol needs a new name (e.g. name='tiny')")
    changes.setdefault("comparable_with_published", False)
    return dataclasses.replace(base, **changes)
