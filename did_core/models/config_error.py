"""The error of a config field that is unknown or out of range: raised by the configs
(:mod:`did_core.models.base`) and by their forms (:mod:`did_core.models.forms`), which both import it
from here (neither imports the other for it).
"""
from __future__ import annotations


class ConfigError(ValueError):
    """An unknown config field or a value of the wrong type/range.

    ``field`` names the field (None when the error is not about one); ``why`` is the message
    without the ``Config.field:`` prefix, so that a study file can point at its own line instead.
    """

    def __init__(self, message: str, field: str | None = None, why: str | None = None):
        super().__init__(message)
        self.field, self.why = field, why if why is not None else message

    @classmethod
    def invalid(cls, owner: str, field: str, why: str) -> "ConfigError":
        """``owner.field: why`` (``DiDConfig.steps: must be >= 1, got 0``)."""
        return cls(f"{owner}.{field}: {why}", field=field, why=why)
