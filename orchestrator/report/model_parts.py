"""The parts of the report that the run's models own (:mod:`did_core.models.report`): their
sections, and what their image gallery shows.

The models are those ``meta.json`` names, looked up in the model registry (built-ins and installed
plugins; a name that is not registered here is said in the report, never imported). Each model's
``report_sections`` gets a :class:`FolderView` of the run folder, and its sections are drawn by
:func:`~orchestrator.report.sections.render_section`; a hook that raises becomes a note naming the
model. Nothing here knows any model by name.

Example:
    >>> models = run_models(run)                   # [ModelSpec of 'did']
    >>> model_sections(page, run, models)          # DiD's "Shortcut diagnostics"
    >>> gallery(models).title
    'Latent traversals'
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from did_core.models import ConfigError, ModelSpec, PluginError, get_model
from did_core.models.report import TRAVERSALS, ReportImages, ReportSection, TrialImage
from did_core.training import CONFIG

from ..run_folder.layout import held, trial_dir
from .data import RunData
from .html import Page, esc
from .sections import TEXT_HTML, render_section
from .stats import config_label


class FolderView:
    """The :class:`~did_core.models.report.RunView` of a run folder that a model's sections read."""

    def __init__(self, run: RunData):
        self._run = run
        self.run_dir, self.kind = run.run_dir, run.kind
        self.params, self.scores, self.objectives = list(run.params), list(run.scores), list(run.objectives)

    @property
    def finished(self) -> pd.DataFrame:
        return self._run.finished

    def ranked(self) -> pd.DataFrame:
        done = self.finished
        if self.objectives and self.objectives[0][0] in done.columns:
            score, direction = self.objectives[0]
            done = done.sort_values(score, ascending=direction == "minimize", na_position="last")
        return done

    def label(self, row: pd.Series) -> str:
        return config_label(row, self.params)

    def trial_file(self, trial: int, name: str) -> Path | None:
        path = trial_dir(self.run_dir, trial) / name
        return path if held(self.run_dir, path) else None

    def trial_config(self, trial: int) -> dict[str, Any] | None:
        path = self.trial_file(trial, CONFIG)
        try:
            config = json.loads(path.read_text()) if path else None
        except (OSError, ValueError):
            return None
        return config if isinstance(config, dict) else None


def run_models(run: RunData, given: list[ModelSpec] | None = None) -> list[ModelSpec]:
    """The specs of the models ``meta.json`` names, in its order; ``given`` replace the registry
    lookup of their names (tests inject a toy model). One that cannot be had is a problem noted."""
    given_by_name = {m.name: m for m in given or []}
    specs = []
    for name in run.meta.models if run.meta else []:
        try:
            specs.append(given_by_name.get(name) or get_model(name))
        except ConfigError:
            run.problems.append(f"model {name!r} is not registered here (not installed?): the report leaves out its "
                                "own sections")
        except PluginError as e:
            run.problems.append(f"{e}; the report leaves out its own sections")
    return specs


def model_sections(page: Page, run: RunData, models: list[ModelSpec]) -> None:
    """The sections each model declares, drawn in the order of the run's models."""
    view = FolderView(run)
    for spec in models:
        if spec.report_sections is None:
            continue
        try:
            sections = list(spec.report_sections(view) or [])
            bad = [type(s).__name__ for s in sections if not isinstance(s, ReportSection)]
            if bad:
                raise TypeError(f"report_sections returned {bad}, not ReportSection")
        except Exception as e:  # a model's hook must not cost the rest of the report
            page.section(f"{spec.name}: its report sections",
                         TEXT_HTML["note"].format(esc(f"model {spec.name!r} ({spec.package}): report_sections "
                                                      f"failed ({type(e).__name__}: {e})")))
            continue
        for section in sections:
            render_section(page, run.run_dir, section, owner=spec.name)


def gallery(models: list[ModelSpec]) -> ReportImages:
    """What the image gallery shows: the models' own title and introduction when they agree (else
    the plain traversal's), and every model's extra trial images."""
    declared = [m.report_images for m in models if m.report_images is not None]
    titles = {(d.title, d.intro) for d in declared}
    title, intro = titles.pop() if len(titles) == 1 and len(declared) == len(models) else (TRAVERSALS.title,
                                                                                              TRAVERSALS.intro)
    extra: list[TrialImage] = list(dict.fromkeys(x for d in declared for x in d.extra))
    return ReportImages(title=title, intro=intro, extra=tuple(extra))
