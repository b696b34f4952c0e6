"""Benchmark rows to CSV (atomically) and to a rich table."""

import csv
import datetime
import io
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common.atomic import write_text


def write_rows(rows: list[dict], path: str) -> Path:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
    return Path(path)


def print_rows(rows: list[dict], title: str) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    Console(width=max(160, Console().width)).print(table)


def publish(rows: list[dict], out_dir: str, name: str, title: str) -> Path:
    """Write `<out_dir>/<name>-<timestamp>.csv` and print the rows under `title`."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = write_rows(rows, f"{out_dir}/{name}-{stamp}.csv")
    print_rows(rows, f"{title} -> {path}")
    return path
