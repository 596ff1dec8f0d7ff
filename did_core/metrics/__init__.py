"""Disentanglement metrics: one pure function per metric, a registry, a driver, and two protocols.

``dlib`` (default) reproduces disentanglement_lib's published definitions and constants; ``fast``
is a cheaper profile for monitoring during training whose scores are labelled ``fast/...`` in
tables and never compared with ``dlib`` scores.

Example:
    >>> from did_core.metrics import evaluate, scores_from_codes
    >>> from did_core.metrics.mig import mig
    >>> scores_from_codes(codes, factors, metrics="mig,dci")["mig"]
    >>> evaluate(dataset, encoder, protocol="fast").columns()     # {'fast/mig': ..., ...}
"""
from .evaluate import Scores, evaluate, parse_metrics, scores_from_codes
from .protocols import PROTOCOLS, Protocol, get_protocol
from .registry import Metric, code_metrics, computed_metrics, directions, register, score_names
from .utils import MetricInputError, split_rows

# The pure functions live in modules named after them (``did_core.metrics.mig.mig``,
# ``did_core.metrics.dci.dci``, ...); they are not re-exported here so that the names keep
# meaning the modules.

__all__ = [
    "PROTOCOLS",
    "Metric",
    "MetricInputError",
    "Protocol",
    "Scores",
    "code_metrics",
    "computed_metrics",
    "directions",
    "evaluate",
    "get_protocol",
    "parse_metrics",
    "register",
    "score_names",
    "scores_from_codes",
    "split_rows",
]
