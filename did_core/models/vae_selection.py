"""The VAE baselines' selection hook (β-VAE, β-TCVAE, FactorVAE): encoder and decoder read back from a
checkpoint behind :class:`~did_core.models.selection.SelectionModel`; and their encoder hook
(:func:`encoder_hook`, did_core/models/encoder.py): the encoder's mean as a module.

- the representation: the encoder's mean; ``kl``: per dimension, the mean over the images of
  ``KL(q(z|x) || N(0, I)) = 0.5 (mean^2 + exp(logvar) - logvar - 1)`` (disentanglement_lib's UDR);
- the generator: ``z ~ N(0, I)`` over all ``latent_dim`` latents, images ``sigmoid(decoder(z))``.

Example:
    >>> load_selection = selection_hook(Config)            # in beta_vae.py, beta_tcvae.py, factor_vae.py
    >>> view = load_selection("trials/3/checkpoint.pt")
    >>> view.kl(images).shape, view.generator.n_latents
    ((10,), 10)
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .encoder import CodeFunction, restore_encoder_nets
from .selection import SelectionModel, batched, read_checkpoint, restore_nets
from .vae_nets import Decoder, Encoder


class VAEView:
    """A trained VAE as a :class:`~did_core.metrics.model_centrality.GenerativeModel`, with its KL."""

    def __init__(self, encoder: Encoder, decoder: Decoder, latent_dim: int, device: torch.device):
        self.encoder, self.decoder, self.n_latents, self.device = encoder, decoder, latent_dim, device

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.n_latents))

    def sample(self, codes: np.ndarray) -> torch.Tensor:
        return batched(lambda z: torch.sigmoid(self.decoder(z)), codes, self.device, to_numpy=False)

    def encode(self, images) -> np.ndarray:
        return batched(lambda x: self.encoder(x)[0], images, self.device)

    def kl(self, images) -> np.ndarray:
        def per_image(x):
            mean, logvar = self.encoder(x)
            return 0.5 * (mean.square() + logvar.exp() - logvar - 1)

        return batched(per_image, images, self.device).mean(axis=0)


def selection_hook(config_cls: type) -> Callable[..., SelectionModel]:
    """The ``load_selection(checkpoint, device="cpu")`` of a VAE baseline whose Config is ``config_cls``."""

    def load_selection(checkpoint: str | Path, device: str | torch.device = "cpu") -> SelectionModel:
        state, cfg, (channels, _), device = read_checkpoint(config_cls, checkpoint, device)
        nets = restore_nets(state, {"encoder": Encoder(channels, cfg.latent_dim),
                                    "decoder": Decoder(channels, cfg.latent_dim)}, checkpoint, device)
        view = VAEView(nets["encoder"], nets["decoder"], cfg.latent_dim, device)
        return SelectionModel(config=cfg, encode=view.encode, kl=view.kl, generator=view)

    load_selection.__doc__ = f"{config_cls.model}'s nets from a checkpoint, for the label-free scores."
    return load_selection


def encoder_mean(x: torch.Tensor, encoder: Encoder) -> torch.Tensor:
    """The representation the VAE baselines score: the encoder's mean (as ``train_vae``'s ``encode``)."""
    return encoder(x)[0]


def encoder_hook(config_cls: type) -> Callable[..., torch.nn.Module]:
    """The ``load_encoder(checkpoint, device="cpu")`` of a VAE baseline whose Config is ``config_cls``
    (did_core/models/encoder.py): images to the encoder's mean."""

    def load_encoder(checkpoint: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
        _, nets = restore_encoder_nets(config_cls, checkpoint, device,
                                       lambda cfg, shape: {"encoder": Encoder(shape[0], cfg.latent_dim)})
        return CodeFunction(encoder_mean, nets)

    load_encoder.__doc__ = f"{config_cls.model}'s encoder mean from a checkpoint, as its evaluation scored it."
    return load_encoder
