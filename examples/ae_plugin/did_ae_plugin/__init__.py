"""An example did-orchestrator plugin: the model ``plain_ae`` (``model.py``), the dataset
``tiny_bars`` (``data.py``, a file shipped with the package) and the score ``ae_recon_error``.

Example:
    pip install --no-deps examples/ae_plugin
    python -m orchestrator.study examples/ae_plugin/studies/ae_smoke.yaml --preset smoke
"""
