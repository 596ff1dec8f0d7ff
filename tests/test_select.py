"""Study-level label-free scores (orchestrator/select.py): selection.csv from a run folder's
checkpoints through the models' selection hooks, resumable; the report's section; the real
models' hooks (DiD, the VAEs) through the model spec; and a study that computes them when it ends.

The toy model's hook (tests/toy.py) sees dSprites' position through a rotation of x * 0.4 * seed
radians: the seeds of a small-x configuration agree, those of a large-x one do not.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

import orchestrator.select as select_module
from did_core.metrics.protocols import replace
from orchestrator.report import build_report
from orchestrator.report.selection import critical_rho, selection_section
from orchestrator.run_folder.layout import (SELECTION_COLUMNS, SELECTION_DIR, SELECTION_FILE, RunMeta, TrialRecord,
                                     read_selection, trial_dir)
from orchestrator.select import select_run
from toy import TOY_SELECTABLE, Config as ToyConfig, scores as toy_scores

TINY = replace("fast", name="tiny", mc_num_groups=24, mc_group_size=8, mc_num_variance=100, udr_num_points=300)
EVIL = "<script>alert(1)</script>"


def add_trial(run_dir, number, x, seed, status="COMPLETE", mode="a"):
    """A finished toy trial as a study leaves it: trial.json, checkpoint.pt (the toy's is JSON)."""
    config = ToyConfig.from_preset("smoke", x=x, seed=seed, mode=mode)
    folder = trial_dir(run_dir, number)
    folder.mkdir(parents=True, exist_ok=True)
    TrialRecord(number=number, config_id=f"x={x}", seed=seed, params={"x": x, "mode": mode}, model="toy",
                budget="smoke", config=config.to_dict(), resumed_from=None, node="n", host="h", started=0.0).write(folder)
    (folder / "checkpoint.pt").write_text(json.dumps({"step": 4, "config": config.to_dict()}))
    return {"trial": number, "config_id": f"x={x}", "seed": seed, "status": status, "params_mode": mode,
            "params_x": x, **toy_scores(config), "step": 4, "final_protocol": "fast", "duration_s": 1.0, "node": "n",
            "host": "h", "started": "", "finished": "", "resumed_from": None, "error": None}


def write_results(run_dir, rows):
    pd.DataFrame(rows).to_csv(run_dir / "results.csv", index=False)


@pytest.fixture
def run_dir(tmp_path):
    """x in 0.1, 0.5, 0.9 with 3 seeds, x = 0.7 with one (no UDR), one failed trial (not scored)."""
    run = tmp_path / "run"
    run.mkdir()
    RunMeta(study="toy_sel", preset="smoke", budget="smoke", models=["toy"], kind="ablation", source="toy_sel.yaml",
            storage="sqlite:///x/optuna.db", optuna_study="toy_sel-smoke", steps=4, eval_protocol="fast",
            final_protocol="fast", planned_trials=11, started="", objectives=[("mig", "maximize")]).write(run)
    rows, n = [], 0
    for x in (0.1, 0.5, 0.9):
        for seed in (0, 1, 2):
            rows.append(add_trial(run, n, x, seed, mode=EVIL if x == 0.9 else "a"))
            n += 1
    rows.append(add_trial(run, n, 0.7, 0))
    rows.append(add_trial(run, n + 1, 0.3, 0, status="FAIL"))
    write_results(run, rows)
    return run


class Counting:
    """The toy model spec with its hook counted: which checkpoints the selection read back."""

    def __init__(self):
        self.loaded: list[str] = []

    def spec(self):
        hook = TOY_SELECTABLE.selection

        def counted(checkpoint, device="cpu"):
            self.loaded.append(str(checkpoint))
            return hook(checkpoint, device)

        return {"toy": type(TOY_SELECTABLE)(name="toy", config_cls=ToyConfig, train=TOY_SELECTABLE.train,
                                            selection=counted)}


def test_selection_csv_scores_every_finished_trial(run_dir):
    rows = select_run(run_dir, TINY, "cpu", models=Counting().spec(), log=lambda *a: None)
    df = read_selection(run_dir)
    assert list(df.columns) == SELECTION_COLUMNS and len(df) == len(rows) == 10  # the failed trial is not there
    by_x = {x: df[df["configuration"].str.contains(f"x={x}")] for x in (0.1, 0.5, 0.7, 0.9)}
    assert (by_x[0.1]["udr_n"] == 3).all() and by_x[0.7]["udr_lasso"].isna().all()
    assert "UDR not computed: 1 seed of this configuration" in by_x[0.7]["note"].iloc[0]
    for score in ("udr_lasso", "udr_spearman"):  # seeds that agree (small x) rank above seeds that do not
        assert by_x[0.1][score].mean() > by_x[0.5][score].mean() > by_x[0.9][score].mean()
    assert by_x[0.1]["udr_lasso"].min() == pytest.approx(0.9, abs=0.02)  # aligned seeds: 1 - alpha, as by hand
    assert (df["mc_n"] == 10).all() and df["model_centrality"].between(0, 1).all()
    assert (df["protocol"] == "tiny").all() and (df["model"] == "toy").all() and (df["dataset"] == "dsprites").all()


def test_a_rerun_reads_its_cache_and_a_new_seed_adds_only_its_pairs(run_dir, monkeypatch):
    first = Counting()
    select_run(run_dir, TINY, "cpu", models=first.spec(), log=lambda *a: None)
    assert len(first.loaded) == 10
    before = (run_dir / SELECTION_FILE).read_text()
    again = Counting()
    select_run(run_dir, TINY, "cpu", models=again.spec(), log=lambda *a: None)
    assert again.loaded == [] and (run_dir / SELECTION_FILE).read_text() == before  # nothing read back, same table
    # a second seed of x = 0.7 (a study extended): its codes, and the 2 x 10 pairs it makes, nothing else
    rows = pd.read_csv(run_dir / "results.csv").to_dict("records")
    write_results(run_dir, rows + [add_trial(run_dir, 11, 0.7, 1)])
    asked = []
    real = select_module_encoder_scores()
    monkeypatch.setattr("did_core.metrics.model_centrality.encoder_scores",
                        lambda gen, encs, *a, **k: asked.append(len(encs)) or real(gen, encs, *a, **k))
    more = Counting()
    select_run(run_dir, TINY, "cpu", models=more.spec(), log=lambda *a: None)
    assert sum(asked) == 20 and len(asked) == 11  # the new generator with 10 encoders, 10 old ones with 1
    df = read_selection(run_dir)
    assert (df.loc[df["configuration"].str.contains("x=0.7"), "udr_n"] == 2).all()
    pairs = pd.read_csv(run_dir / SELECTION_DIR / "mc_pairs.csv")
    assert len(pairs) == 11 * 10 and set(pairs["protocol"]) == {"tiny"}


def select_module_encoder_scores():
    from did_core.metrics.model_centrality import encoder_scores

    return encoder_scores


def test_models_without_a_hook_are_said_and_nothing_is_written(run_dir):
    from toy import TOY

    messages = []
    assert select_run(run_dir, TINY, "cpu", models={"toy": TOY}, log=messages.append) is None
    assert not (run_dir / SELECTION_FILE).exists()
    assert "model 'toy' has no selection hook" in messages[0]


def test_report_section_escapes_and_names_n(run_dir):
    select_run(run_dir, TINY, "cpu", models=Counting().spec(), log=lambda *a: None)
    html = build_report(run_dir).read_text()
    assert "Selecting without labels" in html and "Spearman" in html and "MIG regret" in html
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    section = selection_section(read_selection(run_dir), pd.read_csv(run_dir / "results.csv"))
    udr_mig = next(c for c in section.correlations if (c.unsupervised, c.supervised) == ("udr_lasso", "mig"))
    assert udr_mig.n == 3  # the configurations with a UDR (x = 0.7 has one seed)
    mc_mig = next(c for c in section.correlations if (c.unsupervised, c.supervised) == ("model_centrality", "mig"))
    assert mc_mig.n == 4 and -1 <= mc_mig.rho <= 1
    # p is exact at these n: even rho = +-1 over 3 or 4 configurations is not rare under chance
    assert all(c.p >= 1 / 12 - 1e-9 for c in section.correlations if c.n <= 4 and not math.isnan(c.p))
    best = next(p for p in section.picks if p.score == "mig")
    assert best.regret == 0 and "x=0.1" in best.configuration  # toy MIG peaks at x = 0.3: 0.1 is the closest here
    for pick in section.picks:
        assert pick.regret >= 0 and math.isclose(pick.mig + pick.regret, best.mig)
    assert "At n = 3 no ρ can reach p &lt; 0.05" in html and "At n = 4 no ρ can reach" in html
    assert critical_rho(4) is None and critical_rho(5) == 1.0 and critical_rho(6) == pytest.approx(0.8857, abs=1e-4)


@pytest.fixture
def toy_registered():
    """tests/toy.py, with its load_selection, registered as a plugin would be."""
    from toy_cli import toy_registered as registered

    with registered():
        yield


def test_cli(run_dir, toy_registered, capsys):
    assert select_module.main([str(run_dir), "--protocol", "fast", "--device", "cpu", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["trial", "udr_lasso", "udr_spearman", "mc"] and len(out.splitlines()) == 11
    assert set(read_selection(run_dir)["protocol"]) == {"fast"}
    assert select_module.main([str(run_dir.parent)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_a_run_folder_at_a_storage_uri(run_dir, tmp_path, s3_server, toy_registered, capsys):
    """The checkpoints stay in the bucket (a driver's cache has none): read from there; selection.csv
    and the cache go up."""
    from orchestrator.run_folder.remote import RunStorage

    s3_server.make_bucket("sel")
    uri = s3_server.uri("sel/runs/toy")
    remote = RunStorage.parse(uri)
    remote.push_run(run_dir)
    for folder in sorted((run_dir / "trials").iterdir()):
        remote.put_dir(folder, f"trials/{folder.name}")
    cache = tmp_path / "cache"
    assert select_module.main([uri, "--cache", str(cache), "--device", "cpu"]) == 0, capsys.readouterr().err
    assert not list(cache.glob("trials/*/checkpoint.pt"))
    assert len(read_selection(cache)) == 10 and read_selection(cache)["model_centrality"].notna().all()
    keys = set(s3_server.keys("sel", "runs/toy/"))
    assert {"runs/toy/selection.csv", "runs/toy/selection/mc_pairs.csv", "runs/toy/report.html"} <= keys
    assert "runs/toy/selection/codes-0.npz" in keys


def test_real_models_hooks_through_the_model_spec(tmp_path):
    """DiD and a VAE from checkpoints as training writes them (untrained nets: the hook is what is tested)."""
    import torch

    from did_core.checkpoint import rng_state, save_checkpoint
    from did_core.models import get_model
    from did_core.models.did.trainer import build_nets
    from did_core.models.vae_nets import Decoder, Encoder

    did = get_model("did").config_cls.from_preset("smoke", dataset="squares", n_noise=2)
    nets = build_nets(did, 1, 32)
    save_checkpoint(tmp_path / "did.pt", step=1, nets=nets, optimizers={}, rng=rng_state(), config=did.to_dict())
    vae = get_model("beta_vae").config_cls.from_preset("smoke", latent_dim=6)
    enc, dec = Encoder(1, 6), Decoder(1, 6)
    save_checkpoint(tmp_path / "vae.pt", step=1, nets={"encoder": enc, "decoder": dec}, optimizers={}, rng=rng_state(),
                    config=vae.to_dict())
    rng = np.random.default_rng(0)
    d = get_model("did").selection(tmp_path / "did.pt")
    assert d.kl is None and d.generator.n_latents == did.n_latents and d.generator.sample_prior(3, rng).shape == (3, 12)
    images = d.generator.sample(d.generator.sample_prior(5, rng))
    assert tuple(images.shape) == (5, 1, 32, 32) and float(images.min()) >= 0 and float(images.max()) <= 1
    nets["E"].eval()
    with torch.no_grad():
        assert d.encode(images) == pytest.approx(nets["E"](images).double().numpy(), abs=1e-6)
    v = get_model("beta_vae").selection(tmp_path / "vae.pt")
    x = v.generator.sample(v.generator.sample_prior(4, rng))
    assert tuple(x.shape) == (4, 1, 64, 64) and v.encode(x).shape == (4, 6) and v.kl(x).shape == (6,)
    with torch.no_grad():
        mean, logvar = enc(x)
    kl = (0.5 * (mean ** 2 + logvar.exp() - logvar - 1)).mean(0).double().numpy()
    assert v.kl(x) == pytest.approx(kl, abs=1e-6) and v.encode(x) == pytest.approx(mean.double().numpy(), abs=1e-6)
    assert all(get_model(m).selection is not None for m in ("did", "beta_vae", "beta_tcvae", "factor_vae"))
    assert get_model("v3").selection is None  # no generator hook: left out of the selection, and said


def test_a_study_computes_them_when_it_ends(tmp_path):
    """run_study with a model that has a hook: selection.csv and the report's section, no extra command."""
    from orchestrator.study import run_study

    study = {"name": "toy_sel_study", "model": "toy",
             "search": {"sampler": "grid", "space": {"x": {"type": "float", "low": 0.0, "high": 1.0,
                                                           "values": [0.1, 0.9]}}},
             "seeds": 2, "objectives": [{"metric": "mig"}], "resources": {"cpus": 1, "gpus": 0}, "max_concurrent": 2}
    path = tmp_path / "toy_sel_study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    run = run_study(path, preset="smoke", out=tmp_path / "run", model=TOY_SELECTABLE, log=lambda *a: None)
    df = read_selection(run.run_dir)
    assert len(df) == 4 and df["udr_lasso"].notna().all() and df["model_centrality"].notna().all()
    assert set(df["protocol"]) == {"fast"}  # the run's final protocol
    assert "Selecting without labels" in (run.run_dir / "report.html").read_text()
