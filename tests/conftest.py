"""Test support shared by every test file.

- The toy model (tests/toy.py) must import in Ray's worker processes too, which inherit this
  environment but not pytest's sys.path.
- Run folders written by ``run_study`` itself with the toy model, built once per test session
  and shared by the report's tests (which must not change them): an ablation, a search, and a
  study whose every trial fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

TESTS = Path(__file__).resolve().parent
# Ray reads its auth mode once per process, when it is first imported: a test that joins a cluster
# started by `ray start` (token auth) must find it set before any test file imports ray. Ray 2.60's
# own default for a local ray.init() is the same, so the other tests see no change.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent), *filter(None, [os.environ.get("PYTHONPATH")])])

# x = 0.3 scores best (toy mig = 1 - (x - 0.3)^2 - ...); the trial x = 0.9, seed 1 diverges
TOY_ABLATION = {
    "name": "toy_ablation", "description": "x against the toy model's scores", "model": "toy",
    "fixed": {"fail_x": 0.9, "fail_seed": 1},
    "search": {"sampler": "grid", "space": {"x": {"type": "float", "low": 0.0, "high": 1.0,
                                                  "values": [0.3, 0.5, 0.7, 0.9]}}},
    "seeds": 3, "objectives": [{"metric": "mig", "direction": "maximize"}],
    "resources": {"cpus": 1, "gpus": 0}, "max_concurrent": 2,
}
TOY_SEARCH = {
    "name": "toy_search", "model": "toy",
    "search": {"sampler": "tpe", "n_trials": 14, "seed": 3, "space": {
        "x": {"type": "float", "low": 0.0, "high": 1.0}, "n": {"type": "int", "low": 1, "high": 4},
        "mode": {"type": "categorical", "choices": ["a", "b"]}}},
    "seeds": 1, "objectives": [{"metric": "mig", "direction": "maximize"},
                               {"metric": "dci_disentanglement", "direction": "minimize"}],
    "resources": {"cpus": 1, "gpus": 0}, "max_concurrent": 2,
}
TOY_ALL_FAIL = {
    "name": "toy_all_fail", "model": "toy", "fixed": {"fail_seed": 0},
    "search": {"sampler": "grid", "space": {"n": {"type": "int", "low": 1, "high": 2}}},
    "objectives": [{"metric": "mig"}], "resources": {"cpus": 1, "gpus": 0}, "max_concurrent": 2,
}


def run_toy_study(folder: Path, study: dict, **kw) -> Path:
    """``run_study`` of ``study`` (a study file as a dict) with the toy model, at the smoke preset."""
    from orchestrator.study import run_study
    from toy import TOY

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{study['name']}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return run_study(path, preset="smoke", out=folder / "run", model=TOY, **{"log": lambda *a: None, **kw}).run_dir


@pytest.fixture(scope="session")
def toy_ablation(tmp_path_factory) -> Path:
    return run_toy_study(tmp_path_factory.mktemp("toy_ablation"), TOY_ABLATION)


@pytest.fixture(scope="session")
def toy_search(tmp_path_factory) -> Path:
    return run_toy_study(tmp_path_factory.mktemp("toy_search"), TOY_SEARCH)


@pytest.fixture(scope="session")
def toy_all_fail(tmp_path_factory) -> Path:
    return run_toy_study(tmp_path_factory.mktemp("toy_all_fail"), TOY_ALL_FAIL)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One S3-compatible server (moto) on 127.0.0.1 for the whole test session (tests/servers.py)."""
    from servers import start_s3

    server = start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """One PostgreSQL server on 127.0.0.1 for the whole test session (tests/servers.py); CI
    installs Debian's postgresql (.ci/run), so there a missing one fails instead of skipping."""
    from servers import postgres_bin, start_postgres

    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is not installed; .ci/run installs Debian's postgresql")
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed: apt-get install postgresql")
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()
