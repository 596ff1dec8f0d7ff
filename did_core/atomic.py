"""Files written whole or not at all: a reader, or a process killed mid-write, never sees half a file.

Example:
    >>> with atomic_path("runs/x/results.csv") as tmp:
    ...     df.to_csv(tmp, index=False)
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (its folder made if missing) to write to; it replaces
    ``path`` when the block ends without an error, and is removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
