"""The scores that sample from a dataset and an encoder: FactorVAE, BetaVAE and the driver."""
import numpy as np
import pytest
import torch

from did_core.data import get_dataset
from did_core.data.base import GroundTruthDataset
from did_core.metrics import MetricInputError, evaluate
from did_core.metrics.protocols import replace

SMALL = replace(
    "dlib",
    name="small",
    num_train=500,
    num_test=250,
    dci_n_estimators=10,
    factor_vae_num_variance=500,
    factor_vae_num_train=150,
    factor_vae_num_eval=100,
    beta_vae_num_train=150,
    beta_vae_num_eval=100,
)


class Stripes(GroundTruthDataset):
    """Factor k sets the brightness of image row block k (so images determine factors)."""

    name = "stripes"
    factor_names = ("a", "b", "c", "d")
    factor_sizes = (3, 4, 5, 2)
    num_channels = 1

    def images(self, factors):
        y = torch.as_tensor(np.asarray(factors), dtype=torch.float32)
        levels = y / (torch.tensor(self.factor_sizes, dtype=torch.float32) - 1)
        x = torch.zeros(len(y), 1, 64, 64)
        for k in range(self.num_factors):
            x[:, 0, 16 * k : 16 * (k + 1), :] = levels[:, k, None, None]
        return x.to(self.device)


def read_stripes(x):
    """The perfect encoder for Stripes: one code per factor, plus a collapsed (constant) code."""
    levels = x[:, 0, ::16, 0]
    return torch.cat([levels, torch.zeros(len(x), 1)], dim=1)


class NoiseEncoder(torch.nn.Module):
    """Codes independent of the images."""

    def __init__(self, dim=6):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(dim))
        self.generator = torch.Generator().manual_seed(0)

    def forward(self, x):
        return torch.randn(len(x), len(self.scale), generator=self.generator) * self.scale


def test_perfect_encoder_scores_one_and_random_encoder_scores_low():
    ds = Stripes()
    good = evaluate(ds, read_stripes, protocol=SMALL, n_jobs=1)
    bad = evaluate(ds, NoiseEncoder(), protocol=SMALL, n_jobs=1)
    # the collapsed code (std 0 < 0.05) is pruned: unpruned, 0/0 would take votes
    assert good["factor_vae"] == 1.0
    assert good["beta_vae"] >= 0.97
    assert bad["factor_vae"] < 0.45  # 4 factors: chance is about 1/4
    assert bad["beta_vae"] < 0.45
    assert good["mig"] > 0.9 > 0.05 > bad["mig"]
    assert good["dci_disentanglement"] > 0.9 and bad["dci_disentanglement"] < 0.3
    assert list(good) == [
        "mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap",
        "modularity", "explicitness", "gaussian_tc", "factor_vae", "beta_vae",
    ]


def test_a_score_does_not_depend_on_the_other_metrics_requested():
    ds = Stripes()
    alone = evaluate(ds, NoiseEncoder(), protocol=SMALL, metrics="beta_vae", n_jobs=1)
    with_mig = evaluate(ds, NoiseEncoder(), protocol=SMALL, metrics="mig,beta_vae", n_jobs=1)
    assert alone["beta_vae"] == with_mig["beta_vae"]
    other_seed = evaluate(ds, NoiseEncoder(), protocol=SMALL, metrics="beta_vae", seed=1, n_jobs=1)
    assert other_seed["beta_vae"] != alone["beta_vae"]


def test_module_encoder_runs_in_eval_mode_without_grad_and_is_restored():
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)

        def forward(self, x):
            seen.append((self.training, torch.is_grad_enabled(), len(x)))
            return self.lin(x[:, 0, ::16, 0])

    probe = Probe().train()
    scores = evaluate(Stripes(), probe, protocol=SMALL, metrics="mig,gaussian_tc", batch_size=128)
    assert probe.training
    assert set(s[:2] for s in seen) == {(False, False)}
    assert max(s[2] for s in seen) == 128 and sum(s[2] for s in seen) == SMALL.num_train  # no test set needed
    assert scores.protocol == "small" and set(scores) == {"mig", "gaussian_tc"}


@pytest.mark.parametrize(
    "encode, message",
    [
        (lambda x: (read_stripes(x), read_stripes(x)), r"encode: must return a tensor of codes \[\d+, d\].*got tuple"),
        (lambda x: read_stripes(x)[:-1], r"encode: must return a tensor of codes \[(\d+), d\] for \1 images"),
        (lambda x: read_stripes(x) * float("nan"), r"codes \(from encode\): \d+ values are NaN"),
        (lambda x: read_stripes(x)[:, :1], r"codes \(from encode\): need at least two code dimensions"),
    ],
)
def test_bad_encoder_output_is_named(encode, message):
    with pytest.raises(MetricInputError, match=message):
        evaluate(Stripes(), encode, protocol=SMALL, metrics="mig")


class RecordingDSprites:
    """Procedural dSprites that remembers the factors of the last images it drew."""

    def __init__(self):
        self.inner = get_dataset("dsprites")
        self.last = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def images(self, factors):
        self.last = np.asarray(factors)
        return self.inner.images(factors)


def test_factor_vae_and_beta_vae_on_procedural_dsprites():
    torch.set_num_threads(1)
    ds = RecordingDSprites()
    sizes = torch.tensor(ds.factor_sizes, dtype=torch.float64) - 1

    def perfect(x):  # the true factor values of the images being encoded
        assert len(x) == len(ds.last)
        return torch.as_tensor(ds.last, dtype=torch.float64) / sizes

    quick = replace(SMALL, name="quick", factor_vae_num_train=60, factor_vae_num_eval=40,
                    beta_vae_num_train=100, beta_vae_num_eval=50)
    good = evaluate(ds, perfect, protocol=quick, metrics="factor_vae,beta_vae", n_jobs=1)
    bad = evaluate(ds, NoiseEncoder(10), protocol=quick, metrics="factor_vae,beta_vae", n_jobs=1)
    assert good["factor_vae"] == 1.0 and good["beta_vae"] >= 0.95
    assert bad["factor_vae"] < 0.45 and bad["beta_vae"] < 0.45  # 5 factors: chance is about 1/5
