"""DiD (Disentanglement in Difference): the registered model ``"did"``.

Its report section (``report.py``): the shortcut diagnostics of every trial, with their flags.

Example:
    >>> from did_core.models.did import Config, train
    >>> events = list(train(Config.from_preset("smoke")))
    >>> events[-1].kind
    'final'
"""
from .config import Config
from .report import report_sections
from .selection import load_encoder, load_selection
from .trainer import train

__all__ = ["Config", "load_encoder", "load_selection", "report_sections", "train"]
