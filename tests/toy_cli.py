"""``python tests/toy_cli.py ARGS``: the study CLI (``orchestrator.study.main``) on a study of
``model: toy``: the toy model is registered for the study file, and handed to the trials (Ray's
workers import it from tests/, which conftest puts on PYTHONPATH)."""
from __future__ import annotations

import contextlib
import functools
import sys


def register_toy() -> None:
    from did_core.models import MODELS

    if "toy" not in MODELS.names():
        MODELS.add("toy", "toy", package="tests")


@contextlib.contextmanager
def toy_registered():
    """The toy model registered for the block, and forgotten after it (when it was not before):
    the tests that count the registered models must not find it."""
    from did_core.models import MODELS

    added = "toy" not in MODELS.names()
    register_toy()
    try:
        yield
    finally:
        if added:
            MODELS.remove("toy")


if __name__ == "__main__":
    register_toy()
    from orchestrator import study
    from toy import TOY

    study.run_study = functools.partial(study.run_study, model=TOY)
    sys.exit(study.main(sys.argv[1:]))
