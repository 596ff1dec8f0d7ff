"""A full disk: one error naming the file, wherever in the study it happens.

A write that fails for want of space (``OSError`` ENOSPC / EDQUOT, or SQLite's "database or disk
is full") stops the study: the trials that were running stay unfinished in the Optuna storage,
and the next run, once space is freed, queues them again. Files are written whole or not at all
(:mod:`did_core.atomic`), so nothing half-written is left to trip that run.

Example:
    >>> try:
    ...     write_results(run_dir, ostudy)
    ... except Exception as e:
    ...     if (full := no_space(e)) is not None:
    ...         raise full from None
    ...     raise
"""
from __future__ import annotations

from did_core.atomic import NO_SPACE

from ..study_file import StudyError

SQLITE_FULL = "database or disk is full"


class NoSpace(StudyError):
    """The disk filled while the study wrote ``path``; the message says so and what to do."""

    def __init__(self, path: str):
        self.path = path
        super().__init__(f"{path}: no space left on device; free some space and run the same command again "
                         "(finished trials are kept, unfinished ones run again)")


def no_space(error: BaseException | None, where: str = "the run folder") -> NoSpace | None:
    """The :class:`NoSpace` behind ``error`` (itself, its cause or its context, at any depth: Ray
    Tune and SQLAlchemy wrap what they catch), or None when it is not a full disk. ``where`` names
    the place when the error names no file (SQLite's does not)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, NoSpace):
            return error
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            return NoSpace(error.filename or where)
        if SQLITE_FULL in str(getattr(error, "orig", None) or "") or (
                type(error).__name__ == "OperationalError" and SQLITE_FULL in str(error)):
            return NoSpace(where)
        error = error.__cause__ or error.__context__ or getattr(error, "cause", None)
    return None
