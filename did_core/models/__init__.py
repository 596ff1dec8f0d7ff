"""The model registry: a name maps to a :class:`ModelSpec` (config dataclass, ``train`` generator,
optional report sections), from the built-in table or an installed package's entry point in the
group ``did_orchestrator.models`` (:mod:`did_core.plugins`; the contract: :mod:`did_core.models.spec`,
docs/extending.md).

A model's module is imported when its name is first used, so that reading the names is cheap.

Example:
    >>> available_models()                       # built-ins and installed plugins
    ['beta_tcvae', 'beta_vae', 'did', 'factor_vae', 'parted_vae', 'v3']
    >>> spec = get_model("did")
    >>> cfg = spec.config_cls.from_preset("smoke", seed=1)
    >>> events = list(spec.train(cfg, out_dir=None))   # Progress, Eval, ..., Final
"""
from __future__ import annotations

from ..plugins import MODEL_GROUP, PluginError, Registry
from .base import ConfigError, TrainConfig, TrainingDiverged
from .events import Eval, Event, Final, Progress
from .spec import ModelSpec, spec_of_module

# The built-in models, registered like a plugin (pyproject.toml declares the same entry points).
BUILT_IN_MODELS: dict[str, str] = {
    "did": "did_core.models.did",
    "beta_vae": "did_core.models.beta_vae",
    "beta_tcvae": "did_core.models.beta_tcvae",
    "factor_vae": "did_core.models.factor_vae",
    "v3": "did_core.models.v3",
    "parted_vae": "did_core.models.parted_vae",
}
MODELS: Registry[ModelSpec] = Registry(MODEL_GROUP, "model", BUILT_IN_MODELS, check=spec_of_module)


def available_models() -> list[str]:
    """Every registered model name, sorted (a :class:`PluginError` when two packages declare one)."""
    return sorted(MODELS.names())


def get_model(name: str) -> ModelSpec:
    """The model ``name``: :class:`ConfigError` for an unknown name, :class:`PluginError` for a
    plugin that fails to import or breaks the contract."""
    if name not in MODELS.plugins():
        raise ConfigError(f"unknown model {name!r}; registered models are {available_models()}")
    return MODELS.get(name)


__all__ = ["BUILT_IN_MODELS", "ConfigError", "Eval", "Event", "Final", "MODELS", "ModelSpec", "PluginError",
           "Progress", "TrainConfig", "TrainingDiverged", "available_models", "get_model"]
