"""Where a trial writes ``trials/<n>/``, on whichever node it runs.

- A local run folder: the trial's folder in it, written in place. The folder must be the
  driver's (it holds ``meta.json``, which the driver writes before any trial starts); a node that
  does not see it fails the trial at start (:class:`~orchestrator.run_folder.reach.RunFolderUnreachable`)
  instead of writing a folder of its own that nobody reads.
- A run folder at a URI (:mod:`orchestrator.run_folder.remote`): a scratch folder on the trial's node,
  first filled with what an earlier attempt of the same trial left at the URI (a Tune retry);
  :meth:`TrialFolder.sync` uploads it (the checkpoint at each eval, all of it at the end) and
  :meth:`TrialFolder.close` removes the scratch folder.

A re-queued trial (``resumed_from``) starts from its predecessor's checkpoint, read from the run
folder, so from any node.

Example:
    >>> folder = TrialFolder.open(trial, where)      # doctest: +SKIP
    >>> folder.resume_from(trial["resumed_from"]); ...; folder.sync((CHECKPOINT,)); folder.close()
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .reach import RunFolderUnreachable, unreachable
from .layout import META_FILE, TRIALS_DIR, trial_dir
from .remote import CHECKPOINT_NAME, RunStorage


@dataclass
class TrialFolder:
    out: Path  # where the model writes (the trial's folder, or a scratch folder on this node)
    run_dir: Path  # the driver's run folder (its local cache when the run folder is a URI)
    number: int
    remote: RunStorage | None = None
    synced: bool = False  # everything uploaded since the model last wrote
    sent: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (size, mtime) uploaded

    @property
    def rel(self) -> str:
        return f"{TRIALS_DIR}/{self.number}"

    @classmethod
    def open(cls, trial: dict[str, Any], where: dict[str, Any]) -> "TrialFolder":
        """The folder of the trial ``trial`` (its Tune config); :class:`RunFolderUnreachable` when
        this node cannot reach the run folder."""
        run_dir, number = Path(trial["run_dir"]), int(trial["number"])
        if not trial.get("storage"):
            if not (run_dir / META_FILE).is_file():
                raise unreachable(where, str(run_dir), f"no {META_FILE} there on this node (a local folder of "
                                                       "the driver's node that this node does not share)")
            out = trial_dir(run_dir, number)
            out.mkdir(parents=True, exist_ok=True)
            return cls(out, run_dir, number)
        remote = RunStorage(trial["storage"])
        try:
            found = remote.exists(META_FILE)
        except Exception as e:  # pyarrow: OSError (network, credentials), ArrowInvalid
            raise unreachable(where, remote.shown, f"{type(e).__name__}: {e}") from None
        if not found:
            raise unreachable(where, remote.shown, f"no {META_FILE} there (another storage than the driver's?)")
        folder = cls(Path(tempfile.mkdtemp(prefix=f"did-trial-{number}-")), run_dir, number, remote)
        remote.get_dir(folder.rel, folder.out)  # what an earlier attempt of this trial uploaded
        return folder

    def resume_from(self, old: int | None) -> str | None:
        """Put the checkpoint of trial ``old`` (which this one replaces) here, unless one is here;
        returns where it came from (None when there was none to put)."""
        if old is None or (self.out / CHECKPOINT_NAME).exists():
            return None
        rel = f"{TRIALS_DIR}/{old}/{CHECKPOINT_NAME}"
        if self.remote is not None:
            return f"{self.remote.shown}/{rel}" if self.remote.get_file(rel, self.out / CHECKPOINT_NAME) else None
        if (trial_dir(self.run_dir, old) / CHECKPOINT_NAME).exists():
            shutil.copy2(trial_dir(self.run_dir, old) / CHECKPOINT_NAME, self.out / CHECKPOINT_NAME)
            return str(trial_dir(self.run_dir, old) / CHECKPOINT_NAME)
        return None

    def sync(self, only: tuple[str, ...] | None = None) -> None:
        """Upload the folder's files (``only`` these names) to the run folder's URI; nothing for a local one."""
        if self.remote is None:
            return
        changed = {}
        for p in self.out.iterdir():
            if p.is_file() and (only is None or p.name in only):
                st = p.stat()
                if self.sent.get(p.name) != (st.st_size, st.st_mtime_ns):
                    changed[p.name] = (st.st_size, st.st_mtime_ns)
        self.remote.put_dir(self.out, self.rel, tuple(changed))  # only what changed since its last upload
        self.sent.update(changed)
        self.synced = only is None

    def close(self) -> None:
        """Upload everything and remove the scratch folder (a local run folder's is kept, of course)."""
        if self.remote is not None:
            try:
                if not self.synced:
                    self.sync()
            finally:
                shutil.rmtree(self.out, ignore_errors=True)


__all__ = ["TrialFolder", "RunFolderUnreachable"]
