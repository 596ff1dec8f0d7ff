"""did_core: datasets, the DiD model and trainer, baselines and disentanglement metrics.

Imports and runs without Ray; everything Ray-specific lives in ``orchestrator``.
"""

__version__ = "0.1.0"
