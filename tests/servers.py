"""Real servers started by the tests on 127.0.0.1, one of each per test session (the fixtures
``s3_server`` and ``postgres_server`` in conftest.py):

- an S3-compatible store: the ``moto`` package's server mode (``python -m moto.server``), in its
  own process; the AWS variables that pyarrow and boto3 read point at it;
- PostgreSQL: Debian's ``postgresql`` (or any ``initdb``/``pg_ctl`` on PATH or in
  ``/usr/lib/postgresql/<version>/bin``), its own data folder and port, trust auth on 127.0.0.1
  only. PostgreSQL refuses to run as root: then it runs as the ``postgres`` user (Debian's
  package makes it), through ``runuser``.

Example:
    >>> server = start_s3(tmp_path)            # doctest: +SKIP
    >>> server.uri("bucket/prefix")
    's3://bucket/prefix?endpoint_override=127.0.0.1:PORT&scheme=http'
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
          "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    port: int
    proc: subprocess.Popen

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def uri(self, path: str) -> str:
        return f"s3://{path}?endpoint_override=127.0.0.1:{self.port}&scheme=http"

    def make_bucket(self, name: str) -> None:
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        import boto3

        pages = boto3.client("s3", endpoint_url=self.endpoint).get_paginator("list_objects_v2")
        return [o["Key"] for page in pages.paginate(Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])
                if not o["Key"].endswith("/")]  # pyarrow's folder markers

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_s3(log_dir: Path) -> S3Server:
    """moto's S3 server on a free port of 127.0.0.1; ``os.environ`` gets test credentials (which
    every process started later inherits: Ray's nodes and workers)."""
    os.environ.update(S3_ENV)
    port = free_port()
    log = open(log_dir / "moto.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        assert proc.poll() is None, f"moto's server exited; see {log_dir / 'moto.log'}"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2)
            return S3Server(port, proc)
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise TimeoutError("moto's S3 server did not answer")


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's (newest version), else PATH's."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if debian:
        return Path(debian[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl", path=str(Path(found).parent)) else None


@dataclass
class PostgresServer:
    port: int
    data: Path
    bin: Path
    user: str | None  # the system user the server runs as (None: this one)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *cmd: str, **kw) -> subprocess.CompletedProcess:
        if self.user:
            cmd = ("runuser", "-u", self.user, "--", *cmd)
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)

    pid: int = 0  # the postmaster's

    def stop(self) -> None:
        """``pg_ctl stop``; should that fail (its data folder gone), SIGQUIT to the postmaster."""
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            try:
                os.kill(self.pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass


def start_postgres(folder: Path) -> PostgresServer:
    """A private PostgreSQL server: data folder in ``folder``, a free port, only 127.0.0.1, no TCP
    password (trust) for the superuser ``postgres``."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError("no PostgreSQL (initdb, pg_ctl): install Debian's 'postgresql' (.ci/run does)")
    user = None
    if os.getuid() == 0:  # PostgreSQL refuses root
        user = "postgres"
        subprocess.run(["id", user], check=True, capture_output=True)
    folder.mkdir(parents=True, exist_ok=True)
    data, port = folder / "data", free_port()
    if user:
        shutil.chown(folder, user)
        folder.chmod(0o755)
        for parent in folder.parents:  # the server's user must reach its folder
            if parent.stat().st_mode & 0o001 == 0 and str(parent).startswith(("/tmp/", "/var/tmp/")):
                parent.chmod(parent.stat().st_mode | 0o001)
    server = PostgresServer(port, data, bin_dir, user)
    server._run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off"
    server._run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-o", options,
                "-w", "-t", "60", "start")
    server.pid = int((data / "postmaster.pid").read_text().split()[0])
    return server
