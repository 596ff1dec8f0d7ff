"""A metric that exists only for tests/test_metric_registry.py: one module, one registration."""
from __future__ import annotations

import numpy as np

from did_core.metrics.registry import CODES, Metric, metric_names, register

SPREAD = Metric("code_spread", {"code_spread": "minimize"}, CODES,
                compute=lambda z, y, zt, yt, protocol, seed: {"code_spread": float(np.std(z))})


def load() -> None:
    """Register the metric (once per process; Ray's workers call this as their setup hook)."""
    if SPREAD.name not in metric_names():
        register(SPREAD)
