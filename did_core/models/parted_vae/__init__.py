"""PartedVAE (Hajimiri, Lotfi, Soleymani Baghshah, arXiv 2102.00892): the registered model
``"parted_vae"``. Class-independent ``z``, a categorical ``c`` over the class factor and
class-related ``u`` behind an attention gate, a learnable Gaussian-mixture prior for ``u`` with a
Bhattacharyya penalty between its components, trained semi-supervised on a small labelled set.
Its swap grid (``swap.png``) is shown beside each traversal in the report (``REPORT_IMAGES``).

Example:
    >>> from did_core.models.parted_vae import Config, train
    >>> events = list(train(Config.from_preset("smoke", n_labelled=100)))
    >>> events[-1].scores["class_accuracy"]                       # doctest: +SKIP
"""
from .config import Config
from .images import REPORT_IMAGES
from .trainer import load_encoder, train

__all__ = ["Config", "REPORT_IMAGES", "load_encoder", "train"]
