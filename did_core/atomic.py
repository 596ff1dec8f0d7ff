"""Files written whole or not at all: a reader, or a process killed mid-write, never sees half a file.

The temporary file is made anew (a file or a link already at its name is removed first), so a
write never goes through a symbolic link someone left there. A write that fails for want of space
(``ENOSPC``, ``EDQUOT``) raises ``OSError`` naming the file it was for, and leaves nothing behind.

Example:
    >>> with atomic_path("runs/x/results.csv") as tmp:
    ...     df.to_csv(tmp, index=False)
"""
from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_replace = os.replace  # the step that makes the new file visible


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (its folder made if missing) to write to; it replaces
    ``path`` when the block ends without an error, and is removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)  # never write through a link (or into a file) left at that name
        yield tmp
        _replace(tmp, path)
    except OSError as e:
        if e.errno in NO_SPACE and not e.filename:  # a failed write names no file: name the one it was for
            raise OSError(e.errno, os.strerror(e.errno), str(path)) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)
