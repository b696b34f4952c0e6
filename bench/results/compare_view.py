"""How `compare` shows its results: the gains CSV and the tables (100 columns on a terminal; whole,
never cut, in a pipe or a log)."""

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from bench.common.terminal import shown
from bench.common.wide_tables import print_table
from bench.eval.protocols import DIRECTIONS
from bench.results import compare, query_changes
from bench.results.interval_text import interval_text, p_text
from bench.results.rows import dict_csv, headline_table

TEXT_WIDTH = 34  # characters of a caption shown per cell; the CSV has them whole


def gains_csv(rows: Sequence[dict]) -> str:
    return dict_csv(rows, compare.FIELDS)


def print_gains(rows: Sequence[dict], console: Console) -> None:
    """Headline gains; per-fold rows stay in the CSV."""
    headline, table = headline_table(
        rows, lambda first: f"{first['run_b']} minus {first['run_a']} ({first['protocol']})",
        ("dir", "metric", "A", "B", "gain", "95% interval", "p", "p (Holm)"), left=("dir", "metric"))
    if table is None:
        return
    for row in headline:
        sure = row["ci_low"] > 0 or row["ci_high"] < 0
        gain = f"{row['gain']:+.2f}"
        table.add_row(row["direction"], row["metric"], f"{row['value_a']:.2f}", f"{row['value_b']:.2f}",
                      f"[bold]{gain}[/bold]" if sure else gain, interval_text(row["ci_low"], row["ci_high"], "+"),
                      p_text(row["p_value"]), p_text(row["p_holm"]))
    table.caption = ("paired over the same images; bold: the bootstrap interval excludes 0. p: sign-flip "
                     "permutation test (two-sided), Holm: adjusted over these figures; none for medr. "
                     "medr/meanr: lower is better")
    print_table(table, console)


def _short(text: str, width: int | None = TEXT_WIDTH) -> str:
    """The text cut to `width` (None: whole), without COCO page addresses (the CSV has them); what
    the terminal would interpret (escapes, rich markup) is shown literally."""
    text = text.split(" " + query_changes.COCO_PAGE.split("{")[0])[0]
    return shown(text if width is None or len(text) <= width else text[:width - 1] + "…")


def print_changes(rows: Sequence[dict], console: Console) -> None:
    """The queries whose rank changed most, with each run's top 3 items, one a line (as in the CSV). On
    a terminal the texts are shortened to fit 100 columns; in a pipe or a log they are printed whole."""
    terminal = console.is_terminal
    query_width, item_width = (40, TEXT_WIDTH) if terminal else (None, None)
    for direction in DIRECTIONS:
        chosen = [row for row in rows if row["direction"] == direction]
        if not chosen:
            continue
        table = Table(title=f"{direction}: queries whose rank changed most (rank A -> B)",
                      box=box.SIMPLE_HEAD, width=100 if terminal else None)
        for name in ("change", "query", "A->B", "top 3 A", "top 3 B"):
            table.add_column(name, overflow="fold")
        for row in chosen:
            items = {run: row[f"top3_{run}"].split(query_changes.ITEM_SEPARATOR) for run in ("a", "b")}
            tops = ["\n".join(_short(item, item_width) for item in items[run]) for run in ("a", "b")]
            table.add_row(row["change"], _short(row["query"], query_width), f"{row['rank_a']}->{row['rank_b']}",
                          *tops)
        print_table(table, console)
