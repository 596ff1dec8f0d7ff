"""V3 ("variance versus invariance", Wu, Wang, Raj, Xia, arXiv 2407.03824): the registered model ``"v3"``.

Content/style disentanglement of samples made of fragments: per-fragment codes ``[z_c, z_s]``,
``z_c`` vector-quantised, trained with hinge losses on four ratios of within-sample and
across-sample variability (``losses.py``); its own scores in ``scores.py``, its report section and
swap grids in ``report.py``.

Example:
    >>> from did_core.models.v3 import Config, train
    >>> events = list(train(Config.from_preset("smoke")))
    >>> events[-1].kind, "codebook_accuracy" in events[-1].scores
    ('final', True)
"""
from .config import Config
from .report import REPORT_IMAGES, report_sections
from .trainer import load_encoder, train

__all__ = ["Config", "REPORT_IMAGES", "load_encoder", "report_sections", "train"]
