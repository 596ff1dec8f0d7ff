"""MLflow: Ray Tune's ``MLflowLoggerCallback``, one MLflow run per trial (named ``trial_<n>``) in the
experiment ``<study>-<preset>``, from the study's own reports.

Params: the trial's config (:func:`orchestrator.running.trackers.trial_config`; not Tune's whole config,
which holds the run folder's paths). Metrics, at the trial's generator step: ``loss/<name>``,
``images_per_sec``, ``<protocol>/<score>``, ``final/<score>``. Tags: ``study``, ``preset``. The run
ends FINISHED with final scores, KILLED when early stopping ended it, FAILED otherwise.

The default store is an SQLite file in the run folder (``RUN_DIR/mlflow.db``, artifacts in
``RUN_DIR/mlflow-artifacts``); ``--tracking-uri`` names another (a server, a database).

Example:
    >>> from mlflow.tracking import MlflowClient
    >>> client = MlflowClient("sqlite:///runs/ablation_dims-smoke/mlflow.db")          # doctest: +SKIP
    >>> exp = client.get_experiment_by_name("ablation_dims-smoke")                   # doctest: +SKIP
    >>> [r.data.metrics["final/mig"] for r in client.search_runs([exp.experiment_id])]  # doctest: +SKIP
"""
from __future__ import annotations

import logging

from ray.air.integrations.mlflow import MLflowLoggerCallback

from ..trainable import TrialReport
from . import MLFLOW_ARTIFACTS, TrackerSettings, tracked_values, trial_config


class MLflowTracker(MLflowLoggerCallback):
    """Ray's MLflow logger, fed :func:`~orchestrator.running.trackers.tracked_values` at each step."""

    def __init__(self, settings: TrackerSettings):
        study, _, preset = settings.experiment.rpartition("-")
        super().__init__(tracking_uri=settings.mlflow_uri, experiment_name=settings.experiment,
                         tags={"study": study or settings.experiment, "preset": preset},
                         log_params_on_trial_end=True)  # the params are logged here, at the start
        self.settings = settings
        self.last_kind: dict = {}  # trial -> the kind of its latest report

    def setup(self, *args, **kwargs) -> None:
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its "Creating initial MLflow database tables"
        logging.getLogger("alembic").setLevel(logging.WARNING)
        if self.settings.tracking_uri is None:  # the run folder's store keeps its artifacts beside it
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=self.settings.mlflow_uri)
            if client.get_experiment_by_name(self.settings.experiment) is None:
                folder = self.settings.run_dir / MLFLOW_ARTIFACTS
                client.create_experiment(self.settings.experiment, artifact_location=folder.as_uri())
        super().setup(*args, **kwargs)

    def log_trial_start(self, trial) -> None:
        fresh = trial not in self._trial_runs
        super().log_trial_start(trial)  # the run, without Tune's config (log_params_on_trial_end)
        if fresh:
            self.mlflow_util.log_params(run_id=self._trial_runs[trial], params_to_log=trial_config(trial.config))

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        report = TrialReport.from_tune(result)
        values = tracked_values(report)
        if report is not None:
            self.last_kind[trial] = report.kind
        if values:
            self.mlflow_util.log_metrics(run_id=self._trial_runs[trial], metrics_to_log=values, step=report.step)

    def log_trial_end(self, trial, failed: bool = False) -> None:
        kind = self.last_kind.pop(trial, None)
        run_id = self._trial_runs.pop(trial, None)
        if run_id is None:
            return
        if kind == "final" and not failed:
            status = "FINISHED"
        elif kind in ("progress", "eval") and not failed and (trial.last_result or {}).get("done"):
            status = "KILLED"  # early stopping ended it
        else:
            status = "FAILED"
        self.mlflow_util.end_run(run_id=run_id, status=status)
