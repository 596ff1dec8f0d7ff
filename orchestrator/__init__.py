"""Ray Tune + Optuna around the models of ``did_core``: study files, search, results.

Example:
    >>> from orchestrator import run_study
    >>> run = run_study("ablation_dims", preset="smoke")       # doctest: +SKIP
    >>> run.best.head()                                          # doctest: +SKIP
    >>> from orchestrator import open_run
    >>> open_run(run.run_dir).figures                            # doctest: +SKIP

Imports are lazy so that ``python -m orchestrator.report`` does not pay for Ray.
"""
from __future__ import annotations

__all__ = ["StudyError", "load_study", "run_study", "list_studies", "load_results", "load_curves",
           "open_run"]


def __getattr__(name: str):
    if name in ("StudyError", "list_studies"):
        from . import study_file

        return getattr(study_file, name)
    if name == "load_study":
        from .study_file.resolve import load_study

        return load_study
    if name == "run_study":
        from .study import run_study

        return run_study
    if name in ("load_results", "load_curves"):
        from .run_folder import tables

        return getattr(tables, name)
    if name == "open_run":  # a run folder for a notebook (orchestrator/notebook.py)
        from .notebook import open_run

        return open_run
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
