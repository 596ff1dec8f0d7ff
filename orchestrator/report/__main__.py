"""``python -m orchestrator.report RUN_DIR [--out FILE.html]``: see :mod:`orchestrator.report`.
``python -m orchestrator.report RUN_DIR [RUN_DIR ...] --findings`` prints each folder's decisions."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __doc__ as DOC
from did_core.plugins import PluginError

from ..run_folder.layout import EXPORT_DIR
from ..run_folder.setup import guard_run_folder
from ..study_file import StudyError
from . import write_report
from .data import ReportError, load_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.report", description=DOC.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="+", help="a run folder written by `python -m orchestrator.study` "
                                                   "(several with --findings)")
    parser.add_argument("--findings", action="store_true",
                        help="print the decisions of each run folder (the report's Findings) instead of a report")
    parser.add_argument("--out", help="the HTML file to write (default RUN_DIR/report.html)")
    parser.add_argument("--export", nargs="?", const="", metavar="DIR",
                        help="also write the tables as LaTeX and CSV and the figures as SVG and PDF into DIR "
                             "(default RUN_DIR/export; the report links to them there)")
    parser.add_argument("--storage", help="the Optuna storage URL, for a run folder without its own optuna.db "
                                          "(a study run with --storage); the one meta.json names is never read")
    args = parser.parse_args(argv)
    if args.findings:
        return _findings(args.run_dir, args.storage)
    if len(args.run_dir) > 1:
        parser.error("one run folder at a time (several only with --findings)")
    args.run_dir = args.run_dir[0]
    try:
        run_dir = Path(args.run_dir)
        if run_dir.exists() or run_dir.is_symlink():  # a missing folder: load_run's own error
            guard_run_folder(run_dir, "python -m orchestrator.report")  # as the study command guards it
        if args.out and Path(args.out).is_dir():
            raise ReportError(f"--out {args.out}: a folder; give the path of the HTML file to write")
        run = load_run(run_dir, args.storage)
        export = None if args.export is None else Path(args.export or run.run_dir / EXPORT_DIR)
        path = write_report(run, args.out, export=export)
        if export is not None:
            print(export)
    except (ReportError, PluginError, StudyError) as e:  # PluginError: an installed metric plugin cannot be used
        print(f"error: {e}", file=sys.stderr)
        return 2
    for p in run.problems:
        print(f"warning: {p}", file=sys.stderr)
    if run.finished.empty:
        print("warning: no trial finished; the report says what happened", file=sys.stderr)
    print(path)
    return 0


def _findings(run_dirs: list[str], storage: str | None) -> int:
    from .findings import findings_lines

    for i, run_dir in enumerate(run_dirs):
        try:
            run = load_run(run_dir, storage)
        except ReportError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        lines = findings_lines(run)
        print(("\n" if i else "") + f"== {run_dir} ({run.name}, {run.preset})")
        print("\n".join(lines) if lines else "no comparison to decide (no finished trial, or not an ablation or "
                                              "a comparison)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
