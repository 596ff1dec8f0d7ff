"""Disentanglement metrics: one pure function per metric, a driver, and two protocols.

``dlib`` (default) reproduces disentanglement_lib's published definitions and constants; ``fast``
is a cheaper profile for monitoring during training whose scores are labelled ``fast/...`` in
tables and never compared with ``dlib`` scores.

Example:
    >>> from did_core.metrics import evaluate, scores_from_codes
    >>> from did_core.metrics.mig import mig
    >>> scores_from_codes(codes, factors, metrics="mig,dci")["mig"]
    >>> evaluate(dataset, encoder, protocol="fast").columns()     # {'fast/mig': ..., ...}
"""
from .evaluate import CODE_METRICS, METRICS, SCORE_NAMES, Scores, evaluate, parse_metrics, scores_from_codes
from .protocols import PROTOCOLS, Protocol, get_protocol
from .utils import MetricInputError, split_rows

# The pure functions live in modules named after them (``did_core.metrics.mig.mig``,
# ``did_core.metrics.dci.dci``, ...); they are not re-exported here so that the names keep
# meaning the modules.

__all__ = [
    "CODE_METRICS",
    "METRICS",
    "PROTOCOLS",
    "SCORE_NAMES",
    "MetricInputError",
    "Protocol",
    "Scores",
    "evaluate",
    "get_protocol",
    "parse_metrics",
    "scores_from_codes",
    "split_rows",
]
