"""DiD (Disentanglement in Difference): the registered model ``"did"``.

Example:
    >>> from did_core.models.did import Config, train
    >>> events = list(train(Config.from_preset("smoke")))
    >>> events[-1].kind
    'final'
"""
from .config import Config
from .selection import load_selection
from .trainer import train

__all__ = ["Config", "load_selection", "train"]
