"""Study-level scores that need no labels: ``python -m orchestrator.select RUN_DIR [options]``.

    python -m orchestrator.select runs/baselines-quick
    python -m orchestrator.select runs/baselines-quick --protocol fast --device cuda
    python -m orchestrator.select s3://bucket/studies/b --cache runs/cache/b

Once a study's trials are done, every finished trial's checkpoint is read back through its model's
selection hook (``did_core.models.get_model(name).selection``, see did_core/models/selection.py);
a model without one is left out, and said. Then

- **UDR** (:mod:`did_core.metrics.udr`, lasso and spearman) per configuration over its seeds, on
  the same ``udr_num_points`` observations of its dataset (drawn from ``default_rng([seed, 101])``);
  a configuration with one finished seed gets none, and its rows say so;
- **ModelCentrality** (:mod:`did_core.metrics.model_centrality`) over every model of the study
  that has a generator, per dataset (a comparison's datasets apart); generator ``g`` (a trial
  number) draws from ``default_rng([seed, g])``.

``selection.csv`` (:class:`~orchestrator.run_folder.layout.SelectionRow`) is written atomically. The work
is cached in ``selection/`` (each trial's codes, ``codes-<trial>.npz``; each ModelCentrality pair,
``mc_pairs.csv``), so a rerun, or a study extended by more seeds, computes only what is new. The
sizes are the protocol's (default: the run's final protocol). The study command runs this when a
study ends (``--no-select`` skips it); this command also rebuilds ``report.html``.

Example:
    >>> table = select_run("runs/baselines-quick")                  # doctest: +SKIP
    >>> table[["trial", "udr_lasso", "model_centrality"]]            # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from did_core.atomic import atomic_path
from did_core.npz import read_npz

from .run_folder.tables import format_params, load_results
from .run_folder.layout import (SELECTION_DIR, SELECTION_FILE, RunMeta, SelectionRow, Status, TrialRecord, trial_dir,
                         write_selection)
from .run_folder.remote import CHECKPOINT_NAME, RunStorage
from .study_file import StudyError

UDR_STREAM = 101  # the random stream of UDR's observations
PAIRS_FILE = "mc_pairs.csv"
PAIR_COLUMNS = ["generator", "encoder", "protocol", "seed", "score"]


@dataclass
class Trial:
    """A finished trial as the selection sees it."""

    number: int
    config_id: Any
    configuration: str
    seed: int
    model: str = ""
    dataset: tuple[str, str, str | None] = ("", "", None)  # name, source, path (from its config)
    spec: Any = None  # its ModelSpec (None: not scored)
    notes: list[str] = field(default_factory=list)
    codes: np.ndarray | None = None  # [points, d] on its dataset's UDR observations
    kl: np.ndarray | None = None  # [d], None: no posterior (every dimension alive)
    has_generator: bool = False

    @property
    def dataset_name(self) -> str:
        name, source, _ = self.dataset
        return name if source in ("", "procedural") else f"{name} ({source})"


class Selection:
    """One computation of a run folder's label-free scores (see the module docstring)."""

    def __init__(self, run_dir: Path, protocol, device: str = "auto", seed: int = 0,
                 remote: RunStorage | None = None, models: dict[str, Any] | None = None, log: Callable = print):
        from did_core.metrics.protocols import get_protocol
        from did_core.training import choose_device

        self.run_dir, self.remote, self.seed, self.log = Path(run_dir), remote, seed, log
        self.protocol = get_protocol(protocol)
        self.device = choose_device(device)
        self.models = models or {}
        self.cache = self.run_dir / SELECTION_DIR
        self._views: dict[int, Any] = {}
        self._datasets: dict[tuple, Any] = {}
        self._scratch = tempfile.TemporaryDirectory(prefix="did-select-")
        self._said_pairs = False

    # ---- the trials and their models ----------------------------------------------------------
    def trials(self) -> list[Trial]:
        from did_core.models import get_model

        df = load_results(self.run_dir)
        out = []
        for _, row in df[df["status"] == Status.COMPLETE.value].iterrows():
            t = Trial(int(row["trial"]), row["config_id"], format_params(row), int(row["seed"]))
            try:
                record = TrialRecord.read(trial_dir(self.run_dir, t.number))
            except (OSError, ValueError, TypeError) as e:
                t.notes.append(f"no readable trial.json ({type(e).__name__})")
                out.append(t)
                continue
            t.model = record.model
            t.dataset = (record.config.get("dataset", ""), record.config.get("data_source", "procedural"),
                         record.config.get("data_path"))
            try:
                t.spec = self.models.get(t.model) or get_model(t.model)
            except Exception as e:  # an unknown model name (ConfigError), a module that does not import
                t.notes.append(f"model {t.model!r} not available ({e})")
            if t.spec is not None and t.spec.selection is None:
                t.notes.append(f"model {t.model!r} has no selection hook")
                t.spec = None
            out.append(t)
        return out

    def view(self, t: Trial):
        """The trial's model read back through its hook (once); None, with a note, when it cannot be."""
        if t.number not in self._views:
            self._views[t.number] = None
            try:
                self._views[t.number] = t.spec.selection(self._checkpoint(t), device=self.device)
            except Exception as e:  # a missing or corrupt checkpoint must not stop the other trials
                t.notes.append(f"checkpoint not readable ({type(e).__name__}: {e})")
        return self._views[t.number]

    def _checkpoint(self, t: Trial) -> Path:
        local = trial_dir(self.run_dir, t.number) / CHECKPOINT_NAME
        if local.is_file() or self.remote is None:
            return local
        fetched = Path(self._scratch.name) / f"{t.number}.pt"
        if not self.remote.get_file(f"trials/{t.number}/{CHECKPOINT_NAME}", fetched):
            raise FileNotFoundError(f"{self.remote.shown}/trials/{t.number}/{CHECKPOINT_NAME}: no such object")
        return fetched

    def dataset(self, key: tuple[str, str, str | None]):
        if key not in self._datasets:
            from did_core.data import get_dataset

            name, source, path = key
            self._datasets[key] = get_dataset(name, source=source, path=path, device=self.device).scoring_view(self.seed)
        return self._datasets[key]

    # ---- UDR's codes, cached per trial --------------------------------------------------------
    def _codes_key(self, t: Trial) -> str:
        name, source, _ = t.dataset
        return f"points={self.protocol.udr_num_points};seed={self.seed};dataset={name};source={source}"

    def encode(self, trials: list[Trial]) -> None:
        """Each scorable trial's codes (and KL) on its dataset's UDR observations, from the cache or its model."""
        images: dict[tuple, Any] = {}
        for t in trials:
            path = self.cache / f"codes-{t.number}.npz"
            if path.is_file():
                try:
                    arrays = read_npz(path, ValueError)
                    if str(arrays["key"]) == self._codes_key(t):
                        t.codes, t.kl = arrays["codes"], arrays.get("kl")
                        t.has_generator = bool(arrays["has_generator"])
                        _drop_unusable(t)
                        continue
                except (ValueError, KeyError):
                    pass  # unreadable or of other settings: computed again
            view = self.view(t)
            if view is None:
                continue
            if t.dataset not in images:
                ds = self.dataset(t.dataset)
                rng = np.random.default_rng([self.seed, UDR_STREAM])
                images[t.dataset] = ds.images(ds.sample_factors(self.protocol.udr_num_points, rng))
            x = images[t.dataset]
            t.codes, t.has_generator = view.encode(x), view.generator is not None
            t.kl = view.kl(x) if view.kl is not None else None
            arrays = {"codes": t.codes, "has_generator": np.array(t.has_generator), "key": np.array(self._codes_key(t))}
            if t.kl is not None:
                arrays["kl"] = t.kl
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
            _drop_unusable(t)

    # ---- the scores ---------------------------------------------------------------------------
    def udr(self, trials: list[Trial]) -> dict[int, tuple[float, float, int]]:
        """trial -> (udr_lasso, udr_spearman, seeds) for every configuration with >= 2 encoded seeds."""
        from did_core.metrics.udr import udr

        out: dict[int, tuple[float, float, int]] = {}
        groups: dict[Any, list[Trial]] = {}
        for t in trials:
            if t.codes is not None:
                groups.setdefault(t.config_id, []).append(t)
        for members in groups.values():
            if len(members) < 2:
                members[0].notes.append("UDR not computed: 1 seed of this configuration has codes (it needs >= 2)")
                continue
            if len({m.codes.shape for m in members}) > 1 or len({m.kl is None for m in members}) > 1:
                for m in members:
                    m.notes.append("UDR not computed: the seeds' representations differ in size")
                continue
            codes = np.stack([m.codes for m in members])
            kl = None if members[0].kl is None else np.stack([m.kl for m in members])
            p = self.protocol
            lasso = udr(codes, kl, "lasso", p.udr_kl_threshold, p.udr_lasso_alpha).model_scores
            spearman = udr(codes, kl, "spearman", p.udr_kl_threshold).model_scores
            for k, m in enumerate(members):
                out[m.number] = (float(lasso[k]), float(spearman[k]), len(members))
        return out

    def model_centrality(self, trials: list[Trial]) -> dict[int, tuple[float, int]]:
        """trial -> (centrality, models in its pool) for the models with a generator, per dataset."""
        from did_core.data import dataset_factors
        from did_core.metrics.model_centrality import centrality, encoder_scores

        pairs = self._read_pairs()
        out: dict[int, tuple[float, int]] = {}
        pools: dict[tuple, list[Trial]] = {}
        for t in trials:
            if t.codes is not None and t.has_generator:
                pools.setdefault(t.dataset[:2], []).append(t)
        for key, pool in pools.items():
            if len(pool) < 2:
                pool[0].notes.append(f"ModelCentrality not computed: the only model with a generator on {key[0]}")
                continue
            size = math.prod(dataset_factors(key[0])[1])
            for g in pool:
                missing = [e for e in pool if e is not g and (g.number, e.number) not in pairs]
                if not missing:
                    continue
                views = [self.view(t) for t in (g, *missing)]
                if any(v is None for v in views):
                    continue
                rng = np.random.default_rng([self.seed, g.number])
                scores = encoder_scores(views[0].generator, [v.generator for v in views[1:]], self.protocol, rng, size)
                pairs.update({(g.number, e.number): float(s) for e, s in zip(missing, scores)})
                self._write_pairs(pairs)  # after each generator: an interrupted run keeps what it did
            matrix = np.array([[pairs.get((g.number, e.number), math.nan) for g in pool] for e in pool])
            np.fill_diagonal(matrix, math.nan)
            if np.isnan(matrix[~np.eye(len(pool), dtype=bool)]).any():
                for t in pool:
                    t.notes.append("ModelCentrality not computed: a model of its pool could not be read")
                continue
            _, scores = centrality(matrix)
            out.update({t.number: (float(s), len(pool)) for t, s in zip(pool, scores)})
        return out

    def _pair_rows(self) -> list[dict[str, Any]]:
        """The rows of ``selection/mc_pairs.csv`` (a cache): a file that does not read as one (edited,
        cut short) is said once and computed again, never a traceback."""
        path = self.cache / PAIRS_FILE
        if not path.is_file():
            return []
        try:
            with open(path, newline="") as f:
                rows = [{"generator": int(r["generator"]), "encoder": int(r["encoder"]), "protocol": r["protocol"],
                         "seed": int(r["seed"]), "score": float(r["score"])} for r in csv.DictReader(f)]
        except (KeyError, ValueError, TypeError, csv.Error, UnicodeDecodeError) as e:
            if not self._said_pairs:
                self.log(f"selection: {path} is not a readable cache ({type(e).__name__}: {e}); its ModelCentrality "
                         "pairs are computed again")
                self._said_pairs = True
            return []
        return rows

    def _read_pairs(self) -> dict[tuple[int, int], float]:
        return {(r["generator"], r["encoder"]): r["score"] for r in self._pair_rows()
                if r["protocol"] == self.protocol.name and r["seed"] == self.seed}

    def _write_pairs(self, pairs: dict[tuple[int, int], float]) -> None:
        path = self.cache / PAIRS_FILE
        # the pairs of other protocols and seeds stay
        kept = [r for r in self._pair_rows() if not (r["protocol"] == self.protocol.name and r["seed"] == self.seed)]
        mine = [{"generator": g, "encoder": e, "protocol": self.protocol.name, "seed": self.seed, "score": s}
                for (g, e), s in sorted(pairs.items())]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=PAIR_COLUMNS)
            writer.writeheader()
            writer.writerows(kept + mine)

    # ---- the whole run ------------------------------------------------------------------------
    def run(self, trials: list[Trial] | None = None) -> list[SelectionRow]:
        if self.remote is not None and not self.cache.exists():
            self.remote.get_dir(SELECTION_DIR, self.cache)  # what an earlier run elsewhere computed
        self.cache.mkdir(parents=True, exist_ok=True)
        trials = self.trials() if trials is None else trials
        scorable = [t for t in trials if t.spec is not None]
        self.encode(scorable)
        for t in scorable:
            if t.codes is not None and not t.has_generator:
                t.notes.append(f"model {t.model!r} has no generator: not in ModelCentrality")
        udr_scores, mc_scores = self.udr(scorable), self.model_centrality(scorable)
        rows = []
        for t in trials:
            lasso, spearman, n_udr = udr_scores.get(t.number, (None, None, 0))
            mc, n_mc = mc_scores.get(t.number, (None, 0))
            rows.append(SelectionRow(trial=t.number, config_id=t.config_id, configuration=t.configuration, seed=t.seed,
                                     model=t.model, dataset=t.dataset_name, udr_lasso=lasso, udr_spearman=spearman,
                                     udr_n=n_udr, model_centrality=mc, mc_n=n_mc, protocol=self.protocol.name,
                                     note="; ".join(dict.fromkeys(t.notes))))
        write_selection(self.run_dir, rows)
        if self.remote is not None:
            self.remote.put_file(self.run_dir / SELECTION_FILE, SELECTION_FILE)
            self.remote.put_dir(self.cache, SELECTION_DIR)
        self._scratch.cleanup()
        return rows


def _drop_unusable(t: Trial) -> None:
    """A trial whose codes (or KL) are not finite is left out of UDR and ModelCentrality, its row
    saying so: one model gone wrong never stops the others' scores."""
    bad = [name for name, a in (("codes", t.codes), ("KL", t.kl)) if a is not None and not np.isfinite(a).all()]
    if t.codes is not None and bad:
        t.notes.append(f"trial {t.number}: its {' and '.join(bad)} are not finite (NaN or inf): not scored")
        t.codes, t.kl = None, None


def select_run(run_dir: str | Path, protocol: str | None = None, device: str = "auto", seed: int = 0,
               remote: RunStorage | None = None, models: dict[str, Any] | None = None,
               log: Callable = print) -> list[SelectionRow] | None:
    """Compute (or refresh) ``RUN_DIR/selection.csv``; the rows written, or None when no finished trial
    has a model with a selection hook (then nothing is written). ``protocol``: default the run's
    final protocol; ``models``: model name -> ModelSpec, instead of the registry (tests)."""
    run_dir = Path(run_dir)
    meta = RunMeta.read(run_dir)
    selection = Selection(run_dir, protocol or meta.final_protocol, device, seed, remote, models, log)
    trials = selection.trials()
    if not any(t.spec is not None for t in trials):
        why = "; ".join(sorted({n for t in trials for n in t.notes})) or "no finished trial"
        log(f"selection: nothing to score ({why})")
        return None
    rows = selection.run(trials)
    done = sum(r.udr_lasso is not None or r.model_centrality is not None for r in rows)
    log(f"selection: {done} of {len(rows)} finished trials scored without labels ({selection.protocol.name} "
        f"protocol): {run_dir / SELECTION_FILE}")
    return rows


def _print_rows(rows: list[SelectionRow]) -> None:
    def num(v):
        return "–" if v is None else f"{v:.4f}"

    print(f"{'trial':>5}  {'udr_lasso':>9}  {'udr_spearman':>12}  {'mc':>7}  configuration / note")
    for r in rows:
        print(f"{r.trial:>5}  {num(r.udr_lasso):>9}  {num(r.udr_spearman):>12}  {num(r.model_centrality):>7}  "
              f"{r.configuration}, seed {r.seed}" + (f"  ({r.note})" if r.note else ""))


def main(argv: list[str] | None = None) -> int:
    from did_core.metrics.protocols import PROTOCOLS

    from .run_folder.locks import lock_run_folder
    from .run_folder.setup import guard_run_folder

    ap = argparse.ArgumentParser(prog="python -m orchestrator.select", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, or its storage URI (s3://bucket/prefix)")
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), help="sizes (default: the run's final protocol)")
    ap.add_argument("--device", default="auto", help="torch device for the models: auto (CUDA when present), cpu, cuda")
    ap.add_argument("--seed", type=int, default=0, help="the random draws' seed (>= 0)")
    ap.add_argument("--cache", help="with a URI: the local copy of the run folder (default runs/cache/...)")
    ap.add_argument("--no-report", action="store_true", help="do not rebuild report.html")
    args = ap.parse_args(argv)
    if args.seed < 0:
        ap.error(f"--seed must be >= 0 (a seed of numpy's random streams), got {args.seed}")
    try:
        remote = RunStorage.parse(args.run_dir)
        run_dir = Path(args.cache or remote.default_cache()) if remote else Path(args.run_dir)
        if remote is not None:
            remote.pull_run(run_dir)
        guard_run_folder(run_dir, "python -m orchestrator.select")  # as the study command guards it
        with lock_run_folder(run_dir):
            rows = select_run(run_dir, args.protocol, args.device, args.seed, remote,
                              log=lambda message: print(message, file=sys.stderr))
            if rows is not None and not args.no_report:
                from .report import build_report

                build_report(run_dir)
                if remote is not None:
                    remote.push_run(run_dir)
    except (StudyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if rows is not None:
        _print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
