"""The run folder made ready for a session, before the study command writes anything to it:
emptied for ``--fresh`` (only a run folder), refused when it holds a symbolic link, made with its
missing parents, and, when the session is refused before any trial ran, removed again. The
commands that write into an existing run folder (``select``, ``report``, ``--export``) check it
the same way first (:func:`guard_run_folder`).

Example:
    >>> if fresh:
    ...     empty_for_fresh(run_dir)
    >>> refuse_links(run_dir)
    >>> made = make_folder(run_dir)
    >>> ...  # refused: unmake(run_dir, made)
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from .locks import lock_run_folder
from .layout import LOCK_FILE, META_FILE, TRIALS_DIR, links_in, not_a_run_folder
from ..study_file import StudyError


def empty_for_fresh(run_dir: Path) -> None:
    """``--fresh``: empty a run folder; a folder that is not one is refused (``not_a_run_folder``).
    A link in it is removed, never followed."""
    why = not_a_run_folder(run_dir)
    if why:
        raise StudyError(f"--fresh: {why}; not deleting anything")
    if not run_dir.exists():
        return
    with lock_run_folder(run_dir):
        for p in run_dir.iterdir():
            if p.name != LOCK_FILE:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def refuse_links(run_dir: Path, command: str = "the study command", instead: str = "give another --out") -> None:
    """:class:`StudyError` naming the first symbolic link inside ``run_dir``: the command writes
    only files the folder holds itself (``study.yaml``, ``curves.csv``, ``trials/<n>/``, ...)."""
    links = links_in(run_dir) if run_dir.is_dir() else []
    if links:
        raise StudyError(f"{links[0]}: a symbolic link in the run folder ({len(links)} found); {command} "
                         f"writes only files the folder holds itself, never through a link: remove it, or {instead}")


def guard_run_folder(run_dir: Path, command: str) -> None:
    """What every command that writes into an existing run folder checks first (``select``,
    ``report``, its ``--export``): a folder with a ``meta.json`` of its own, and no symbolic link
    in it (:func:`refuse_links`, as the study command refuses one). A :class:`StudyError` otherwise."""
    if not run_dir.is_dir():
        raise StudyError(f"{run_dir}: not a run folder ({'no such folder' if not run_dir.exists() else 'a file'})")
    if not (run_dir / META_FILE).is_file() or (run_dir / META_FILE).is_symlink():
        raise StudyError(f"{run_dir}: not a run folder (no {META_FILE}; expected what `python -m orchestrator.study` "
                         "writes)")
    refuse_links(run_dir, command, "copy the folder without it")


def make_folder(run_dir: Path) -> list[Path]:
    """Make ``run_dir`` and its missing parents; returns those it made, outermost first. A folder
    that cannot be made is a :class:`StudyError`, and leaves none of them behind."""
    made = [p for p in (*reversed(run_dir.parents), run_dir) if not p.exists()]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _remove_empty(made)
        raise StudyError(f"--out {run_dir}: cannot make the run folder ({e.strerror or e})") from None
    return made


def unmake(run_dir: Path, made: list[Path]) -> None:
    """After a refusal: remove the run folder and the parents :func:`make_folder` made for it, when
    it made the run folder and no trial ran in it (nothing computed is lost)."""
    if made and not (run_dir / TRIALS_DIR).exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        _remove_empty(made[:-1])


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty
