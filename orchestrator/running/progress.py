"""Live progress of a running study: trials finished / running / queued, each running trial's step of
steps, images per second, latest in-training objective and ETA, and the study's ETA from the trials'
measured speed.

In a terminal it is one block redrawn in place (``rich``'s Live display; the Recorder's line per
finished trial prints above it). When stdout is not a terminal (CI logs, ``nohup``, a pipe) it
writes plain lines instead: one when a trial starts, and a summary at most once a minute, so a
log never floods.

The terminal is always left as it was found: the live block hides the cursor, and every exit path
shows it again (:meth:`ProgressBoard.close`, :func:`restore_terminal` in the study command's
``finally``, and at interpreter exit, so also after a second Ctrl-C). A stdout closed by its
reader (``| head -1``) ends the output quietly (:func:`say`): the study goes on, with no traceback.

Example:
    >>> board = ProgressBoard(study, todo=12, log=print)
    >>> tune.RunConfig(callbacks=[Recorder(...), board])                     # doctest: +SKIP
"""
from __future__ import annotations

import atexit
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

from ray import tune

from ..study_file.plan import Study
from ..run_folder.tables import format_params
from ..run_folder.layout import param_column
from .trainable import TrialReport

SHOW_CURSOR = "\x1b[?25h"
_hid_cursor: list[TextIO] = []  # the terminals a live block hid the cursor of


def say(*args, **kwargs) -> None:
    """``print``, except that a stdout its reader closed (``study ... | head -1``) is silenced for the
    rest of the process instead of raising ``BrokenPipeError`` into the study."""
    try:
        print(*args, **kwargs)
        if kwargs.get("file") is None:
            sys.stdout.flush()  # a closed pipe is found now, not at exit
    except BrokenPipeError:
        silence_stdout()


def silence_stdout() -> None:
    """Point stdout's file descriptor at /dev/null (what is buffered for the closed pipe is dropped)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a replaced sys.stdout): nothing to redirect
        pass


def restore_terminal() -> None:
    """Show the cursor again on every terminal a live block hid it on (idempotent; any exit path)."""
    while _hid_cursor:
        out = _hid_cursor.pop()
        try:
            out.write(SHOW_CURSOR)
            out.flush()
        except (OSError, ValueError):  # closed meanwhile: no cursor to show
            pass


atexit.register(restore_terminal)
PLAIN_SUMMARY_EVERY_S = 60.0  # plain output: at most one summary line a minute
LIVE_REFRESH_PER_S = 0.5  # the live block: redrawn every 2 s (and on every trial event)


@dataclass
class TrialProgress:
    """What the board knows of one running trial."""

    number: int
    label: str  # its parameters and seed
    steps: int  # the trial's budget
    step: int = 0
    images_per_sec: float | None = None
    objective: float | None = None  # the latest in-training score of the first objective
    first: tuple[float, int] | None = None  # (time, step) of its first report in this session
    last: tuple[float, int] | None = None  # (time, step) of its latest report

    def steps_per_sec(self) -> float | None:
        if self.first is None or self.last is None or self.last[1] <= self.first[1]:
            return None
        return (self.last[1] - self.first[1]) / max(self.last[0] - self.first[0], 1e-9)

    def eta_s(self) -> float | None:
        rate = self.steps_per_sec()
        return (self.steps - self.step) / rate if rate else None


@dataclass
class StudyProgress:
    """The study's counts and the running trials; pure state, rendered by :class:`ProgressBoard`."""

    todo: int  # trials this session runs
    steps: int  # steps of one trial
    finished: int = 0
    running: dict[int, TrialProgress] = field(default_factory=dict)

    @property
    def queued(self) -> int:
        return max(self.todo - self.finished - len(self.running), 0)

    def eta_s(self) -> float | None:
        """Steps left (running trials' remainders, queued trials whole) over the running trials'
        aggregate speed; None until a running trial has a measured speed."""
        rates = [t.steps_per_sec() for t in self.running.values()]
        known = [r for r in rates if r]
        if not known:
            return None
        total_rate = sum(known) / len(known) * len(self.running)  # unmeasured trials at the mean speed
        left = sum(t.steps - t.step for t in self.running.values()) + self.queued * self.steps
        return left / total_rate

    def summary(self) -> str:
        eta = self.eta_s()
        return (f"{self.finished} finished, {len(self.running)} running, {self.queued} queued"
                f"{'' if eta is None else f'; study ETA {format_duration(eta)}'}")


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class ProgressBoard(tune.Callback):
    """The Tune callback that keeps :class:`StudyProgress` and shows it (see the module docstring)."""

    def __init__(self, study: Study, todo: int, log: Callable[[str], None] = say, out: TextIO | None = None,
                 interactive: bool | None = None, clock: Callable[[], float] = time.monotonic):
        self.study, self.log, self.clock = study, log, clock
        self.out = out if out is not None else sys.stdout
        self.interactive = self.out.isatty() if interactive is None else interactive
        self.state = StudyProgress(todo=todo, steps=study.steps)
        self.objective = f"{study.eval_protocol}/{study.objectives[0].metric}"
        self._live = None
        self._last_plain = clock()
        self._lock = threading.Lock()  # the live display redraws from its own thread

    def __getstate__(self):  # Tune pickles its callbacks with the experiment's state
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_live", "out", "log")}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock(), _live=None, out=sys.stdout, log=say)

    # ----- Tune's callbacks -----------------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        number = trial.config["number"]
        params = format_params({param_column(k): v for k, v in trial.config["params"].items()})
        if self.study.comparison:
            params = f"{trial.config['arm']}: {params}"
        label = f"{params}, seed {trial.config['seed']}"
        steps = next((a.steps for a in self.study.arms if a.label == trial.config["arm"]), 0) or self.study.steps
        with self._lock:
            self.state.running[number] = TrialProgress(number, label, steps=steps)
        if not self.interactive:
            self.log(f"trial {number} ({label}) started; {self.state.summary()}")
        self._refresh()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        report, number = TrialReport.from_tune(result), trial.config["number"]
        progress = self.state.running.get(number)
        if report is None or progress is None or report.kind not in ("progress", "eval"):
            return
        now = self.clock()
        with self._lock:
            progress.step = report.step
            progress.first = progress.first or (now, report.step)
            progress.last = (now, report.step)
            if report.images_per_sec is not None:
                progress.images_per_sec = report.images_per_sec
            if self.objective in report.scores:
                progress.objective = report.scores[self.objective]
        self._refresh()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._done(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._done(trial)

    def on_step(self, iteration, trials, **info):
        self._refresh(event=False)

    def on_experiment_end(self, trials, **info):
        self.close()

    # ----- showing it -----------------------------------------------------------------------------------
    def _done(self, trial) -> None:
        with self._lock:
            if self.state.running.pop(trial.config["number"], None) is not None:
                self.state.finished += 1
        self._refresh()

    def _refresh(self, event: bool = True) -> None:
        if self.interactive:
            if self._live is None:
                from rich.console import Console
                from rich.live import Live

                self._live = Live(get_renderable=self.render, console=Console(file=self.out),
                                  refresh_per_second=LIVE_REFRESH_PER_S, redirect_stdout=True, redirect_stderr=False)
                if self._live.console.is_terminal and self.out not in _hid_cursor:
                    _hid_cursor.append(self.out)  # Live hides the cursor of a terminal
                try:
                    self._live.start()
                except BrokenPipeError:  # the terminal's reader is gone: no display
                    self._gone()
            elif event:
                try:
                    self._live.refresh()
                except BrokenPipeError:
                    self._gone()
        elif self.clock() - self._last_plain >= PLAIN_SUMMARY_EVERY_S and self.state.running:
            self._last_plain = self.clock()
            self.log(f"progress: {self.state.summary()}; " + "; ".join(
                f"trial {t.number} step {t.step}/{t.steps}" for t in list(self.state.running.values())))

    def render(self):
        from rich.table import Table

        with self._lock:
            summary, running = self.state.summary(), sorted(self.state.running.values(), key=lambda t: t.number)
        table = Table(title=f"{self.study.name}: {summary}", title_justify="left", expand=False)
        for column in ("trial", "configuration", "step", "images/s", self.objective, "ETA"):
            table.add_column(column, justify="left" if column == "configuration" else "right")
        for t in running:
            table.add_row(str(t.number), t.label, f"{t.step}/{t.steps}",
                          "-" if t.images_per_sec is None else f"{t.images_per_sec:.0f}",
                          "-" if t.objective is None else f"{t.objective:.4g}", format_duration(t.eta_s()))
        return table

    def _gone(self) -> None:
        """The display's stream was closed by its reader: no more display, the study goes on."""
        live, self._live, self.interactive = self._live, None, False
        silence_stdout()
        try:
            if live is not None:
                live.stop()  # its refresh thread; what it writes goes to /dev/null now
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        live, self._live = self._live, None
        try:
            if live is not None:
                live.stop()
        except (BrokenPipeError, ValueError):
            silence_stdout()
        finally:
            restore_terminal()
