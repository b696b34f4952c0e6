"""`python -m bench <command>`: a thin dispatcher over the command modules in bench/cli.

Every command module exposes `register(subparsers)`, which adds its parser and sets `func`;
modules import nothing heavy at load time (torch, scikit-learn, pandas wait for `func`), so
`--help` is instant. A BenchError, and a flag argparse cannot parse, become one line on stderr and
exit status 2. SIGTERM (what SLURM and friends send on time-out or preemption) ends a command like
Ctrl-C, with one line (bench.common.signals). `--overwrite`, on every command, lets an output
replace an existing file of another kind (bench.common.replace_rule); inputs stay protected.
"""

import argparse
import contextlib
import importlib
import sys

import bench
from bench.common import atomic, signals
from bench.common.errors import BenchError
from bench.common.replace_rule import OVERWRITE_FLAG, replacing_anything
from bench.common.terminal import OneLineParser, one_line, shortened, summary

COMMAND_MODULES = (
    "bench.cli.eval",
    "bench.cli.download",
    "bench.cli.report",
    "bench.cli.table",
    "bench.cli.plot",
    "bench.cli.compare",
    "bench.cli.order",
    "bench.cli.train",
    "bench.cli.demo",
)

AFTER_EVAL = "no result file was written"
AFTER_INTERRUPT = {
    "download": "what was complete is kept, and the bytes of an unfinished download: run the same command to resume",
    "train": "checkpoints saved so far are kept: add --resume to continue",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, except where there is none to show (None, off flags), and keeps a
    description's own line breaks (examples stay one per line)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="daa-bench", formatter_class=HelpFormatter,
                           description=f"{summary(bench.__doc__)} `daa-bench COMMAND --help` for each "
                                       "command.".lstrip())
    parser.add_argument("--version", action="version", version=f"%(prog)s {bench.__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for command in subparsers.choices.values():
        command.formatter_class = HelpFormatter
        command.add_argument(OVERWRITE_FLAG, action="store_true",
                             help="let an output replace an existing file of another kind (a checkpoint, a score "
                                  "matrix, another run's files); inputs are never replaced (docs/robustness.md)")
    return parser


def _after_interrupt(command: str, written_before: int) -> str:
    """What an interrupted command leaves: its own words, or exactly the result files it wrote."""
    if command in AFTER_INTERRUPT:
        return AFTER_INTERRUPT[command]
    written = atomic.COMMITTED[written_before:]
    return f"wrote {', '.join(map(str, written))} before" if written else AFTER_EVAL


def error_text(err: Exception) -> str:
    """An error's words, an OSError's with the file it concerns (`[Errno 28] ...` alone names none)."""
    if isinstance(err, OSError) and err.strerror:
        names = " -> ".join(str(name) for name in (err.filename, err.filename2) if name is not None)
        return f"{names}: {err.strerror}" if names else err.strerror
    return str(err)


def main(argv: list[str] | None = None) -> int:
    previous = signals.install()
    try:
        args = build_parser().parse_args(argv)
        written_before = len(atomic.COMMITTED)
        try:
            with replacing_anything() if args.overwrite else contextlib.nullcontext():
                return int(args.func(args) or 0)
        except (BenchError, OSError) as err:  # OSError: an unwritable output, a full disk (in its own words)
            print(shortened(one_line(f"daa-bench {args.command}: error: {error_text(err)}")), file=sys.stderr)
            return 2
        except KeyboardInterrupt as err:
            how, status = signals.status_of(err)
            print(one_line(f"daa-bench {args.command}: {how}; {_after_interrupt(args.command, written_before)}"),
                  file=sys.stderr)
            return status
    finally:
        signals.restore(previous)

