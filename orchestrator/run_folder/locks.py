"""One driver at a time: on a run folder, and on an Optuna study in its storage.

The run folder's lock is ``RUN_DIR/.lock``. Two run folders may name one storage (``--storage``);
the lock on the Optuna study ``(storage URL, study name)`` is a file in a private per-user folder
(``$TMPDIR/did-orchestrator-<uid>/``), so it holds between drivers on one machine. Without it a
second driver would mark the first one's running trials as interrupted and its results would be
lost. Both locks are ``flock`` locks: the kernel releases them when the process dies (kill -9).
A lock file is opened without following a symbolic link (one left in a run folder could point
anywhere), and the storage's lock file is removed when it is released (it names one of many
storages; the run folder's ``.lock`` stays, a mark of a run folder).

Example:
    >>> with lock_run_folder(run_dir), lock_storage(url, "ablation_dims-smoke"):
    ...     ...
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .layout import LOCK_FILE
from ..study_file import StudyError


def _flock(path: Path, busy: str):
    """The open lock file ``path``, locked; :class:`StudyError` ``busy`` when another process holds it.
    A file removed by its holder's release (:func:`_release`) between our open and our lock is
    opened anew, so two processes never hold locks on two files of one name."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as e:
            why = "a symbolic link; remove it" if path.is_symlink() else (e.strerror or str(e))
            raise StudyError(f"{path}: cannot open the lock file ({why})") from None
        f = os.fdopen(fd, "r+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise StudyError(busy) from None
        try:
            same = os.path.samestat(os.fstat(f.fileno()), os.stat(path, follow_symlinks=False))
        except FileNotFoundError:
            same = False
        if same:
            break
        f.close()
    try:
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
    except OSError as e:  # a full disk: name the file
        with contextlib.suppress(OSError):
            f.close()  # closes the file even when flushing it fails again
        raise OSError(e.errno, e.strerror, str(path)) from None
    return f


def _release(f, path: Path | None = None) -> None:
    """Unlock; with ``path``, remove the lock file first (while still holding it)."""
    if path is not None:
        path.unlink(missing_ok=True)
    f.close()


@contextmanager
def lock_run_folder(run_dir: Path) -> Iterator[None]:
    f = _flock(run_dir / LOCK_FILE, f"{run_dir}: another process is running this study; wait for it or stop it")
    try:
        yield
    finally:
        _release(f)


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
        _release(f, path)  # lock files of every storage ever run would pile up in the temp folder
