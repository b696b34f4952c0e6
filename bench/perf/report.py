"""Benchmark rows to CSV (atomically) and to a rich table."""

import datetime
from pathlib import Path

from rich.table import Table

from bench.common.atomic import write_text
from bench.common.replace_rule import Kind
from bench.common.wide_tables import print_table
from bench.results.rows import dict_csv


def write_rows(rows: list[dict], path: str, kind: Kind | None = None) -> Path:
    """The rows as CSV; `kind` (default: a CSV of the same columns) says which existing file it may replace."""
    write_text(path, dict_csv(rows, list(dict.fromkeys(key for row in rows for key in row))), kind)
    return Path(path)


def print_rows(rows: list[dict], title: str) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    print_table(table)


def publish(rows: list[dict], out_dir: str, name: str, title: str) -> Path:
    """Write `<out_dir>/<name>-<timestamp>.csv` and print the rows under `title`."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = write_rows(rows, f"{out_dir}/{name}-{stamp}.csv")
    print_rows(rows, f"{title} -> {path}")
    return path
