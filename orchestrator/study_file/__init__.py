"""The study file and its plan: reading ``studies/*.yaml`` (reader), its schema, resolving it for a
preset (resolve, checks) into the :class:`~orchestrator.study_file.plan.Study` that runs, its objectives,
and the listing of what there is to run. The bottom room: it imports nothing of ``orchestrator``.

``StudyError``, ``list_studies`` and ``load_study`` are the folder's public names; ``load_study`` is
imported when first asked for (it brings in the models' registry).
"""
from __future__ import annotations

from .reader import StudyError, list_studies

__all__ = ["StudyError", "list_studies", "load_study"]


def __getattr__(name: str):
    if name == "load_study":
        from .resolve import load_study

        return load_study
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
