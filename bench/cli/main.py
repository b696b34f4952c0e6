"""`python -m bench <command>`: a thin dispatcher over the command modules in bench/cli.

Every command module exposes `register(subparsers)`, which adds its parser and sets `func`;
modules import nothing heavy at load time (torch, scikit-learn, pandas wait for `func`), so
`--help` is instant. A BenchError becomes one line on stderr and exit status 2.
"""

import argparse
import importlib
import sys

import bench
from bench.common.errors import BenchError

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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, except where there is none to show (None, off flags)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daa-bench", description=bench.__doc__.splitlines()[0] + " `daa-bench COMMAND --help` for each command.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {bench.__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for command in subparsers.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (BenchError, OSError) as err:  # OSError: an unwritable output, a full disk (in its own words)
        print(f"daa-bench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"daa-bench {args.command}: interrupted; {AFTER_INTERRUPT.get(args.command, AFTER_EVAL)}", file=sys.stderr)
        return 130
