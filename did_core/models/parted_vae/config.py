"""Every knob of PartedVAE in one dataclass, with the budget presets.

The defaults are the authors' dSprites settings (``shared/design/seed_models.md``: latents
``z`` 5, one categorical ``c`` over the class factor, ``u`` 1 per categorical variable; capacities
``C_z`` 0 -> 30 and ``C_u`` 0 -> 5 over 300,000 steps with weights 50; ``g_c`` 100, ``g_h`` 10,
``g_bc`` 10, ``tau`` 0.1; attention slope 1 -> 8 by step 35,000; 10,000 labelled images; Adam 5e-4
for both optimisers). The ``quick`` and ``smoke`` presets compress the capacity and slope schedules
to the run's length (this project's choice; the paper trains 300,000 steps).

Example:
    >>> cfg = Config.from_preset("quick", seed=1, n_labelled=0)
    >>> cfg.class_factors(), cfg.n_labelled
    (['shape'], 0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from ..base import ConfigError, TrainConfig

PRIORS = ("mixture", "standard")  # u's prior: the learnable Gaussian mixture, or a fixed N(0, I) (ablation)
QUICK_STEPS = 2000
PAPER_STEPS = 300_000


def _compressed(steps: int) -> dict[str, Any]:
    """The paper's schedules scaled to a run of ``steps``: capacities over the whole run, the
    attention slope at its cap after 35,000 / 300,000 of it."""
    return dict(steps=steps, z_capacity_steps=steps, u_capacity_steps=steps,
                slope_steps=max(1, round(steps * 35_000 / PAPER_STEPS)))


@dataclass
class Config(TrainConfig):
    model: ClassVar[str] = "parted_vae"
    # how the model's own scores are computed is part of the schedule (like eval_protocol), not the experiment
    SCHEDULE_FIELDS: ClassVar[frozenset[str]] = TrainConfig.SCHEDULE_FIELDS | {"score_rows", "swap_pairs"}

    # Latent space
    z_dim: int = 5  # class-independent Gaussian latents, prior N(0, I)
    u_dim: int = 1  # class-related Gaussian latents per categorical variable
    class_factor: str = "shape"  # the dataset factor(s) the categorical c models; "a,b" = one variable each
    temperature: float = 0.67  # Gumbel-softmax temperature of c in training (evaluation: the one-hot argmax)
    prior: str = "mixture"  # u's prior: "mixture" (learnable, one component per class) or "standard" N(0, I)

    # Attention in latent space: gate a = sigmoid(slope * (W_a c~ + b)), slope from slope_start to slope_max
    attention: bool = True  # False: u is read from the trunk's features without the gate (ablation)
    slope_start: float = 1.0
    slope_max: float = 8.0
    slope_steps: int = 35_000  # steps until the slope reaches slope_max (the authors': +2e-4 per step)

    # Objective: Rec + g_z |C_z - KL_z| + g_u |C_u - KL_u| + g_c KL(qbar(c)||p(c)) + g_h H(c|x)
    #            + g_bc sum_{k<l} relu(BC(k, l) - tau)
    z_capacity_min: float = 0.0
    z_capacity_max: float = 30.0
    z_capacity_steps: int = 300_000
    u_capacity_min: float = 0.0
    u_capacity_max: float = 5.0
    u_capacity_steps: int = 300_000
    gamma_z: float = 50.0
    gamma_u: float = 50.0
    gamma_c: float = 100.0
    gamma_h: float = 10.0
    gamma_bc: float = 10.0
    tau: float = 0.1  # Bhattacharyya coefficient allowed between two prior components before the penalty

    # Semi-supervision: one cross-entropy step of the trunk and c's head per iteration
    n_labelled: int = 10_000  # labelled images, stratified (0 = unsupervised)
    labelled_batch_size: int = 64

    # Optimisers (Adam, betas 0.9 / 0.999)
    lr: float = 5e-4  # the VAE step: every net and the prior
    lr_supervised: float = 5e-4  # the labelled step

    # The model's own scores (scores.py): images for the class accuracies, pairs for the swap accuracy
    score_rows: int = 10_000
    swap_pairs: int = 1_000
    traversal_steps: int = 10  # columns of traversal.png
    traversal_range: float = 2.0  # each latent swept over [-r, r] around the code of one real image

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # seconds: tests and the smoke studies
        "smoke": dict(_compressed(20), log_every=5, eval_every=10, eval_protocol="fast", final_protocol="fast",
                      batch_size=16, labelled_batch_size=16, n_labelled=200, score_rows=500, swap_pairs=100),
        # under 30 minutes on one CPU core, final dlib evaluation included (docs/parted_vae.md)
        "quick": dict(_compressed(QUICK_STEPS), log_every=50, eval_every=QUICK_STEPS // 2),
        # the authors' dSprites settings (GPU)
        "paper": dict(_compressed(PAPER_STEPS), slope_steps=35_000, log_every=1000, eval_every=30_000),
    }

    def class_factors(self) -> list[str]:
        """``class_factor`` as a list of factor names (one categorical variable each)."""
        return [f.strip() for f in self.class_factor.split(",") if f.strip()]

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__

        def bad(field: str, why: str) -> ConfigError:
            return ConfigError.invalid(name, field, f"{why}, got {getattr(self, field)!r}")

        for field in ("z_dim", "u_dim", "slope_steps", "z_capacity_steps", "u_capacity_steps",
                      "labelled_batch_size", "traversal_steps", "score_rows", "swap_pairs"):
            if getattr(self, field) < 1:
                raise bad(field, "must be >= 1")
        for field in ("temperature", "slope_start", "lr", "lr_supervised", "traversal_range"):
            if not getattr(self, field) > 0:
                raise bad(field, "must be > 0")
        for field in ("gamma_z", "gamma_u", "gamma_c", "gamma_h", "gamma_bc", "tau",
                      "z_capacity_min", "u_capacity_min"):
            if not getattr(self, field) >= 0:
                raise bad(field, "must be >= 0")
        if not self.slope_max >= self.slope_start:
            raise bad("slope_max", f"must be >= slope_start={self.slope_start}")
        for kind in ("z", "u"):
            if not getattr(self, f"{kind}_capacity_max") >= getattr(self, f"{kind}_capacity_min"):
                raise bad(f"{kind}_capacity_max", f"must be >= {kind}_capacity_min")
        if self.prior not in PRIORS:
            raise bad("prior", f"must be one of {list(PRIORS)}")
        self._validate_against_dataset(name, bad)

    def _validate_against_dataset(self, name: str, bad) -> None:
        from ...data import dataset_factors  # late: the data package imports torch

        names, sizes = dataset_factors(self.dataset)
        wanted = self.class_factors()
        if not wanted:
            raise bad("class_factor", "must name at least one factor")
        unknown = [f for f in wanted if f not in names]
        if unknown:
            raise bad("class_factor", f"dataset {self.dataset!r} has no factor {unknown[0]!r} (its factors: {list(names)})")
        if len(set(wanted)) != len(wanted):
            raise bad("class_factor", "names a factor twice")
        total = math.prod(sizes)
        if not 0 <= self.n_labelled <= total:
            raise bad("n_labelled", f"must be between 0 and the {total:,} images of {self.dataset!r}")
