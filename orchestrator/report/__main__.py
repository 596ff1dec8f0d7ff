"""``python -m orchestrator.report RUN_DIR [--out FILE.html]``: see :mod:`orchestrator.report`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __doc__ as DOC
from did_core.plugins import PluginError

from ..folder_setup import guard_run_folder
from ..run_folder import EXPORT_DIR
from ..study_file import StudyError
from . import write_report
from .data import ReportError, load_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.report", description=DOC.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run folder written by `python -m orchestrator.study`")
    parser.add_argument("--out", help="the HTML file to write (default RUN_DIR/report.html)")
    parser.add_argument("--export", nargs="?", const="", metavar="DIR",
                        help="also write the tables as LaTeX and CSV and the figures as SVG and PDF into DIR "
                             "(default RUN_DIR/export; the report links to them there)")
    parser.add_argument("--storage", help="the Optuna storage URL, for a run folder without its own optuna.db "
                                          "(a study run with --storage); the one meta.json names is never read")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
