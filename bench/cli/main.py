"""`python -m bench <command>`: a thin dispatcher over the command modules in bench/cli.

Every command module exposes `register(subparsers)`, which adds its parser and sets `func`;
modules import nothing heavy at load time (torch, scikit-learn, pandas wait for `func`), so
`--help` is instant. A BenchError becomes one line on stderr and exit status 2. SIGTERM (what
SLURM and friends send on time-out or preemption) ends a command like Ctrl-C, with one line.
"""

import argparse
import importlib
import signal
import sys
import threading

import bench
from bench.common import atomic
from bench.common.errors import BenchError
from bench.common.terminal import one_line, summary

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
    parser = argparse.ArgumentParser(prog="daa-bench", formatter_class=HelpFormatter,
                                     description=f"{summary(bench.__doc__)} `daa-bench COMMAND --help` for each "
                                                 "command.".lstrip())
    parser.add_argument("--version", action="version", version=f"%(prog)s {bench.__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for command in subparsers.choices.values():
        command.formatter_class = HelpFormatter
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process stands so that cleanups run as for Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated()


def _after_interrupt(command: str, written_before: int) -> str:
    """What an interrupted command leaves: its own words, or exactly the result files it wrote."""
    if command in AFTER_INTERRUPT:
        return AFTER_INTERRUPT[command]
    written = atomic.COMMITTED[written_before:]
    return f"wrote {', '.join(map(str, written))} before" if written else AFTER_EVAL


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    written_before = len(atomic.COMMITTED)
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        return int(args.func(args) or 0)
    except (BenchError, OSError) as err:  # OSError: an unwritable output, a full disk (in its own words)
        print(one_line(f"daa-bench {args.command}: error: {err}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        how = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        print(one_line(f"daa-bench {args.command}: {how}; {_after_interrupt(args.command, written_before)}"),
              file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

