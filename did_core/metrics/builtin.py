"""The built-in metrics (disentanglement_lib's), one :class:`~did_core.metrics.registry.Metric`
each, registered through the metric registry's entry points (``did_orchestrator.metrics``) in
the order their scores are listed.

Example:
    >>> MIG.scores, MIG.needs
    ({'mig': 'maximize'}, 'mutual_info')
"""
from __future__ import annotations

import numpy as np

from .beta_vae import beta_vae_score
from .dci import dci_from_importance, fit_factor
from .explicitness import explicitness_factor
from .factor_vae import factor_vae_score
from .gaussian_tc import gaussian_tc_from_cov
from .mig import mig_from_mi
from .modularity import modularity_from_mi
from .registry import CODES, DATASET, MODEL, MUTUAL_INFO, PER_FACTOR, Metric
from .sap import sap_column, sap_from_matrix
from .utils import discrete_entropy, standardize


def _dci_job(z, target, z_test, target_test, protocol, seed):
    return fit_factor(np.ascontiguousarray(z, np.float32), target, np.ascontiguousarray(z_test, np.float32),
                      target_test, protocol, seed)


def _dci(results, protocol) -> dict[str, float]:
    importance = np.stack([r[0] for r in results], axis=1)
    return dci_from_importance(importance, [r[1] for r in results], protocol.dci_entropy_eps)


def _explicitness_job(z, target, z_test, target_test, protocol, seed) -> float:
    zs, zts = standardize(z, z_test)
    return explicitness_factor(zs, target, zts, target_test, protocol)


def _factor_vae(dataset, codes_of, train_codes, protocol, rng) -> dict[str, float]:
    n = protocol.factor_vae_num_variance
    # the driver's training codes are a uniform sample: reuse them for the variances when enough
    global_codes = train_codes()[:n] if n <= protocol.num_train else codes_of(dataset.sample_factors(n, rng))
    return {"factor_vae": factor_vae_score(dataset, codes_of, global_codes, protocol, rng)}


MIG = Metric("mig", {"mig": "maximize"}, MUTUAL_INFO,
             compute=lambda mi, y, protocol: {"mig": mig_from_mi(mi, discrete_entropy(y))})
DCI = Metric("dci", {"dci_disentanglement": "maximize", "dci_completeness": "maximize",
                     "dci_informativeness": "maximize"}, PER_FACTOR, compute=_dci, factor_job=_dci_job,
             job_cost=lambda classes, n, p: (classes if p.dci_model == "gbt" else 0.3) * p.dci_n_estimators * n,
             test_set=True, min_factors=2)
SAP = Metric("sap", {"sap": "maximize"}, PER_FACTOR, factor_job=sap_column, test_set=True,
             compute=lambda results, protocol: {"sap": sap_from_matrix(np.stack(results, axis=1))},
             job_cost=lambda classes, n, p: 0.5 * classes * n)
MODULARITY = Metric("modularity", {"modularity": "maximize"}, MUTUAL_INFO, min_factors=2,
                    compute=lambda mi, y, protocol: {"modularity": modularity_from_mi(mi)})
EXPLICITNESS = Metric("explicitness", {"explicitness": "maximize"}, PER_FACTOR, factor_job=_explicitness_job,
                      test_set=True, compute=lambda results, protocol: {"explicitness": float(np.mean(results))},
                      job_cost=lambda classes, n, p: 0.4 * classes * n)
GAUSSIAN_TC = Metric("gaussian_tc", {"gaussian_tc": "minimize"}, CODES,
                     compute=lambda z, y, zt, yt, protocol, seed: {"gaussian_tc": gaussian_tc_from_cov(np.cov(z, rowvar=False))})
FACTOR_VAE = Metric("factor_vae", {"factor_vae": "maximize"}, DATASET, compute=_factor_vae, stream=1)
BETA_VAE = Metric("beta_vae", {"beta_vae": "maximize"}, DATASET, stream=2,
                  compute=lambda dataset, codes_of, train_codes, protocol, rng:
                  {"beta_vae": beta_vae_score(dataset, codes_of, protocol, rng)})
# Scores more than one model provides from its own nets (V3, PartedVAE): registered once, here.
SWAP = Metric("swap", {"swap_accuracy": "maximize"}, MODEL)
