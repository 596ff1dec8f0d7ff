"""The encoder hook of a model: its trained encoder read back from a checkpoint, as a module.

A model module may define ``load_encoder(checkpoint, device="cpu") -> torch.nn.Module``;
``did_core.models.get_model(name).encoder`` is that hook (None for a model without one) and
:func:`did_core.load_encoder` (did_core/encoders.py) reaches every model through it. The module
it returns maps images ``[n, C, S, S]`` (float in [0, 1], on ``device``, as the model's dataset
yields them) to codes ``[n, d]``: exactly the ``encode`` the model's ``train`` gives
``run.evaluate`` / ``run.final``, in inference mode. Build the nets as ``train`` built them
(:func:`restore_encoder_nets`: weights channels-last where ``train`` used ``run.prepare``) so that
the codes equal the scored ones to the bit; :class:`CodeFunction` turns a function of the nets
into the module.

Example:
    >>> def load_encoder(checkpoint, device="cpu"):           # in my_pkg/model.py
    ...     cfg, nets = restore_encoder_nets(Config, checkpoint, device,
    ...                                      lambda cfg, shape: {"encoder": build_encoder(cfg, shape)})
    ...     return nets["encoder"]                          # or CodeFunction(lambda x, encoder: encoder(x)[0], nets)
    >>> get_model("my_vae").encoder("trials/3/checkpoint.pt")(images).shape
    torch.Size([8, 10])
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .base import TrainConfig
from .selection import read_checkpoint, restore_nets

# (config, (num_channels, image_size)) -> the named nets the encoder needs, freshly built
BuildNets = Callable[[TrainConfig, tuple[int, int]], dict[str, nn.Module]]


def restore_encoder_nets(config_cls: type[TrainConfig], checkpoint: str | Path, device: str | torch.device,
                         build: BuildNets, channels_last: bool = True) -> tuple[TrainConfig, dict[str, nn.Module]]:
    """``(config, nets)``: the nets ``build`` makes from the checkpoint's config, with the checkpoint's
    weights, on ``device``, in inference mode. ``channels_last``: 4-D weights in channels-last
    layout, as ``Run.prepare`` puts them (the trial's scores came from nets in that layout). A net
    the checkpoint lacks or that does not fit is a :class:`~did_core.checkpoint.CheckpointError`
    naming the file (``weights_only`` loading, did_core/checkpoint.py)."""
    state, cfg, shape, device = read_checkpoint(config_cls, checkpoint, device)
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave torch's RNG as it was
        nets = build(cfg, shape)
    if channels_last:
        nets = {name: net.to(memory_format=torch.channels_last) for name, net in nets.items()}
    return cfg, restore_nets(state, nets, checkpoint, device)


class CodeFunction(nn.Module):
    """``fn(x, **nets)`` as a module that holds ``nets`` (their parameters, ``.to``, ``.eval``)."""

    def __init__(self, fn: Callable[..., torch.Tensor], nets: dict[str, nn.Module]):
        super().__init__()
        self.fn = fn
        self.nets = nn.ModuleDict(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, **self.nets)
