"""TensorBoard: Ray Tune's ``TBXLoggerCallback``, writing each trial's events to
``RUN_DIR/tensorboard/trial_<n>/`` (not Ray's staging folder, which it copies into ``RUN_DIR/ray``
only now and then) from the study's own reports.

Scalars (Ray's tags, ``ray/tune/<name>``, x = the trial's generator step): ``loss/<name>``,
``images_per_sec``, ``<protocol>/<score>``, ``final/<score>``. At the trial's end, the HParams
plugin's record of the trial: its config (:func:`orchestrator.running.trackers.trial_config`) against its
final scores (a trial that failed: its config alone).

Example:
    >>> cb = TensorBoardTracker(TrackerSettings(("tensorboard",), run_dir, "x-smoke"))   # doctest: +SKIP
    >>> tune.RunConfig(callbacks=[cb])                                                     # doctest: +SKIP
    $ tensorboard --logdir RUN_DIR/tensorboard
"""
from __future__ import annotations

from ray.air.constants import TRAINING_ITERATION
from ray.tune.logger import TBXLoggerCallback
from ray.tune.result import TIMESTEPS_TOTAL

from ..trainable import TrialReport
from . import FINAL_PREFIX, TrackerSettings, tracked_values, trial_config

TAG_PREFIX = "ray/tune/"  # what Ray's callback puts before each name


class TensorBoardTracker(TBXLoggerCallback):
    """Ray's TensorBoardX logger, fed :func:`~orchestrator.running.trackers.tracked_values` at each step."""

    def __init__(self, settings: TrackerSettings):
        super().__init__()
        self.settings = settings
        self.finals: dict = {}  # trial -> its final scores, by tag

    def log_trial_start(self, trial) -> None:
        if trial in self._trial_writer:
            self._trial_writer[trial].close()
        folder = self.settings.tensorboard_dir / f"trial_{trial.config['number']}"
        folder.mkdir(parents=True, exist_ok=True)
        self._trial_writer[trial] = self._summary_writer_cls(str(folder), flush_secs=30)
        self._trial_result[trial] = {}

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        report = TrialReport.from_tune(result)
        values = tracked_values(report)
        if not values:
            return
        # Ray's callback takes its x from timesteps_total (or the iteration): the trial's step here
        super().log_trial_result(iteration, trial, {TIMESTEPS_TOTAL: report.step, TRAINING_ITERATION: report.step,
                                                    **values})
        if report.kind == "final":
            self.finals[trial] = {TAG_PREFIX + k: v for k, v in values.items() if k.startswith(FINAL_PREFIX)}

    def log_trial_end(self, trial, failed: bool = False) -> None:
        writer = self._trial_writer.pop(trial, None)
        self._trial_result.pop(trial, None)
        finals = self.finals.pop(trial, None)
        if writer is None:
            return
        from tensorboardX.summary import hparams

        # the HParams dashboard: this trial's config against its final scores (none for a failed trial)
        for summary in hparams(hparam_dict=trial_config(trial.config), metric_dict=finals or {}):
            writer.file_writer.add_summary(summary)
        writer.close()
