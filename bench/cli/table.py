"""`python -m bench table`: the paper's DAA-vs-baseline tables (Table 1: COCO, Table 3: Flickr30K).

    python -m bench table --table 1 --results results/tables/table1 --markdown results/table1.md
"""

from pathlib import Path

from bench.common.outputs import output_path
from bench.common.terminal import summary
from bench.results.tables import TABLES


def register(subparsers) -> None:
    table = subparsers.add_parser("table", help="the paper's Table 1 / 3: baseline vs +DAA, ours vs paper",
                                  description=summary(__doc__))
    which = table.add_mutually_exclusive_group(required=True)
    which.add_argument("--table", type=int, choices=sorted(TABLES), help="1: COCO (1K and 5K); 3: Flickr30K 1K")
    which.add_argument("--family", action="store_true",
                       help="the family table per protocol: method, noise, ours [95%%], its own paper's figure, "
                            "status (docs/family.md)")
    table.add_argument("--results", type=Path, default=Path("results"),
                       help="folder of eval --json runs (baseline and DAA checkpoints)")
    table.add_argument("--markdown", type=output_path, help="also write the table as Markdown")
    table.add_argument("--gains-csv", type=output_path,
                       help="also write every +DAA-over-baseline paired bootstrap gain (bench compare's CSV)")
    table.set_defaults(func=run_table)


def _print(grid, console) -> None:
    """The grid in at most 100 columns: one space between columns, a rule between models."""
    from rich import box
    from rich.table import Table

    from bench.common.wide_tables import print_table

    table = Table(title=grid.title, caption="\n".join(grid.notes), box=box.SIMPLE_HEAD, padding=0, show_edge=False,
                  caption_justify="left")
    for name in grid.header:
        table.add_column(name, justify="left" if name in ("model", "run") else "right", no_wrap=True)
    for index, row in enumerate(grid.rows):
        last_of_model = index + 1 == len(grid.rows) or grid.rows[index + 1][0] != row[0]
        table.add_row(*row, end_section=last_of_model)
    print_table(table, console)


def run_table(args) -> int:
    from rich.console import Console

    from bench.common.atomic import write_all
    from bench.common.outputs import check_outputs
    from bench.common.replace_rule import Kind, first_line
    from bench.results import tables
    from bench.results.compare_view import gains_csv
    from bench.results.daa_gains import all_gains, gains_by_pair

    kinds = {"--markdown": Kind("a Markdown file of `table`", lambda path: first_line(path).startswith("## ")),
             "--gains-csv": Kind.text("a gains CSV", gains_csv([]))}
    check_outputs({"--markdown": args.markdown, "--gains-csv": args.gains_csv}, kinds=kinds,
                  inputs={"results": args.results.glob("*.json")})
    if args.family:
        from bench.results.family_table import build_family

        grids = build_family(args.results)
        markdown = tables.to_markdown(grids)
        write_all({args.markdown: (kinds["--markdown"], lambda tmp: tmp.write_text(markdown, encoding="utf-8"))})
        for grid in grids:
            _print(grid, Console())
        return 0
    runs = tables.load_runs(args.results)
    pairs = gains_by_pair(runs) if args.gains_csv else None  # bootstrapped once, for the grids and the CSV
    grids = tables.build(args.table, runs, pairs)
    gains = gains_csv(all_gains(runs, pairs)[0]) if args.gains_csv else ""
    write_all({args.markdown: (kinds["--markdown"], lambda tmp: tmp.write_text(tables.to_markdown(grids),
                                                                                encoding="utf-8")),
               args.gains_csv: (kinds["--gains-csv"], lambda tmp: tmp.write_text(gains, encoding="utf-8"))})
    console = Console()
    for grid in grids:
        _print(grid, console)
    return 0
