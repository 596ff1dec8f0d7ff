"""Every knob of DiD in one dataclass, with the budget presets.

Defaults the paper does not give are this project's choices, with their reasons in docs/did.md
("DiD defaults and why"); each is a field so that a study can sweep or ablate it.

Example:
    >>> cfg = Config.from_preset("quick", seed=1, n_compare_dims=4)
    >>> cfg.n_compare_dims, cfg.lambda_h
    (4, 1.0)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..base import ConfigError, TrainConfig
from ..forms import Recipe
from .views import VIEWS

MOVES = ("resample", "shift")
PAIRS = ("concat", "diff")
CONTRASTS = ("infonce", "distance")
NORMS = ("none", "batch", "group", "layer")
OUTPUTS = ("sigmoid", "tanh", "none")
ENCODERS = ("separate", "critic_head")
G_ARCHS = ("dcgan", "broadcast")


@dataclass
class Config(TrainConfig):
    model: ClassVar[str] = "did"

    # One name for the method options (did_core/models/forms.py): "paper" is the paper's DiD, every
    # option at its default; "broadcast" is the form that learns on these machines (docs/did.md, "DiD's forms"),
    # with options that are not the paper's: a spatial broadcast G, E inverting G on real images, the
    # noise view, E on the critic's trunk, the search's loss weights, the GAN alone for a quarter of the run.
    form: str = "paper"
    FORMS: ClassVar[dict[str, Recipe]] = {
        "paper": dict(g_arch="dcgan", lambda_rec=0.0, view="raw", encoder="separate", lambda_enc=1.0,
                      lambda_h=1.0, contrast_start=0),
        "broadcast": dict(g_arch="broadcast", lambda_rec=1.0, view="noise", encoder="critic_head", lambda_enc=0.24,
                          lambda_h=1.34, contrast_start=lambda v: v["steps"] // 4),
    }

    # Sample Generation Paradigm
    n_latents: int = 10  # n: latents moved, contrasted and recovered by E (the representation's size)
    n_noise: int = 0  # extra free-noise latents fed to G after them: never moved, not recovered (InfoGAN-CR)
    n_compare_dims: int = 3  # k: latent axes moved per base code (Figure 3 sweeps it)
    move: str = "resample"  # "resample" c_d ~ U(-1, 1), or "shift" by +-U(shift_min, shift_max), clipped
    shift_min: float = 0.5
    shift_max: float = 1.0

    # Difference Encoder H and its contrastive loss L_H
    pair: str = "concat"  # H input: "concat" (x, x') on channels, or "diff" x' - x
    order_pairs: bool = True  # swap pairs so that the moved coordinate always increases from x to x'
    h_head_norm: bool = True  # batch-standardise H's embedding before L2 normalisation (anti-collapse)
    embed_dim: int = 64  # m: size of the L2-normalised difference embedding
    contrast: str = "infonce"  # "infonce" (same moved axis = positive) or "distance" (-||v_i - v_j||^2)
    tau: float = 0.1  # InfoNCE temperature

    # Loss weights in L_G = -D(G(c)) + lambda_h L_H + lambda_enc L_enc, and the critic
    lambda_h: float = 1.0
    lambda_enc: float = 1.0
    lambda_warmup: int = 0  # generator steps over which lambda_h and lambda_enc ramp up linearly from 0
    lambda_gp: float = 10.0
    n_critic: int = 2  # critic steps per generator step
    contrast_start: int = 0  # generator steps of the GAN alone before L_H and L_enc reach G (then the warm-up)

    # Shortcut controls: what H, E and the critic see of G's images, and where E lives
    view: str = "raw"  # H and E see G's images "raw" (the paper), through "binarize" (straight-through) or "noise"
    view_noise: float = 0.1  # std of view="noise"
    critic_view: bool = False  # the critic judges G's images through the same view (so marks it lets pass are real)
    encoder: str = "separate"  # "separate" E, or "critic_head": E a head on the critic's trunk (sees real images)
    lambda_rec: float = 0.0  # E also inverts G on real images: min BCE(G(E(x)), x), G frozen (0 = the paper's form)

    # Optimisers (Adam)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_h: float = 2e-4
    lr_e: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.9

    # Nets (DCGAN-style 4x4 stride-2 stacks sized by the dataset's images)
    width: int = 16  # channels of the first conv layer; the stacks use width x (1, 2, 4, 8)
    g_arch: str = "dcgan"  # G: "dcgan" transposed convolutions, or "broadcast" (spatial broadcast decoder)
    g_norm: str = "batch"  # normalisation inside G; the critic never has one (gradient penalty)
    g_out: str = "sigmoid"  # G's output activation; images are in [0, 1]
    g_upsample: int = 1  # broadcast G only: it draws on a grid this many times coarser than the image, upsampled bilinearly
    traversal_steps: int = 10  # columns of traversal.png (values of each latent from -1 to 1)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # seconds: tests and the demo
        "smoke": dict(steps=20, log_every=5, eval_every=10, eval_protocol="fast", final_protocol="fast",
                      batch_size=8, width=4, embed_dim=16, n_critic=1),
        # under 30 minutes on one CPU core, final dlib evaluation included (docs/did.md)
        "quick": dict(steps=1500, log_every=50, eval_every=500, batch_size=32, width=8,
                      lr_g=5e-4, lr_d=5e-4, lr_h=5e-4, lr_e=5e-4, lambda_warmup=300),
        # GPU, on the order of 10^5 generator steps
        "paper": dict(steps=100_000, log_every=200, eval_every=10_000, width=64, n_critic=5,
                      lr_g=1e-4, lr_d=1e-4, lr_h=1e-4, lr_e=1e-4),
    }

    @property
    def n_code(self) -> int:
        """Size of G's input: the compared latents, then the free noise."""
        return self.n_latents + self.n_noise

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__

        def bad(field: str, why: str) -> ConfigError:
            return ConfigError.invalid(name, field, f"{why}, got {getattr(self, field)!r}")

        for field, choices in (("move", MOVES), ("pair", PAIRS), ("contrast", CONTRASTS),
                               ("g_norm", NORMS), ("g_out", OUTPUTS), ("view", VIEWS), ("encoder", ENCODERS),
                               ("g_arch", G_ARCHS)):
            if getattr(self, field) not in choices:
                raise bad(field, f"must be one of {list(choices)}")
        for field in ("n_latents", "embed_dim", "width", "n_critic", "traversal_steps"):
            if getattr(self, field) < 1:
                raise bad(field, "must be >= 1")
        if self.n_noise < 0:
            raise bad("n_noise", "must be >= 0")
        if not 1 <= self.n_compare_dims <= self.n_latents:
            raise bad("n_compare_dims", f"must be between 1 and n_latents={self.n_latents}")
        if self.g_upsample < 1 or (self.g_upsample > 1 and self.g_arch != "broadcast"):
            raise bad("g_upsample", "must be >= 1, and above 1 only with g_arch='broadcast' (the DCGAN G draws at full size)")
        if self.contrast == "distance" and self.n_compare_dims < 2:
            raise bad("n_compare_dims", "contrast='distance' compares moves of one base code, so it needs >= 2")
        if self.batch_size < 2 and self.contrast == "infonce":
            raise bad("batch_size", "contrast='infonce' needs >= 2 base codes per batch for positives")
        for field in ("lr_g", "lr_d", "lr_h", "lr_e", "tau"):
            if not getattr(self, field) > 0:
                raise bad(field, "must be > 0")
        for field in ("lambda_h", "lambda_enc", "lambda_gp", "lambda_warmup", "contrast_start", "view_noise",
                      "lambda_rec"):
            if getattr(self, field) < 0:
                raise bad(field, "must be >= 0")
        for field in ("beta1", "beta2"):
            if not 0 <= getattr(self, field) < 1:
                raise bad(field, "must be in [0, 1)")
        if not 0 < self.shift_min <= self.shift_max <= 2:
            raise bad("shift_min", f"need 0 < shift_min <= shift_max <= 2 (shift_max={self.shift_max})")
