"""Tables that survive a pipe: on a terminal as wide as the terminal, elsewhere as wide as they need.

Rich lays out a table for 80 columns when stdout is not a terminal (`| tee`, CI logs, `| cat`) and
then cuts cells to `…`; a log must keep every figure and name whole, so there the table gets its
natural width instead.
"""

from rich.console import Console
from rich.measure import Measurement

UNBOUNDED = 10_000  # columns offered when measuring a table's natural width


def natural_width(table, console: Console) -> int:
    """Columns the table takes with no cell wrapped or cut."""
    return Measurement.get(console, console.options.update(max_width=UNBOUNDED), table).maximum


def print_table(table, console: Console | None = None) -> None:
    """Print `table`; outside a terminal, widen the console to the table's natural width for it."""
    console = console or Console()
    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    console.width = max(width, natural_width(table, console))
    try:
        console.print(table)
    finally:
        console.width = width
