"""Test support for every test: the toy model (tests/toy.py) must import in Ray's worker
processes too, which inherit this environment but not pytest's sys.path."""
from __future__ import annotations

import os
from pathlib import Path

TESTS = Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent), *filter(None, [os.environ.get("PYTHONPATH")])])
