"""A run folder at a URI: storage that every node of a Ray cluster reaches.

``--out`` names a local path (unchanged: the run folder is that folder) or a URI of any filesystem
pyarrow opens and Ray Tune accepts (``s3://bucket/prefix``, ``gs://bucket/prefix``, ...). With a
URI the run folder *is* the URI, and the driver keeps a local copy (its cache, default
``runs/cache/<scheme>/<bucket>/<prefix>``, or ``--cache DIR``) that holds its lock, its SQLite
Optuna storage (unless ``--storage`` names another) and what the report is built from:

- each trial writes ``trials/<n>/`` into a scratch folder on its own node and uploads it to the
  URI: its checkpoint at every eval (before the eval reaches the driver), everything at the end;
  a trial resumed on another node downloads its predecessor's checkpoint from there;
- Ray Tune's own files (``ray/``: experiment state, Tune checkpoints of retried trials) go to
  ``URI/ray`` through ``storage_filesystem``;
- the driver downloads the trials' files (checkpoints left out) into its cache before it builds the
  tables and the report, then uploads ``study.yaml``, ``meta.json``, ``optuna.db``, the tables and
  ``report.html``; a cache without ``meta.json`` (another machine, a deleted cache) is first filled
  from the URI, so a rerun from anywhere continues the study.

Credentials and endpoint: pyarrow's usual sources (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
``~/.aws``, an instance role; ``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3``), or options in the URI
as pyarrow reads them: ``s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http`` for MinIO
and other S3-compatible stores. Every node needs the credentials (Ray Tune also ships its pickled
filesystem to the trials).

Example:
    >>> remote = RunStorage.parse("s3://bucket/studies/dims?endpoint_override=127.0.0.1:9000&scheme=http")
    >>> remote.base, remote.default_cache()
    ('bucket/studies/dims', PosixPath('runs/cache/s3/bucket/studies/dims'))
    >>> remote.put_file(Path("runs/x/meta.json"), "meta.json")          # doctest: +SKIP
"""
from __future__ import annotations

import functools
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .layout import (CURVES_FILE, ERROR_FILE, LOOKS_FILE, META_FILE, OPTUNA_DB, RAY_DIR, REPORT_FILE, RESULTS_FILE,
                     RUN_ENTRIES, SELECTION_FILE, STUDY_FILE, TRIALS_DIR)
from ..study_file import StudyError

# what the driver uploads after a session, and downloads into an empty cache
DRIVER_FILES = (STUDY_FILE, META_FILE, OPTUNA_DB, RESULTS_FILE, CURVES_FILE, LOOKS_FILE, REPORT_FILE, SELECTION_FILE)
PARALLEL = 8  # requests at a time when a folder goes up or comes down
CHECKPOINT_NAME = "checkpoint.pt"  # did_core.training.CHECKPOINT (not imported: no torch on the driver's path)


def is_uri(out: str | os.PathLike | None) -> bool:
    return isinstance(out, str) and "://" in out and not out.startswith("file://")


@functools.lru_cache(maxsize=8)
def _filesystem(uri: str):
    """pyarrow's filesystem of a URI and the path in it (one per process and URI)."""
    import pyarrow.fs as pafs

    uri = _with_endpoint_from_env(uri)
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/")


def _with_endpoint_from_env(uri: str) -> str:
    """``s3://`` without ``endpoint_override``: the endpoint of ``AWS_ENDPOINT_URL_S3`` or
    ``AWS_ENDPOINT_URL`` (the AWS SDKs' variables), as pyarrow's URI options."""
    parts = urlsplit(uri)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if parts.scheme != "s3" or not endpoint or "endpoint_override=" in parts.query:
        return uri
    ep = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    extra = f"endpoint_override={ep.netloc}&scheme={ep.scheme}"
    return f"{uri}{'&' if parts.query else '?'}{extra}"


def _each(fn, items: list) -> list:
    """``fn`` of every item, a few at a time (object stores answer requests in parallel)."""
    if len(items) < 2:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(items))) as pool:
        return list(pool.map(fn, items))


@dataclass(frozen=True)
class RunStorage:
    """A run folder at ``uri``; paths below it are relative, ``/``-separated (``trials/3/scores.json``)."""

    uri: str

    @classmethod
    def parse(cls, out: str | os.PathLike | None) -> "RunStorage | None":
        """The storage of an ``--out`` URI; None for a local path. A URI pyarrow cannot open is refused."""
        if not is_uri(out):
            return None
        remote = cls(str(out).rstrip("/"))
        try:
            remote.filesystem
        except Exception as e:  # pyarrow raises ValueError, ArrowInvalid, ArrowNotImplementedError, OSError
            raise StudyError(f"--out {out}: not a storage URI pyarrow can open ({type(e).__name__}: {e})") from None
        if not remote.base or "/" not in remote.base:
            raise StudyError(f"--out {out}: name a folder in the bucket (scheme://bucket/prefix), not a bucket alone")
        return remote

    @property
    def filesystem(self):
        return _filesystem(self.uri)[0]

    @property
    def base(self) -> str:
        return _filesystem(self.uri)[1]

    @property
    def shown(self) -> str:
        """The URI without its options (no endpoint or key in what the command prints)."""
        return self.uri.split("?", 1)[0]

    def default_cache(self) -> Path:
        return Path("runs") / "cache" / urlsplit(self.uri).scheme / self.base

    def path(self, rel: str = "") -> str:
        return f"{self.base}/{rel}".rstrip("/") if rel else self.base

    def tune_storage(self) -> dict:
        """Ray Tune's ``RunConfig`` arguments for its own files, under ``URI/ray``."""
        return {"storage_path": self.path(RAY_DIR), "storage_filesystem": self.filesystem}

    # ---- files -------------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        import pyarrow.fs as pafs

        return self.filesystem.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def put_file(self, local: Path, rel: str) -> None:
        with open(local, "rb") as src, self.filesystem.open_output_stream(self.path(rel)) as dst:
            dst.write(src.read())

    def get_file(self, rel: str, local: Path) -> bool:
        """Download ``rel`` to ``local`` (whole or not at all); False when there is none."""
        if not self.exists(rel):
            return False
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(local.name + ".tmp")
        with self.filesystem.open_input_stream(self.path(rel)) as src:
            tmp.write_bytes(src.read())
        os.replace(tmp, local)
        return True

    def files(self, rel: str) -> list[str]:
        """Every file below ``rel``, relative to the run folder."""
        import pyarrow.fs as pafs

        infos = self.filesystem.get_file_info(pafs.FileSelector(self.path(rel), recursive=True, allow_not_found=True))
        return sorted(i.path[len(self.base) + 1:] for i in infos if i.type == pafs.FileType.File)

    def put_dir(self, local: Path, rel: str, only: tuple[str, ...] | None = None) -> None:
        """Upload the files of ``local`` (not its temp files) to ``rel``, several at a time; ``only``:
        just these names."""
        files = [p for p in sorted(local.iterdir())
                 if p.is_file() and not p.name.endswith(".tmp") and (only is None or p.name in only)]
        _each(lambda p: self.put_file(p, f"{rel}/{p.name}"), files)

    def get_dir(self, rel: str, local: Path, skip: tuple[str, ...] = ()) -> int:
        """Download every file below ``rel`` into ``local`` but those named in ``skip``, several at
        a time; how many."""
        todo = []
        for f in self.files(rel):
            name = f[len(rel) + 1:]
            if any(part in ("", ".", "..") for part in name.split("/")):  # never a path out of ``local``
                raise StudyError(f"{self.shown}: refusing the object {f!r} (a path out of the run folder)")
            if name.rsplit("/", 1)[-1] not in skip:
                todo.append((f, local / name))
        return sum(_each(lambda job: self.get_file(*job), todo))

    # ---- the driver's side -------------------------------------------------------------------
    def check(self) -> None:
        """Write, read and delete a probe object: one clear error when the storage is out of reach."""
        rel = f".reach-{uuid.uuid4().hex}.tmp"
        try:
            with self.filesystem.open_output_stream(self.path(rel)) as f:
                f.write(b"ok")
            self.filesystem.delete_file(self.path(rel))
        except Exception as e:
            raise StudyError(f"--out {self.shown}: cannot write to it ({type(e).__name__}: {e}); check the "
                             "bucket, the endpoint and the credentials (AWS_ACCESS_KEY_ID, ...)") from None

    def open(self, cache: Path, fresh: bool, log=print) -> None:
        """At the start of a session: reachable; emptied for ``--fresh``, else its files copied
        into an empty cache."""
        self.check()
        if fresh:
            self.clear()
        elif self.pull_run(cache):
            log(f"run folder {self.shown}: its files copied into the local cache {cache}")

    def pull_run(self, cache: Path) -> bool:
        """Fill a cache that has no ``meta.json`` from the URI (its run files and trials, checkpoints
        left out); False when the URI holds no run folder yet."""
        if (cache / META_FILE).exists() or not self.exists(META_FILE):
            return False
        for name in DRIVER_FILES:
            self.get_file(name, cache / name)
        self.pull_trials(cache)
        return True

    def pull_trials(self, cache: Path) -> int:
        """Download the trials' files (not their checkpoints) for the tables and the report."""
        return self.get_dir(TRIALS_DIR, cache / TRIALS_DIR, skip=(CHECKPOINT_NAME,))

    def push_run(self, cache: Path) -> None:
        """Upload the driver's files (the study, meta.json, the SQLite storage, tables, report, the
        tracebacks it wrote for trials whose process died)."""
        for name in DRIVER_FILES:
            if (cache / name).is_file():
                self.put_file(cache / name, name)
        # the traceback of a trial whose process died, which the driver wrote (the trial could not)
        for error in sorted((cache / TRIALS_DIR).glob(f"*/{ERROR_FILE}")):
            rel = f"{TRIALS_DIR}/{error.parent.name}/{ERROR_FILE}"
            if not self.exists(rel):
                self.put_file(error, rel)

    def clear(self) -> None:
        """``--fresh``: delete a run folder at the URI; anything a run folder does not hold is refused."""
        import pyarrow.fs as pafs

        infos = self.filesystem.get_file_info(pafs.FileSelector(self.base, recursive=False, allow_not_found=True))
        names = {i.path.rsplit("/", 1)[-1] for i in infos}
        foreign = sorted(n for n in names if n not in RUN_ENTRIES and not n.endswith(".tmp"))
        if foreign:
            raise StudyError(f"--fresh: {self.shown} holds what a run folder does not ({', '.join(foreign[:5])}); "
                             "not deleting anything")
        for i in infos:
            if i.type == pafs.FileType.Directory:
                self.filesystem.delete_dir(i.path)
            else:
                self.filesystem.delete_file(i.path)
