"""Issue 44, point 11: the study command and the terminal. A stdout closed by its reader
(``| head -1``) ends the output quietly while the study runs to its end; two Ctrl-C in quick
succession, in a real terminal (a pseudo-terminal here), leave the cursor shown. Both run the
study CLI (tests/toy_cli.py) on the toy model, in a Ray local cluster of its own."""
from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from test_adversarial import STUDY

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
HIDE, SHOW = b"\x1b[?25l", b"\x1b[?25h"


def study_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "term.yaml"
    path.write_text(yaml.safe_dump({**STUDY, "name": "term", **changes}, sort_keys=False))
    return path


def test_a_closed_stdout_ends_the_output_quietly_and_the_study_finishes(tmp_path):
    study = study_file(tmp_path)
    run = tmp_path / "run"
    command = (f"{sys.executable} {TESTS / 'toy_cli.py'} {study} --out {run} --no-select 2> {tmp_path / 'err'} "
               f"| head -1; echo \"exit=${{PIPESTATUS[0]}}\"")
    p = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300, cwd=ROOT)
    lines = p.stdout.splitlines()
    err = (tmp_path / "err").read_text()
    assert len(lines) == 2 and lines[0].startswith("study 'term'"), p.stdout
    assert "Traceback" not in err and "BrokenPipeError" not in err, err[-3000:]
    assert lines[1] == "exit=0", err[-3000:]
    results = pd.read_csv(run / "results.csv")
    assert list(results["status"]) == ["COMPLETE", "COMPLETE"]  # the study went on to its end
    assert (run / "report.html").is_file()


def test_two_ctrl_c_in_quick_succession_leave_the_cursor_shown(tmp_path):
    study = study_file(tmp_path, fixed={"sleep_s": 3.0}, max_concurrent=1)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the study command, in the pseudo-terminal's session
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, str(TESTS / "toy_cli.py"), str(study), "--out",
                                  str(tmp_path / "run"), "--no-select"])
    out = b""

    def read(seconds: float) -> None:
        nonlocal out
        end = time.time() + seconds
        while time.time() < end:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    out += os.read(fd, 65536)
                except OSError:  # the child closed the terminal
                    return

    try:
        deadline = time.time() + 240
        while HIDE not in out and time.time() < deadline:
            read(1)
        assert HIDE in out, out[-3000:]
        read(2)  # a trial running
        os.write(fd, b"\x03")  # Ctrl-C, twice, as a terminal sends it: to the foreground process group
        time.sleep(0.15)
        os.write(fd, b"\x03")
        deadline = time.time() + 120
        while time.time() < deadline:
            read(1)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        else:
            raise AssertionError(f"the study did not end after two Ctrl-C: {out[-3000:]!r}")
        read(1)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    assert out.rfind(SHOW) > out.rfind(HIDE), out[-3000:]
