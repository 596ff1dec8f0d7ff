"""Optuna drives the search, Ray Tune runs it: the Optuna storage is the study's state.

- Every trial is an Optuna trial; its seed and its configuration id (``config_id``) are user
  attributes. Seeds are repeats of one configuration, never a searched parameter:
  * grid: every (grid point, seed) is enqueued (``Study.enqueue_trial``) when the study is
    created, ``config_id`` is the grid index;
  * tpe / random / cmaes / nsga2: the sampler proposes a configuration, which runs with the
    first seed, and the same parameters are enqueued once for each other seed; ``config_id`` is
    the number of the proposing trial. ``search.n_trials`` counts configurations.
- On start, :func:`recover` marks trials left RUNNING by a dead process as FAIL with user attr
  ``interrupted`` and enqueues their configuration again (``resumed_from`` = the old number, whose
  checkpoint the new trial continues from), then enqueues any (configuration, seed) the plan
  still lacks. COMPLETE, FAIL and PRUNED trials are kept and never run again.
- :class:`OptunaSearcher` hands Ray Tune the next Optuna trial; :class:`Recorder` (a Tune
  callback, which also sees errors) tells Optuna how each trial ended and writes the tables.

Example:
    >>> ostudy = open_study(study, run_dir)
    >>> recover(ostudy, study)
    >>> searcher = OptunaSearcher(ostudy, study, trial_base)
"""
from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)
from optuna.trial import TrialState
from ray import tune
from ray.tune.search import Searcher

from .results import INTERRUPTED, CurveWriter, format_params, write_results
from .schema import METHOD, Study, StudyError

# the parts of a study that must not change between runs into the same storage
SPEC_KEYS = ("model", "budget", "fixed", "sampler", "space", "objectives", "arms")


def storage_url(study: Study, run_dir: Path) -> str:
    return study.storage or f"sqlite:///{(run_dir / 'optuna.db').resolve()}"


def make_sampler(study: Study) -> optuna.samplers.BaseSampler:
    seed = study.sampler_seed
    if study.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)  # Optuna 5: multivariate, constant liar
    if study.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if study.sampler == "nsga2":
        kw = {"population_size": study.population_size} if study.population_size else {}
        return optuna.samplers.NSGAIISampler(seed=seed, **kw)
    return optuna.samplers.RandomSampler(seed=seed)  # random; for grid never consulted (all enqueued)


def distributions(study: Study) -> dict[str, BaseDistribution]:
    out: dict[str, BaseDistribution] = {}
    for name, p in study.space.items():
        if getattr(p, "values", None):  # listed points: a sampler picks among them only
            out[name] = CategoricalDistribution(list(p.values))
        elif p.type == "int":
            out[name] = IntDistribution(p.low, p.high, step=p.step, log=p.log)
        elif p.type == "float":
            out[name] = FloatDistribution(p.low, p.high, step=p.step)
        elif p.type == "log_float":
            out[name] = FloatDistribution(p.low, p.high, log=True)
        else:
            out[name] = CategoricalDistribution(p.choices)
    return out


def spec_of(study: Study) -> dict[str, Any]:
    r = study.resolved
    spec = {"model": r["model"], "budget": r["budget"], "fixed": r["fixed"], "sampler": r["search"]["sampler"],
            "space": r["search"]["space"], "objectives": r["objectives"]}
    if "arms" in r:
        spec["arms"] = r["arms"]
    return spec


def open_study(study: Study, run_dir: Path, fresh: bool = False) -> optuna.Study:
    """Create the study's Optuna study, or load it and check it was made by the same study."""
    url = storage_url(study, run_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if fresh:
        try:
            optuna.delete_study(study_name=study.run_name, storage=url)
        except KeyError:
            pass
    ostudy = optuna.create_study(study_name=study.run_name, storage=url, sampler=make_sampler(study),
                                 directions=[o.direction for o in study.objectives], load_if_exists=True)
    spec = json.loads(json.dumps(spec_of(study), default=str))
    old = ostudy.user_attrs.get("spec")
    if old is None:
        ostudy.set_user_attr("spec", spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ostudy.set_metric_names([o.metric for o in study.objectives])
    elif old != spec:
        changed = [k for k in SPEC_KEYS if old.get(k) != spec.get(k)]
        raise StudyError(f"{study.source}: the Optuna study {study.run_name!r} in {url} was made by a different "
                         f"version of this study ({', '.join(changed)} changed); run with --fresh to start over, "
                         f"or give another --out")
    return ostudy


def _fixed_params(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The trial's parameters; for an enqueued one also those fixed before it set them (a trial
    taken from the queue and killed before ``ask`` wrote its parameters still has its plan)."""
    return {**t.system_attrs.get("fixed_params", {}), **t.params}


def recover(ostudy: optuna.Study, study: Study) -> list[tuple[int, int | None]]:
    """Mark RUNNING trials interrupted, then enqueue what the plan lacks. Returns the
    ``(old number, None)`` pairs of the interrupted trials (the caller prints them)."""
    storage, interrupted = ostudy._storage, []
    for t in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
        storage.set_trial_user_attr(t._trial_id, "error", "interrupted: the orchestrator stopped while this "
                                                          "trial ran; its configuration was queued again")
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        interrupted.append((t.number, None))
    _enqueue_missing(ostudy, study)
    return interrupted


def plan_key(t: optuna.trial.FrozenTrial, study: Study) -> tuple[Any, int] | None:
    """``(config_id, seed)`` of a trial; None for one killed before it got all its parameters.

    Enqueued trials carry both attributes from birth; a trial the sampler proposed gets them just
    after ``ask``, so a missing one means (config_id = its number, seed = the first seed)."""
    if not study.has_all_params(_fixed_params(t)):
        return None
    return t.user_attrs.get("config_id", t.number), t.user_attrs.get("seed", study.seeds[0])


def _configs_started(trials, study: Study) -> set:
    return {key[0] for t in trials if (key := plan_key(t, study)) is not None}


def _enqueue_missing(ostudy: optuna.Study, study: Study) -> None:
    have, params_of, resumable = set(), {}, {}
    for t in ostudy.get_trials(deepcopy=False):
        key = plan_key(t, study)
        if key is None:
            continue
        params_of.setdefault(key[0], _fixed_params(t))
        if t.user_attrs.get(INTERRUPTED):
            resumable[key] = t.number  # the latest interrupted attempt
        else:
            have.add(key)
    plan = list(enumerate(study.grid())) if study.sampler == "grid" else sorted(params_of.items())
    for cid, params in plan:
        for seed in study.seeds:
            if (cid, seed) not in have:
                attrs = {"config_id": cid, "seed": seed}
                if (cid, seed) in resumable:
                    attrs["resumed_from"] = resumable[(cid, seed)]
                ostudy.enqueue_trial(params, user_attrs=attrs)


def remaining_trials(ostudy: optuna.Study, study: Study) -> int:
    """Trials still to run: those enqueued plus the configurations the sampler has yet to propose."""
    trials = ostudy.get_trials(deepcopy=False)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    if study.sampler == "grid":
        return waiting
    return waiting + max(0, study.n_trials - len(_configs_started(trials, study))) * len(study.seeds)


class OptunaSearcher(Searcher):
    """Ray Tune searcher over Optuna's ask: each Tune trial is the next Optuna trial.

    ``arm_bases`` holds, for each arm's label, what the Tune configs of its trials share (model,
    budget, fixed, run_dir). A comparison's ``method`` parameter picks the arm and is not passed
    to the model. Results go back to Optuna through :class:`Recorder`, which also sees trial errors.
    """

    def __init__(self, ostudy: optuna.Study, study: Study, arm_bases: dict[str, dict[str, Any]]):
        super().__init__(metric=None, mode=None)
        self.ostudy, self.study, self.bases = ostudy, study, arm_bases
        self.dists = distributions(study)
        self.plan = study.grid() if study.comparison else []  # config_id -> parameters
        # this process is the study's only writer (run folder lock), so count configurations once
        self.configs = len(_configs_started(ostudy.get_trials(deepcopy=False), study))

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        trial = self._next()
        if trial is None:
            return Searcher.FINISHED
        a, params = trial.user_attrs, dict(trial.params)
        arm = self.study.arm_of(params)
        return {**self.bases[arm.label], "arm": arm.label, "number": trial.number, "config_id": a["config_id"],
                "seed": a["seed"], "params": {k: v for k, v in params.items() if k != METHOD},
                "resumed_from": a.get("resumed_from")}

    def _next(self) -> optuna.Trial | None:
        waiting = self.ostudy.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not waiting and (self.study.sampler == "grid" or self.configs >= self.study.n_trials):
            return None
        if self.study.comparison:  # each arm has its own parameters: set just this configuration's
            trial = self.ostudy.ask()
            for name in self.plan[trial.user_attrs["config_id"]]:
                trial.suggest_categorical(name, self.dists[name].choices)
            return trial
        trial = self.ostudy.ask(self.dists)
        if "seed" not in trial.user_attrs:  # a new configuration proposed by the sampler (see plan_key)
            self.configs += 1
            trial.set_user_attr("seed", self.study.seeds[0])
            trial.set_user_attr("config_id", trial.number)
            for seed in self.study.seeds[1:]:
                self.ostudy.enqueue_trial(dict(trial.params), user_attrs={"config_id": trial.number, "seed": seed})
        return trial

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass  # the Recorder callback tells Optuna

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text("the search state is the Optuna storage\n")

    def restore(self, checkpoint_path: str) -> None:
        pass


class Recorder(tune.Callback):
    """Tells Optuna how each trial ended, and keeps ``results.csv`` / ``curves.csv`` current.

    COMPLETE: the trial reported its final scores; PRUNED: early stopping ended it; FAIL: it
    raised (the error text is the user attr ``error``, the traceback ``trials/<n>/error.txt``) or
    an objective is missing / not finite. A trial still running when the session ends stays
    RUNNING here and is handled by :func:`recover`.
    """

    def __init__(self, ostudy: optuna.Study, study: Study, run_dir: Path, log=print):
        self.ostudy, self.study, self.run_dir, self.log = ostudy, study, run_dir, log
        self.curves = CurveWriter(run_dir / "curves.csv")
        self.intermediate = f"{study.eval_protocol}/{study.objectives[0].metric}" \
            if len(study.objectives) == 1 else None
        self.total = study.planned_trials
        self.told: set[int] = set()
        self.last_scores: dict[int, dict[str, float]] = {}  # trial -> its latest in-training scores

    def _trial(self, number: int) -> optuna.Trial:
        tid = self.ostudy._storage.get_trial_id_from_study_id_trial_number(self.ostudy._study_id, number)
        return optuna.Trial(self.ostudy, tid)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        number, step = trial.config["number"], int(result.get("step", 0))
        if result.get("final"):
            return
        values = [(k, float(v)) for k, v in result.items()
                  if ("/" in k or k == "images_per_sec") and isinstance(v, (int, float)) and not isinstance(v, bool)]
        self.curves.write(number, step, values)
        self.last_scores.setdefault(number, {}).update(
            {k: v for k, v in values if not k.startswith("loss/") and k != "images_per_sec"})
        if self.intermediate and self.intermediate in result and math.isfinite(result[self.intermediate]):
            try:
                self._trial(number).report(float(result[self.intermediate]), step)
            except Exception:  # a repeated step after a resume; the curve has it anyway
                pass

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        if r.get("error"):
            self._finish(trial, TrialState.FAIL, r, error=str(r["error"]))
        elif r.get("final"):
            scores = {k: v for k, v in r.items() if _is_score(k, v)}
            values = [scores.get(o.metric) for o in self.study.objectives]
            bad = [o.metric for o, v in zip(self.study.objectives, values) if v is None or not math.isfinite(v)]
            if bad:
                err = f"objective(s) {bad} missing or not finite in the final scores {sorted(scores)}"
                self._finish(trial, TrialState.FAIL, r, error=err)
            else:
                self._finish(trial, TrialState.COMPLETE, r, values=values)
        elif r.get("done"):
            self._finish(trial, TrialState.PRUNED, r)
        # else: stopped because the session ended; recover() re-queues it

    def on_trial_error(self, iteration, trials, trial, **info):
        text = ""
        if trial.error_file and Path(trial.error_file).exists():
            text = Path(trial.error_file).read_text(errors="replace")
        self._finish(trial, TrialState.FAIL, trial.last_result or {}, error=_error_line(text), tb=text)

    def _finish(self, trial, state, r, values=None, error=None, tb=None) -> None:
        number = trial.config["number"]
        if number in self.told:
            return
        self.told.add(number)
        t = self._trial(number)
        last = {k: v for k, v in self.last_scores.pop(number, {}).items() if math.isfinite(v)}
        started = r.get("trial_started")
        duration = time.time() - started if started else r.get("time_total_s")  # wall time, set-up included
        # few attributes, each one storage write: "run" holds where and how long
        attrs = {"run": {"step": r.get("step"), "duration_s": duration, "node": r.get("node"),
                         "host": r.get("host"), "started_at": started, "final_protocol": r.get("final_protocol")},
                 "last_scores": last}
        if state == TrialState.COMPLETE or r.get("final"):
            attrs["scores"] = {k: v for k, v in r.items() if _is_score(k, v)}
        if error:
            attrs["error"] = error
        for k, v in attrs.items():
            t.set_user_attr(k, v)
        if tb:
            out = self.run_dir / "trials" / str(number)
            out.mkdir(parents=True, exist_ok=True)
            if not (out / "error.txt").exists():  # the trainable writes the model's own traceback there
                (out / "error.txt").write_text(tb)
        self.ostudy.tell(number, values if state == TrialState.COMPLETE else None, state=state)
        df = write_results(self.run_dir, self.ostudy)
        shown = ", ".join(f"{o.metric}={r[o.metric]:.4g}" for o in self.study.objectives if _is_number(r.get(o.metric)))
        params = format_params({f"params_{k}": v for k, v in trial.config["params"].items()})
        if self.study.comparison:
            params = f"{trial.config['arm']}: {params}"
        note = f"  {error}" if error else ""
        self.log(f"[{len(df):>3}/{self.total}] trial {number} ({params}, seed {trial.config['seed']}): "
                 f"{state.name} {shown}{note}".rstrip())



# the keys a trial reports that are not scores
_NOT_SCORES = {"step", "final", "done", "training_iteration", "time_this_iter_s", "time_total_s", "timestamp",
               "time_since_restore", "iterations_since_restore", "pid", "node", "host", "images_per_sec",
               "final_protocol", "trial_started", "error", "checkpoint_dir_name", "should_checkpoint", "trial_id", "date", "hostname",
               "node_ip", "experiment_tag"}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_score(k: str, v: Any) -> bool:
    return "/" not in k and k not in _NOT_SCORES and isinstance(v, (int, float)) and not isinstance(v, bool)


def _error_line(text: str) -> str:
    """The exception line of a Ray error file ("TrainingDiverged: training diverged at step 3 ...")."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        head = ln.split(":", 1)[0]
        if head and head.replace(".", "").replace("_", "").isalnum() and head[0].isupper() and ":" in ln:
            return ln[:500]
    return (lines[-1] if lines else "the trial's process failed (see the Ray logs)")[:500]

