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
- :class:`OptunaSearcher` hands Ray Tune the next Optuna trial; :class:`~orchestrator.running.recorder.Recorder` (a Tune
  callback, which also sees errors) reads the trainable's :class:`~orchestrator.running.trainable.TrialReport`,
  tells Optuna how each trial ended and writes the tables.
- A run folder holds the final scores of one protocol: the storage remembers the study's
  experiment (each arm's model Config less its runtime fields, protocols included), a study that
  differs is refused, and a final score of another protocol fails its trial.
- Optuna's public API throughout, except :mod:`orchestrator.running.optuna_private`.

Example:
    >>> ostudy = open_study(study, run_dir)
    >>> recover(ostudy, study)
    >>> searcher = OptunaSearcher(ostudy, study, trial_base)
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)
from optuna.trial import TrialState
from ray.tune.search import Searcher

from .optuna_private import planned_params, trial_of
from ..run_folder.tables import INTERRUPTED
from ..study_file.plan import METHOD, Study
from ..study_file import StudyError


def storage_url(study: Study, run_dir: Path) -> str:
    return study.storage or f"sqlite:///{(run_dir / 'optuna.db').resolve()}"


def in_memory(url: str) -> bool:
    """Whether the storage URL names a database that lives only as long as the process (SQLite's
    ``sqlite://``, ``sqlite:///``, ``sqlite:///:memory:``, ``?mode=memory``): a rerun would find none
    of its trials."""
    import sqlalchemy.engine
    import sqlalchemy.exc

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:  # not a URL: Optuna's own error says so when it opens it
        return False
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or database.startswith("file::memory:") or parsed.query.get("mode") == "memory")


def make_sampler(study: Study, resumed_after: int = 0) -> optuna.samplers.BaseSampler:
    """The study's sampler. A study resumed after ``resumed_after`` trials gets a seed derived from
    (seed, that count): seeded as at its first start, it would propose its first configurations
    again. Each resume is as reproducible as the first start."""
    seed = study.sampler_seed
    if resumed_after:
        seed = int(np.random.SeedSequence([seed, resumed_after]).generate_state(1)[0])
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
        extra = [c[name] for c in study.controls if c[name] not in (p.grid() or [])]
        if extra:  # a control's value the grid lacks: the grid's points and the controls' own
            out[name] = CategoricalDistribution(list(dict.fromkeys([*p.grid(), *extra])))
        elif getattr(p, "values", None):  # listed points: a sampler picks among them only
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
    """What makes the study the same experiment: the search, and each arm's model and Config less
    its runtime fields (``TrainConfig.experiment``; the budget, the protocols and every fixed field
    that changes a result are in it)."""
    return {"sampler": study.sampler, "space": {n: s.model_dump(exclude_none=True) for n, s in study.space.items()},
            "objectives": [o.model_dump(include={"metric", "direction"}) for o in study.objectives],
            "datasets": list(study.datasets),
            "arms": {a.label: {"model": a.model, "experiment": study.experiment(a)} for a in study.arms},
            **({"controls": study.controls} if study.controls else {})}


def spec_changes(old: dict[str, Any], new: dict[str, Any], study: Study) -> list[str]:
    """What differs between a stored spec and this study's, as ``arm: field old -> new``. A Config
    field the stored spec lacks was added to the model since, with a default that keeps what was
    computed before (``TrainConfig.experiment_differences``' rule): it counts at that default."""
    changed = [k for k in ("sampler", "space", "objectives", "datasets", "controls") if old.get(k) != new.get(k)]
    old_arms, new_arms = old.get("arms") or {}, new.get("arms") or {}
    if set(old_arms) != set(new_arms):
        return changed + ["arms"]
    config_cls = {a.label: a.config_cls for a in study.arms}
    for label, arm in new_arms.items():
        before = old_arms[label]
        if before.get("model") != arm["model"]:
            changed.append(f"{label}: model")
        added = json.loads(json.dumps(config_cls[label].defaults(), default=str)) if label in config_cls else {}
        was = {**{k: v for k, v in added.items() if k in arm["experiment"]}, **before.get("experiment", {})}
        changed += [f"{label}: {k} {was.get(k)!r} -> {arm['experiment'].get(k)!r}"
                    for k in sorted(set(was) | set(arm["experiment"])) if was.get(k) != arm["experiment"].get(k)]
    return changed


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
    before = len(ostudy.get_trials(deepcopy=False))
    if before:
        ostudy.sampler = make_sampler(study, resumed_after=before)
    spec = json.loads(json.dumps(spec_of(study), default=str))
    old = ostudy.user_attrs.get("spec")
    if old is None:
        ostudy.set_user_attr("spec", spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ostudy.set_metric_names([o.metric for o in study.objectives])
    elif set(old) - {"controls"} != set(spec) - {"controls"}:  # a spec names its controls only when it has some
        raise StudyError(f"{study.source}: the Optuna study {study.run_name!r} in {url} was made by an older version "
                         "of the orchestrator, whose run folders this one does not continue; run with --fresh to "
                         "start over, or give another --out")
    elif old != spec and (changed := spec_changes(old, spec, study)):
        raise StudyError(f"{study.source}: the Optuna study {study.run_name!r} in {url} was made by a different "
                         f"version of this study ({', '.join(changed)} changed); run with --fresh to start over, "
                         f"or give another --out")
    return ostudy


def recover(ostudy: optuna.Study, study: Study, wanted: dict[Any, list[int]] | None = None
            ) -> list[tuple[int, int | None]]:
    """Mark RUNNING trials interrupted, then enqueue what the plan lacks (``wanted``: seeds a seed
    plan's later rounds ask of some configurations, beyond the study's first seeds). Returns the
    ``(old number, None)`` pairs of the interrupted trials (the caller prints them)."""
    interrupted = []
    for t in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        handle = trial_of(ostudy, t)
        handle.set_user_attr(INTERRUPTED, True)
        handle.set_user_attr("error", "interrupted: the orchestrator stopped while this trial ran; its "
                                      "configuration was queued again")
        ostudy.tell(t.number, state=TrialState.FAIL)
        interrupted.append((t.number, None))
    _enqueue_missing(ostudy, study, wanted or {})
    return interrupted


def plan_key(t: optuna.trial.FrozenTrial, study: Study) -> tuple[Any, int] | None:
    """``(config_id, seed)`` of a trial; None for one killed before it got all its parameters.

    Enqueued trials carry both attributes from birth; a trial the sampler proposed gets them just
    after ``ask``, so a missing one means (config_id = its number, seed = the first seed)."""
    if not study.has_all_params(planned_params(t)):
        return None
    return t.user_attrs.get("config_id", t.number), t.user_attrs.get("seed", study.seeds[0])


def _configs_started(trials, study: Study) -> set:
    return {key[0] for t in trials if (key := plan_key(t, study)) is not None}


def _enqueue_missing(ostudy: optuna.Study, study: Study, wanted: dict[Any, list[int]]) -> int:
    """Enqueue every (configuration, seed) of the plan, and of ``wanted``, that no trial holds or
    waits for; an interrupted one resumes from its checkpoint. Returns how many were enqueued."""
    have, params_of, resumable = set(), {}, {}
    for t in ostudy.get_trials(deepcopy=False):
        key = plan_key(t, study)
        if key is None:
            continue
        params_of.setdefault(key[0], planned_params(t))
        if t.user_attrs.get(INTERRUPTED):
            resumable[key] = t.number  # the latest interrupted attempt
        else:
            have.add(key)
    plan = list(enumerate(study.grid())) if study.sampler == "grid" else sorted(params_of.items())
    added = 0
    for cid, params in plan:
        for seed in dict.fromkeys([*study.seeds, *wanted.get(cid, [])]):
            if (cid, seed) not in have:
                added += 1
                attrs = {"config_id": cid, "seed": seed}
                if (cid, seed) in resumable:
                    attrs["resumed_from"] = resumable[(cid, seed)]
                ostudy.enqueue_trial(params, user_attrs=attrs)
    return added


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
        self.asked: dict[int, optuna.Trial] = {}  # trial number -> the handle ``ask`` gave (the Recorder uses it)
        # this process is the study's only writer (run folder lock), so count configurations once
        self.configs = len(_configs_started(ostudy.get_trials(deepcopy=False), study))

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        trial = self._next()
        if trial is None:
            return Searcher.FINISHED
        self.asked[trial.number] = trial
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
