"""`python -m bench compare RUN_A RUN_B`: is B better than A beyond the noise of the query sample?

    python -m bench compare results/tables/table1/coco-5k-sgraf-sgr.json \
        results/tables/table1/coco-5k-daa-sgr.json --queries

Both runs are resampled over the same images (paired): for every figure, the gain B - A with
its 95% bootstrap interval, and (but for medr) a sign-flip permutation p-value, raw and
Holm-adjusted over the figures compared (docs/statistics.md). `--queries` adds the queries
whose rank changed most, with what each run retrieved for them. Heavy imports happen in `run`.
"""

from pathlib import Path

from bench.common.outputs import output_path
from bench.common.terminal import summary


def register(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="paired gain of run B over run A, with its interval and p-value",
                                   description=summary(__doc__))
    parser.add_argument("run_a", type=Path, help="result JSON of the reference run (eval --json)")
    parser.add_argument("run_b", type=Path, help="result JSON of the run compared with it")
    parser.add_argument("--csv", type=output_path,
                        help="gains CSV to write (default: compare-<A>-vs-<B>.csv beside RUN_B)")
    parser.add_argument("--queries", action="store_true",
                        help="also write and print the queries whose rank changed most")
    parser.add_argument("--top", type=int, default=10, help="queries per direction and kind of change")
    parser.set_defaults(func=run)


def _output_paths(args, run_a, run_b) -> tuple[Path, Path | None]:
    """The gains CSV and, with --queries, the changes CSV beside it (`<stem>.queries.csv`)."""
    gains = args.csv or args.run_b.with_name(f"compare-{run_a.run_id}-vs-{run_b.run_id}.csv")
    return gains, (gains.with_name(gains.stem + ".queries.csv") if args.queries else None)


def run(args) -> int:
    from rich.console import Console

    from bench.common.atomic import write_all
    from bench.common.errors import BenchError
    from bench.common.outputs import check_outputs
    from bench.common.replace_rule import Kind
    from bench.results.compare import load_run, paired_rows
    from bench.results.compare_view import gains_csv, print_changes, print_gains
    from bench.results.query_changes import biggest_changes, changes_csv

    if args.top < 1:
        raise BenchError(f"--top must be at least 1, got {args.top}")
    run_a, run_b = load_run(args.run_a), load_run(args.run_b)
    gains_path, changes_path = _output_paths(args, run_a, run_b)
    kinds = {"--csv": Kind.text("a gains CSV", gains_csv([])), "--queries": Kind.text("a changes CSV", changes_csv([]))}
    check_outputs({"--csv": gains_path, "--queries": changes_path}, kinds=kinds,
                  inputs={"run": [run_a.path, run_b.path], "per-query file": [run_a.npz, run_b.npz]})
    if run_a.document["queries"].get("sha256") == run_b.document["queries"].get("sha256"):
        raise BenchError(f"{args.run_a} and {args.run_b} are the same run (one per-query file): every gain "
                         "would be 0; compare two different runs")
    rows = paired_rows(run_a, run_b)
    changes = biggest_changes(run_a, run_b, args.top) if args.queries else []
    write_all({gains_path: (kinds["--csv"], lambda tmp: tmp.write_text(gains_csv(rows), encoding="utf-8")),
               changes_path: (kinds["--queries"], lambda tmp: tmp.write_text(changes_csv(changes), encoding="utf-8"))})
    console = Console()
    print_gains(rows, console)
    if args.queries:
        print_changes(changes, console)
    console.print("wrote " + ", ".join(str(path) for path in (gains_path, changes_path) if path))
    return 0
