"""docs/reproduction.md's verdicts come from the data: every row that names a run folder under
results/ quotes that folder's decisions in `decision:` spans, and each span is what the folder
decides today (orchestrator.report.findings.decide on the kept folder). A claim that is not
about means (Figure 2's "not always") quotes a `count:` span instead, and a claim about how high one
setting's score is (V3's codebook) a `level:` span, its mean and 95% interval; both are recomputed
from the folder the same way."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest

from orchestrator.report.comparison import tc_counterexamples
from orchestrator.report.data import load_run
from orchestrator.report.findings import decide
from orchestrator.report.stats import mean_ci

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reproduction.md"
SPAN = re.compile(r"`decision: results/([^ ·`]+) · ([^ ·`]+) · ([^`]+?) → "
                  r"(effect \((?:higher|lower)\)|equivalent|undecided)(?: after (\d+) seeds?)?`")
COUNT = re.compile(r"`count: results/([^ ·`]+) · ([a-z_]+) → (\d+) of (\d+)`")
COUNTS = {"tc_counterexamples": tc_counterexamples}  # what a count span may name -> (k, n) of a run
LEVEL = re.compile(r"`level: results/([^ ·`]+) · ([a-z_]+) · ([^`]+?) → (-?[0-9.]+) \[(-?[0-9.]+), (-?[0-9.]+)\] "
                   r"after (\d+) seeds`")  # a setting's mean [95% Student-t interval] over its finished seeds
FOLDER = re.compile(r"results/([A-Za-z0-9_.-]+?)(?=[/`)\s]|$)")


@lru_cache(maxsize=None)
def kept_run(folder: str):
    return load_run(ROOT / "results" / folder)  # read once for all the spans that quote it


@lru_cache(maxsize=None)
def decisions(folder: str) -> dict[tuple[str, str], tuple[str, tuple[int, int]]]:
    replay = decide(kept_run(folder))
    return {(v.score, v.comparison.label): (v.decision + (f" ({'higher' if v.sign > 0 else 'lower'})"
                                                          if v.decision == "effect" else ""), v.seeds)
            for v in replay.verdicts}


def rows() -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in DOC.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| claim") and not line.startswith("|---")]


def spans() -> list[tuple[str, str, str, str, str | None]]:
    return SPAN.findall(DOC.read_text())


def test_the_doc_quotes_decisions():
    assert len(spans()) >= 8


@pytest.mark.parametrize("folder, score, comparison, word, seeds", spans(),
                         ids=lambda x: x if isinstance(x, str) and len(x) < 40 else None)
def test_each_quoted_decision_is_the_folders(folder, score, comparison, word, seeds):
    table = decisions(folder)
    assert (score, comparison) in table, (f"{folder} makes no comparison {comparison!r} of {score}; it makes: "
                                          f"{sorted(c for s, c in table if s == score)}")
    decided, (n, n_ref) = table[(score, comparison)]
    assert decided == word, f"{folder} · {score} · {comparison}: the doc says {word!r}, the folder decides {decided!r}"
    if seeds:
        assert (n, n_ref) == (int(seeds), int(seeds))


def test_every_row_that_names_a_kept_folder_quotes_its_decision():
    for cells in rows():
        named = {f for c in cells for f in FOLDER.findall(c) if (ROOT / "results" / f).is_dir()}
        if not named:
            continue
        verdict = cells[1]
        quoted = {m[0] for pattern in (SPAN, COUNT, LEVEL) for m in pattern.findall(verdict)}
        assert named <= quoted, f"the verdict of the row {cells[0][:60]!r} names {named - quoted} without its decision"


@pytest.mark.parametrize("folder, name, k, n", COUNT.findall(DOC.read_text()))
def test_each_quoted_count_is_the_folders(folder, name, k, n):
    assert name in COUNTS, f"count span names {name!r}; known: {sorted(COUNTS)}"
    assert COUNTS[name](kept_run(folder)) == (int(k), int(n))


def level(folder: str, score: str, setting: str) -> tuple[float, float, float, int]:
    """Mean, 95% interval and seeds of ``score`` over the finished trials whose parameters are
    ``setting`` (``name=value, ...``), as the report's ablation figure computes them."""
    run = kept_run(folder)
    rows = run.finished
    for part in setting.split(", "):
        name, value = part.split("=", 1)
        assert name in run.params, f"{folder} has no parameter {name!r}; it has {run.params}"
        rows = rows[rows[name].astype(str) == value]
    mean, half = mean_ci(rows[score])
    return mean, mean - half, mean + half, len(rows)


@pytest.mark.parametrize("folder, score, setting, mean, low, high, n", LEVEL.findall(DOC.read_text()))
def test_each_quoted_level_is_the_folders(folder, score, setting, mean, low, high, n):
    measured = level(folder, score, setting)
    digits = len(mean.split(".")[1])
    assert measured[3] == int(n), f"{folder} · {score} · {setting}: {measured[3]} seeds, the doc says {n}"
    assert [f"{v:.{digits}f}" for v in measured[:3]] == [mean, low, high], (
        f"{folder} · {score} · {setting}: the folder gives {measured[:3]}, the doc {mean} [{low}, {high}]")


def test_a_wrong_word_would_be_caught():
    """The check can fail: a span with the opposite word does not match the folder's decision."""
    folder, score, comparison, word, _ = spans()[0]
    other = "equivalent" if word != "equivalent" else "undecided"
    assert decisions(folder)[(score, comparison)][0] != other
