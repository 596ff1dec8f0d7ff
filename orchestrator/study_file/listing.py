"""What a study can name, for ``python -m orchestrator.study --list``: the built-in studies, then
every registered model, dataset and metric with the package that provides it (built-ins and
installed plugins alike, :mod:`did_core.plugins`). Each model is imported to show its summary, so
a plugin that cannot be used is listed with its error.

Example:
    >>> ok = list_everything(print)     # False when a plugin is broken (the command exits 2)
    ablation_dims    Figure 3 of the DiD paper: ...
    ...
    models (entry points did_orchestrator.models):
      did              DiD (Disentanglement in Difference): the registered model ``"did"``.  [did-orchestrator]
"""
from __future__ import annotations

from did_core.data import DATASETS
from did_core.metrics import registry as metric_registry
from did_core.models import MODELS
from did_core.plugins import PluginError

from .reader import StudyError, list_studies, read_study_file


def _studies(out) -> None:
    for name in list_studies():
        try:
            raw, _, _ = read_study_file(name)
        except StudyError:
            raw = {}
        raw = raw if isinstance(raw, dict) else {}
        desc = str(raw.get("description", "")).strip().splitlines()
        presets = sorted({"smoke", "quick", "paper"} | set(raw.get("presets") or {}))
        out(f"{name:<16} {desc[0] if desc else ''}\n{'':<16} presets: {', '.join(presets)}")


def _part(out, registry, describe, get=None) -> bool:
    """One line per registered name: what ``describe(get(name))`` says (``get``: the registry's),
    or the plugin's error."""
    out(f"\n{registry.kind}s (entry points {registry.group}):")
    ok = True
    for name, package in registry.packages().items():
        try:
            what = describe((get or registry.get)(name))
        except PluginError as e:
            what, ok = f"BROKEN: {e}", False
        out(f"  {name:<28} {what}  [{package}]")
    return ok


def list_everything(out=print) -> bool:
    """Print the studies and the registered parts; False when a plugin cannot be used."""
    _studies(out)
    try:
        ok = _part(out, MODELS, lambda spec: spec.summary)
        ok &= _part(out, DATASETS, lambda spec: "sources: " + ", ".join(spec.sources))
        out("  file:PATH                    any .npz / .h5 of images and factor indices (docs/extending.md)")
        ok &= _part(out, metric_registry.METRICS, lambda metrics: "scores: " + ", ".join(
            s for m in metrics for s in m.scores), get=metric_registry.plugin_metrics)
    except PluginError as e:  # two packages declare one name: nothing of that part can be listed
        out(f"error: {e}")
        return False
    return ok
