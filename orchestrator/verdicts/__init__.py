"""Verdicts: whether two settings differ, decided over seeds, with the error rates held by construction.

Lives here: the sequential decision rule (:mod:`.sequential`, pure numpy/scipy, shared by the
study and the simulation that proves it, :mod:`.simulation`), what a run compares
(:mod:`.comparisons`), the rounds replayed from a run folder's trials (:mod:`.rounds`), the
record of every look (:mod:`.looks`) and the sentences that state the answer (:mod:`.findings`).
The bottom room: pure numpy/scipy and did_core.atomic; it imports nothing else of orchestrator/
(the study file's plan and the run folder use it; the report and the commands read folders for it).

A run folder's decisions are read by :func:`orchestrator.report.findings.decide_run` (the report
reads the folder; this package decides).

Example:
    >>> from orchestrator.verdicts import DecisionRule, SeedPlan
    >>> SeedPlan.sequential(initial=3, step=2, maximum=10).sizes
    (3, 5, 7, 9, 10)
"""
from __future__ import annotations

from .sequential import DecisionRule, SeedPlan

__all__ = ["DecisionRule", "SeedPlan"]
