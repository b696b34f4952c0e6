"""`python -m bench report`: gather every run under a folder into summary.csv and summary.md.

    python -m bench report --results results [--plots]

Reads each `<run>.json` written by `eval --json` (a `<run>.csv` beside it wins, so a corrected CSV
is summarised as you see it), puts every headline figure beside the paper's, adds the DAA gains of
each baseline/+DAA pair found in one folder, and links or (with --plots) draws each run's chart.
Runs on generated data (`make demo`) are summarised apart, never beside the paper.
"""

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="gather results/<run>.json into results/summary.csv and results/summary.md",
        description=__doc__)
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder holding the runs' JSON (and CSV) files")
    parser.add_argument("--plots", action="store_true",
                        help="(re)draw each run's chart <run>.png beside its CSV (needs matplotlib); "
                             "without it, existing charts are linked and none is drawn")
    parser.set_defaults(func=run)


def draw_charts(results: Path) -> str:
    """A chart beside every run CSV (matplotlib optional: say so and go on without)."""
    from bench.common.errors import BenchError
    from bench.results.plots import plot_run

    drawn = 0
    for csv_path in sorted(results.rglob("*.csv")):
        if csv_path.stem == "summary" or not csv_path.with_suffix(".json").is_file():
            continue
        try:
            plot_run(csv_path)
        except BenchError as err:
            return f"charts skipped: {err}"
        drawn += 1
    return f"{drawn} chart(s) drawn"


def run(args) -> int:
    from bench.results.summary import report_counts, write_summary

    charts = draw_charts(args.results) if args.plots and args.results.is_dir() else ""
    csv_path, md_path, rows = write_summary(args.results)
    if charts:
        print(charts)
    print(f"summarised {len({row['run_id'] for row in rows})} run(s): {csv_path}, {md_path}")
    print(report_counts(rows))  # the line summary.md has
    return 0
