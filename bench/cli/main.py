"""`python -m bench <command>`: a thin dispatcher over the command modules in bench/cli.

Every command module exposes `register(subparsers)`, which adds its parser and sets
`func`. A BenchError becomes one line on stderr and exit status 2.
"""

import argparse
import importlib
import sys

from bench.common.errors import BenchError

COMMAND_MODULES = (
    "bench.cli.eval",
    "bench.cli.download",
    "bench.cli.report",
    "bench.cli.table",
    "bench.cli.train",
    "bench.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daa-bench", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BenchError as err:
        print(f"daa-bench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # an unwritable output path, a full disk: the system's own words
        print(f"daa-bench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"daa-bench {args.command}: interrupted; no result file was written", file=sys.stderr)
        return 130
