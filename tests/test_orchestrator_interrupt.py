"""A study whose process is killed (SIGKILL) part way, then run again, ends with every planned
trial exactly once and COMPLETE; the trials the kill cut short are resumed from their checkpoint."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent

DRIVER = """
import sys
from orchestrator.study import run_study
from toy import TOY
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else None
run = run_study(sys.argv[1], out=sys.argv[2], model=TOY, report=False, rounds=rounds)
sys.exit(1 if run.interrupted else 0)
"""


def start(tmp_path, study, out, *args: str):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    log = open(tmp_path / f"driver-{time.time():.0f}.log", "w")
    return subprocess.Popen([sys.executable, str(script), str(study), str(out), *args], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def finished_rows(out: Path) -> int:
    try:
        return len(pd.read_csv(out / "results.csv"))
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return 0


def stop_group(proc):
    """Kill what is left of the process group this test started (Ray's own reaper normally has)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_after_finished_rows(driver: subprocess.Popen, out: Path, n: int = 2, timeout: float = 240) -> None:
    """SIGKILL the study driver once ``n`` trials are in its results table (then its process group)."""
    try:
        deadline = time.time() + timeout
        while finished_rows(out) < n and driver.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert driver.poll() is None, "the study ended before it could be interrupted"
        assert finished_rows(out) >= n
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        stop_group(driver)


def rerun_to_the_end(tmp_path, study, out, timeout: float = 300) -> None:
    """Run the killed study again: it must finish (exit 0)."""
    second = start(tmp_path, study, out)
    try:
        assert second.wait(timeout=timeout) == 0
    finally:
        stop_group(second)


def test_killed_study_continues_without_repeating_trials(tmp_path):
    study = tmp_path / "interrupted.yaml"
    study.write_text(yaml.safe_dump({
        "name": "interrupted", "model": "toy", "objectives": [{"metric": "mig"}],
        "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 3}}},
        "seeds": 2, "fixed": {"steps": 8, "log_every": 1, "eval_every": 2, "sleep_s": 0.4},
    }))
    out = tmp_path / "run"
    first = start(tmp_path, study, out)
    kill_after_finished_rows(first, out)
    before = pd.read_csv(out / "results.csv")
    assert 2 <= len(before) < 6

    rerun_to_the_end(tmp_path, study, out)

    df = pd.read_csv(out / "results.csv")
    assert len(df) == 6
    assert sorted(zip(df["params_n"], df["seed"])) == [(n, s) for n in (1, 2, 3) for s in (0, 1)]
    assert (df["status"] == "COMPLETE").all()
    # what finished before the kill was kept, not run again
    kept = df.set_index("trial").loc[before["trial"]]
    assert list(kept["mig"]) == list(before["mig"])

    storage = f"sqlite:///{out / 'optuna.db'}"
    trials = optuna.load_study(study_name="interrupted-smoke", storage=storage).trials
    interrupted = [t.number for t in trials if t.user_attrs.get("interrupted")]
    assert interrupted, "the kill left no trial RUNNING"
    assert all(t.state.name == "FAIL" for t in trials if t.number in interrupted)
    assert len(trials) == 6 + len(interrupted)
    assert set(df["resumed_from"].dropna().astype(int)) == set(interrupted)
    # a re-queued trial continued from the checkpoint its interrupted attempt left
    curves = pd.read_csv(out / "curves.csv")
    resumed = df.dropna(subset=["resumed_from"])
    starts = [curves[(curves["trial"] == t) & (curves["name"] == "loss/resumed_at")]["value"].min()
              for t in resumed["trial"]]
    old_evals = [curves[(curves["trial"] == int(r)) & (curves["name"] == "fast/mig")]["step"].max()
                 for r in resumed["resumed_from"]]
    for began, evaluated in zip(starts, old_evals):
        # from its last checkpoint (written at each eval, just before the eval reached the driver)
        assert began % 2 == 0 and began >= (0 if pd.isna(evaluated) else evaluated)
