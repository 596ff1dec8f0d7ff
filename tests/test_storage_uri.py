"""A run folder at a storage URI (orchestrator.run_folder.remote) against moto's S3 server on 127.0.0.1: what
``--out`` accepts and refuses, the files the driver moves, ``--fresh`` at a URI; no Ray needed."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.run_folder.remote import RunStorage
from orchestrator.study import run_folder_of
from orchestrator.study_file import StudyError


def test_a_local_out_is_no_uri_and_a_bad_uri_is_one_clear_error(s3_server):
    assert RunStorage.parse("runs/x") is None and RunStorage.parse(Path("/tmp/x")) is None
    with pytest.raises(StudyError, match=r"--out nosuch://bucket/x: not a storage URI pyarrow can open"):
        RunStorage.parse("nosuch://bucket/x")
    with pytest.raises(StudyError, match="name a folder in the bucket"):
        RunStorage.parse(s3_server.uri("bucket-only"))
    remote = RunStorage.parse(s3_server.uri("no-such-bucket/runs/x"))
    assert remote.shown == "s3://no-such-bucket/runs/x"  # options (the endpoint) never printed
    with pytest.raises(StudyError, match=r"--out s3://no-such-bucket/runs/x: cannot write to it"):
        remote.check()


def test_the_cache_is_only_for_a_uri(s3_server):
    class Named:
        run_name = "s-smoke"

    remote = RunStorage.parse(s3_server.uri("cache-bucket/runs/s"))
    assert remote.default_cache() == Path("runs/cache/s3/cache-bucket/runs/s")
    assert run_folder_of(Named, s3_server.uri("cache-bucket/runs/s")) == remote.default_cache().resolve()
    with pytest.raises(StudyError, match="--cache: only for an --out storage URI"):
        run_folder_of(Named, "runs/local", cache="runs/elsewhere")


def test_driver_files_go_up_and_come_back_into_an_empty_cache(s3_server, tmp_path):
    s3_server.make_bucket("roundtrip")
    remote = RunStorage.parse(s3_server.uri("roundtrip/runs/r"))
    remote.check()
    first = tmp_path / "first"
    (first / "trials" / "0").mkdir(parents=True)
    (first / "meta.json").write_text('{"study": "r"}')
    (first / "results.csv").write_text("trial\n0\n")
    (first / "notes.txt").write_text("not a run file")
    remote.push_run(first)
    remote.put_dir(first / "trials" / "0", "trials/0")  # as a trial does
    (first / "trials" / "0" / "checkpoint.pt").write_text("weights")
    (first / "trials" / "0" / "scores.json").write_text('{"mig": 0.5}')
    remote.put_dir(first / "trials" / "0", "trials/0")
    assert set(s3_server.keys("roundtrip", "runs/r/")) == {
        "runs/r/meta.json", "runs/r/results.csv", "runs/r/trials/0/checkpoint.pt", "runs/r/trials/0/scores.json"}

    second = tmp_path / "second"
    assert remote.pull_run(second)
    assert (second / "meta.json").read_text() == '{"study": "r"}'
    assert (second / "trials" / "0" / "scores.json").exists()
    assert not (second / "trials" / "0" / "checkpoint.pt").exists()  # checkpoints stay in the bucket
    assert not remote.pull_run(second)  # a cache with meta.json is the driver's own: left alone

    remote.clear()  # --fresh
    assert s3_server.keys("roundtrip", "runs/r/") == []


def test_fresh_at_a_uri_that_holds_something_else_deletes_nothing(s3_server, tmp_path):
    s3_server.make_bucket("foreign")
    remote = RunStorage.parse(s3_server.uri("foreign/data"))
    (tmp_path / "thesis.pdf").write_text("years of work")
    remote.put_file(tmp_path / "thesis.pdf", "thesis.pdf")
    with pytest.raises(StudyError, match=r"--fresh: s3://foreign/data holds what a run folder does not \(thesis.pdf\)"):
        remote.clear()
    assert s3_server.keys("foreign") == ["data/thesis.pdf"]
