"""Benchmark rows to CSV (atomically) and to a rich table."""

import csv
import io
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.atomic import write_text


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
