"""One driver at a time: on a run folder, and on an Optuna study in its storage.

The run folder's lock is ``RUN_DIR/.lock``. Two run folders may name one storage (``--storage``);
the lock on the Optuna study ``(storage URL, study name)`` is a file in a private per-user folder
(``$TMPDIR/did-orchestrator-<uid>/``), so it holds between drivers on one machine. Without it a
second driver would mark the first one's running trials as interrupted and its results would be
lost. Both locks are ``flock`` locks: the kernel releases them when the process dies (kill -9).

Example:
    >>> with lock_run_folder(run_dir), lock_storage(url, "ablation_dims-smoke"):
    ...     ...
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .run_folder import LOCK_FILE
from .study_file import StudyError


def _flock(path: Path, busy: str):
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise StudyError(busy) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


@contextmanager
def lock_run_folder(run_dir: Path) -> Iterator[None]:
    f = _flock(run_dir / LOCK_FILE, f"{run_dir}: another process is running this study; wait for it or stop it")
    try:
        yield
    finally:
        f.close()


def storage_key(url: str, study_name: str) -> str:
    """The same key for every spelling of one SQLite file (relative, absolute, through a link)."""
    if url.startswith("sqlite:///"):
        url = "sqlite:///" + str(Path(url.removeprefix("sqlite:///")).resolve())
    return hashlib.sha256(f"{url}\n{study_name}".encode()).hexdigest()[:32]


def lock_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"did-orchestrator-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    if d.is_symlink() or d.stat().st_uid != os.getuid():
        raise StudyError(f"{d}: not a folder of this user; remove it")
    return d


@contextmanager
def lock_storage(url: str, study_name: str) -> Iterator[None]:
    path = lock_dir() / f"{storage_key(url, study_name)}.lock"
    f = _flock(path, f"the Optuna study {study_name!r} in {url} is being run by another process (another "
                     "--out with the same --storage); wait for it or stop it")
    try:
        yield
    finally:
        f.close()
