"""The events a model's ``train`` yields: three small typed records.

A consumer tells them apart by type (``isinstance(event, Eval)``) and reads attributes. ``kind``
names the type in text and JSON (``event.to_dict()``). Item access (``event["scores"]``) reads the
same attributes, for scripts written when events were plain dicts.

Example:
    >>> e = Eval(step=10, protocol="fast", scores={"mig": 0.2})
    >>> e.kind, e.scores["mig"], e.columns()
    ('eval', 0.2, {'fast/mig': 0.2})
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union


class _Event:
    kind: ClassVar[str] = ""

    def __getitem__(self, name: str) -> Any:
        if name == "kind":
            return self.kind
        if name not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(name)
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Progress(_Event):
    """Mean losses since the previous progress event, and real training images per second."""

    kind: ClassVar[str] = "progress"
    step: int
    losses: dict[str, float]
    images_per_sec: float | None = None


@dataclass(frozen=True)
class _Scored(_Event):
    step: int
    protocol: str  # the evaluation protocol of every score (did_core.metrics.protocols)
    scores: dict[str, float]  # the metric scores and the model's own (model_scores)


@dataclass(frozen=True)
class Eval(_Scored):
    """In-training scores (protocol ``fast``); ``checkpoint``: the file saved with them."""

    kind: ClassVar[str] = "eval"
    checkpoint: str | None = None

    def columns(self) -> dict[str, float]:
        """The scores under their table names, the protocol first (``fast/mig``)."""
        return {f"{self.protocol}/{name}": value for name, value in self.scores.items()}


@dataclass(frozen=True)
class Final(_Scored):
    """The scores at the end (protocol ``dlib``), and the files written (name -> path)."""

    kind: ClassVar[str] = "final"
    artifacts: dict[str, str] = field(default_factory=dict)


Event = Union[Progress, Eval, Final]
