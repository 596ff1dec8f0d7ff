"""did_core: datasets, the DiD model and trainer, baselines and disentanglement metrics.

Imports and runs without Ray; everything Ray-specific lives in ``orchestrator``.
``did_core.load_encoder(trial_dir)``: a trained trial's encoder as a torch module (did_core/encoders.py).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("load_encoder", "TrialError"):  # imported on first use: ``import did_core`` stays light
        from . import encoders

        return getattr(encoders, name)
    raise AttributeError(f"module 'did_core' has no attribute {name!r}")
