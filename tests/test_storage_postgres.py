"""The Optuna storage on a real PostgreSQL server (started by the test on 127.0.0.1, its own data
folder and port; tests/servers.py): a study whose driver is killed (SIGKILL) and run again ends
with every planned trial exactly once; a second study shares the database; optuna-dashboard
opens it."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pandas as pd
import yaml

from servers import free_port
from test_orchestrator_interrupt import kill_after_finished_rows, stop_group

ROOT = Path(__file__).resolve().parent.parent
DRIVER = """
import sys
from orchestrator.study import run_study
from toy import TOY
run = run_study(sys.argv[1], out=sys.argv[2], storage=sys.argv[3], model=TOY, report=False)
sys.exit(1 if run.interrupted else 0)
"""


def _driver(tmp_path: Path, study: Path, out: Path, url: str) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    log = open(tmp_path / f"driver-{time.time():.0f}.log", "w")
    return subprocess.Popen([sys.executable, str(script), str(study), str(out), url], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _study(tmp_path: Path, name: str, high: int) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "model": "toy", "objectives": [{"metric": "mig"}],
        "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": high}}},
        "seeds": 2, "fixed": {"steps": 6, "log_every": 1, "eval_every": 2, "sleep_s": 0.4},
    }))
    return path


def test_killed_driver_on_postgres_then_a_second_study_in_the_same_database(postgres_server, tmp_path):
    url = postgres_server.url()
    study, out = _study(tmp_path, "pg_first", 3), tmp_path / "first"
    first = _driver(tmp_path, study, out, url)
    kill_after_finished_rows(first, out)
    before = pd.read_csv(out / "results.csv")
    assert 2 <= len(before) < 6

    second = _driver(tmp_path, study, out, url)
    try:
        assert second.wait(timeout=300) == 0
    finally:
        stop_group(second)
    df = pd.read_csv(out / "results.csv")
    assert sorted(zip(df["params_n"], df["seed"])) == [(n, s) for n in (1, 2, 3) for s in (0, 1)]
    assert (df["status"] == "COMPLETE").all()
    kept = df.set_index("trial").loc[before["trial"]]
    assert list(kept["mig"]) == list(before["mig"])  # finished before the kill: kept, not rerun
    trials = optuna.load_study(study_name="pg_first-smoke", storage=url).trials
    interrupted = [t.number for t in trials if t.user_attrs.get("interrupted")]
    assert interrupted and len(trials) == 6 + len(interrupted)
    assert json.loads((out / "meta.json").read_text())["storage"] == url

    # a second study in the same database, from another run folder: the first one is untouched
    other = _driver(tmp_path, _study(tmp_path, "pg_second", 2), tmp_path / "second", url)
    try:
        assert other.wait(timeout=300) == 0
    finally:
        stop_group(other)
    assert {"pg_first-smoke", "pg_second-smoke"} <= set(optuna.get_all_study_names(url))
    assert len(pd.read_csv(tmp_path / "second" / "results.csv")) == 4
    assert len(optuna.load_study(study_name="pg_first-smoke", storage=url).trials) == len(trials)

    # optuna-dashboard opens the database and lists both studies
    port = free_port()
    dashboard = subprocess.Popen([str(Path(sys.executable).parent / "optuna-dashboard"), url, "--host", "127.0.0.1",
                                  "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        names = _study_names(port)
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=10)
    assert {"pg_first-smoke", "pg_second-smoke"} <= names


def _study_names(port: int, timeout: float = 60) -> set[str]:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                return {s["study_name"] for s in json.loads(r.read())["study_summaries"]}
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
