"""Speed and fidelity of the metrics suite, measured side by side in one run.

1. dSprites-shaped data (factor sizes 3, 6, 40, 32, 32; 10 codes; 10,000 train / 5,000 test):
   wall time of the ``dlib`` suite (``scores_from_codes``: shared MI matrix, classifier fits in
   parallel processes) against a plain sequential computation of the same definitions (one
   scikit-learn fit after another, each metric on its own, as disentanglement_lib does), and the
   largest difference between their values.
2. The ``fast`` suite's wall time on the same data, and the Spearman rank correlation between
   ``fast`` and ``dlib`` scores over a family of representations (mixing x noise grid, from
   disentangled to entangled). Twenty ``dlib`` evaluations on dSprites' 40- and 32-class factors
   would take hours on 2 cores, so the family uses a smaller grid of factors by default
   (``--family-sizes``).

Targets: MIG, SAP, modularity identical to 1e-9 and DCI to 1e-3; suite >= 1.5x faster on 2 cores;
``fast`` under 10 s with Spearman >= 0.9 for every score.

    python benchmarks/metrics_speed.py                 # about 25 minutes on 2 cores
    python benchmarks/metrics_speed.py --family 0      # speed / fidelity part only
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.stats import spearmanr
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from did_core.metrics import score_names, scores_from_codes

DSPRITES_SIZES = (3, 6, 40, 32, 32)
NUM_CODES = 10
SEED = 0


# ---------------------------------------------------------------- data
def sample_factors(sizes, n, rng):
    return np.stack([rng.integers(0, s, size=n) for s in sizes], axis=1)


def representation(factors, sizes, mix, noise, rng):
    """Codes [n, 10]: the K normalised factors plus uniform nuisance dimensions, rotated by
    ``(1 - mix) * I + mix * Q`` (one fixed random rotation Q) and blurred by Gaussian noise."""
    n, k = factors.shape
    base = rng.uniform(size=(n, NUM_CODES))
    base[:, :k] = factors / (np.asarray(sizes) - 1.0)
    q, _ = np.linalg.qr(np.random.default_rng(12345).normal(size=(NUM_CODES, NUM_CODES)))
    mixing = (1.0 - mix) * np.eye(NUM_CODES) + mix * q
    return base @ mixing + noise * rng.normal(size=(n, NUM_CODES))


def make_data(sizes, mix, noise, seed, n_train=10_000, n_test=5_000):
    rng = np.random.default_rng(seed)
    y, yt = sample_factors(sizes, n_train, rng), sample_factors(sizes, n_test, rng)
    return representation(y, sizes, mix, noise, rng), y, representation(yt, sizes, mix, noise, rng), yt


# ---------------------------------------------------------------- the plain sequential reference
def ref_discretize(z, bins=20):
    out = np.zeros_like(z)
    for j in range(z.shape[1]):
        out[:, j] = np.digitize(z[:, j], np.histogram(z[:, j], bins)[1][:-1])
    return out


def ref_mutual_info(z, y):
    dz = ref_discretize(z)
    return np.array([[mutual_info_score(y[:, k], dz[:, j]) for k in range(y.shape[1])] for j in range(z.shape[1])])


def ref_mig(z, y):
    m = ref_mutual_info(z, y)
    h = np.array([mutual_info_score(y[:, k], y[:, k]) for k in range(y.shape[1])])
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / h))


def ref_modularity(z, y):
    sq = ref_mutual_info(z, y) ** 2  # recomputed, as each reference metric stands alone
    top = sq.max(axis=1)
    per_code = 1.0 - (sq.sum(axis=1) - top) / (top * (sq.shape[1] - 1.0))
    per_code[top == 0] = 0.0
    return float(per_code.mean())


def ref_entropy_base(p, base):  # scipy.stats.entropy over axis 0
    p = p / p.sum(axis=0)
    return -(p * np.log(p)).sum(axis=0) / np.log(base)


def ref_dci(z, y, zt, yt):
    d, k = z.shape[1], y.shape[1]
    r = np.zeros((d, k))
    acc = []
    for i in range(k):
        model = GradientBoostingClassifier(random_state=SEED).fit(z, y[:, i])
        r[:, i] = np.abs(model.feature_importances_)
        acc.append(np.mean(model.predict(zt) == yt[:, i]))
    dis = np.sum((1.0 - ref_entropy_base(r.T + 1e-11, k)) * r.sum(axis=1) / r.sum())
    com = np.sum((1.0 - ref_entropy_base(r + 1e-11, d)) * r.sum(axis=0) / r.sum())
    return float(dis), float(com), float(np.mean(acc))


def ref_sap(z, y, zt, yt):
    s = np.zeros((z.shape[1], y.shape[1]))
    for j in range(z.shape[1]):
        for k in range(y.shape[1]):
            svm = LinearSVC(C=0.01, class_weight="balanced", dual=True, random_state=SEED)
            svm.fit(z[:, j : j + 1], y[:, k])
            s[j, k] = np.mean(svm.predict(zt[:, j : j + 1]) == yt[:, k])
    top = np.sort(s, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def ref_explicitness(z, y, zt, yt):
    mean, std = z.mean(axis=0), z.std(axis=0)
    zn, ztn = (z - mean) / std, (zt - mean) / std
    out = []
    for k in range(y.shape[1]):
        clf = OneVsRestClassifier(LogisticRegression(solver="liblinear")).fit(zn, y[:, k])
        truth = (yt[:, k][:, None] == clf.classes_[None, :]).astype(int)
        out.append(roc_auc_score(truth, clf.predict_proba(ztn)))  # macro average
    return float(np.mean(out))


def ref_gaussian_tc(z):
    cov = np.cov(z.T)
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1]))


def reference_scores(z, y, zt, yt):
    dis, com, inf = ref_dci(z, y, zt, yt)
    return {
        "mig": ref_mig(z, y),
        "dci_disentanglement": dis,
        "dci_completeness": com,
        "dci_informativeness": inf,
        "sap": ref_sap(z, y, zt, yt),
        "modularity": ref_modularity(z, y),
        "explicitness": ref_explicitness(z, y, zt, yt),
        "gaussian_tc": ref_gaussian_tc(z),
    }


# ---------------------------------------------------------------- main
def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--family", type=int, default=20, help="representations in the Spearman family (0: skip)")
    ap.add_argument("--family-sizes", default="3,6,4,4,4", help="factor sizes of the family's ground truth")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    names = [n for n in score_names() if n not in ("factor_vae", "beta_vae")]

    z, y, zt, yt = make_data(DSPRITES_SIZES, mix=0.3, noise=0.05, seed=SEED)
    print(f"dSprites-shaped data: factor sizes {DSPRITES_SIZES}, {z.shape[1]} codes, "
          f"{len(z)} train / {len(zt)} test; n_jobs={args.n_jobs}", flush=True)
    ref, t_ref = timed(reference_scores, z, y, zt, yt)
    print(f"reference (sequential scikit-learn fits): {t_ref:8.1f} s", flush=True)
    suite, t_suite = timed(scores_from_codes, z, y, zt, yt, protocol="dlib", n_jobs=args.n_jobs, seed=SEED)
    print(f"dlib suite (scores_from_codes):           {t_suite:8.1f} s", flush=True)
    fast, t_fast = timed(scores_from_codes, z, y, zt, yt, protocol="fast", n_jobs=args.n_jobs, seed=SEED)
    print(f"fast suite (scores_from_codes, fast):     {t_fast:8.1f} s", flush=True)

    print(f"\n{'score':22s} {'reference':>12s} {'dlib suite':>12s} {'|diff|':>10s} {'fast':>10s}")
    for n in names:
        print(f"{n:22s} {ref[n]:12.6f} {suite[n]:12.6f} {abs(ref[n] - suite[n]):10.2e} {fast[n]:10.4f}")
    diff = lambda keys: max(abs(ref[n] - suite[n]) for n in keys)
    exact = ["mig", "sap", "modularity", "explicitness", "gaussian_tc"]
    dci = ["dci_disentanglement", "dci_completeness", "dci_informativeness"]
    print(f"\nlargest |diff|: MIG/SAP/modularity/explicitness/TC {diff(exact):.2e} (target 1e-9), "
          f"DCI {diff(dci):.2e} (target 1e-3)")
    print(f"speed-up of the dlib suite: {t_ref / t_suite:.2f}x (target >= 1.5x on 2 cores)")
    print(f"fast suite: {t_fast:.1f} s (target < 10 s)", flush=True)

    if args.family <= 0:
        return
    sizes = tuple(int(s) for s in args.family_sizes.split(","))
    mixes, noises = np.linspace(0.0, 1.0, 5), np.array([0.01, 0.05, 0.1, 0.2])
    grid = [(m, s) for m in mixes for s in noises]
    grid = (grid * (args.family // len(grid) + 1))[: args.family]
    print(f"\nfamily: {len(grid)} representations (mix x noise grid), factor sizes {sizes}", flush=True)
    dlib_rows, fast_rows, fast_times = [], [], []
    start = time.perf_counter()
    for i, (mix, noise) in enumerate(grid):
        data = make_data(sizes, mix, noise, seed=100 + i)
        dlib_rows.append(scores_from_codes(*data, protocol="dlib", n_jobs=args.n_jobs, seed=SEED))
        f, t = timed(scores_from_codes, *data, protocol="fast", n_jobs=args.n_jobs, seed=SEED)
        fast_rows.append(f)
        fast_times.append(t)
        print(f"  [{i + 1:2d}] mix={mix:.2f} noise={noise:.2f}  dlib mig={dlib_rows[-1]['mig']:.3f} "
              f"dci_d={dlib_rows[-1]['dci_disentanglement']:.3f} | fast mig={f['mig']:.3f} "
              f"dci_d={f['dci_disentanglement']:.3f} ({t:.1f} s)", flush=True)
    print(f"family done in {time.perf_counter() - start:.0f} s; fast suite per representation: "
          f"median {np.median(fast_times):.1f} s, max {max(fast_times):.1f} s")
    print(f"\n{'score':22s} {'Spearman fast vs dlib':>22s}")
    rhos = []
    for n in names:
        rho = spearmanr([r[n] for r in dlib_rows], [r[n] for r in fast_rows]).statistic
        rhos.append(rho)
        print(f"{n:22s} {rho:22.3f}")
    print(f"lowest Spearman: {min(rhos):.3f} (target >= 0.9)")


if __name__ == "__main__":
    main()
