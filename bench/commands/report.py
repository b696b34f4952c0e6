"""`python -m bench report [--results DIR]`: merge every run into summary.csv and summary.md."""

from pathlib import Path

from bench.report import write_summary


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="gather results/<run>.json into results/summary.csv and results/summary.md")
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder holding the runs' JSON (and CSV) files (default: results)")
    parser.set_defaults(func=run)


def run(args) -> int:
    csv_path, md_path, n_runs = write_summary(args.results)
    print(f"summarised {n_runs} run(s): {csv_path}, {md_path}")
    return 0
