"""One row per figure, set beside the published one; the CSV text and the terminal table of them.

    rows = figure_rows("daa_coco_sgr_coco-5k", "coco-5k", "SGR", "daa_coco_sgr", True, evaluation)
    print(csv_text(rows))
"""

import csv
import io
import math
from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from bench.common import wide_tables
from bench.common.errors import BenchError
from bench.common.terminal import shown, without_controls
from bench.eval.protocols import DIRECTIONS, Protocol, get_protocol
from bench.results.interval_text import interval_text
from bench.results.paper_figures import (
    PAPER_METHODS,
    WHOLE_PROTOCOL_FOLDS,
    family_reference,
    find_reference,
    status,
)

FIELDS = ("run_id", "dataset", "protocol", "model", "checkpoint", "fold", "direction", "metric",
          "value", "ci_low", "ci_high", "reference", "reference_source", "delta", "tolerance", "status",
          "within_ci")
INTERVAL_FIELDS = ("ci_low", "ci_high", "within_ci")  # absent from results written before intervals
# "own": a checkpoint that is not a released one; the paper's figure is shown for orientation only.
# "other-model": another model's score matrix (`eval --scores`); the paper's DAA figures are no reference.
STATUS_STYLE = {"ok": "green", "off": "bold red", "own": "cyan", "no-reference": "dim", "other-model": "magenta"}
OTHER_MODEL = "other-model"
STATUSES = tuple(STATUS_STYLE)
NUMERIC_FIELDS = ("value", "ci_low", "ci_high", "reference", "delta", "tolerance")


def _figures_of(metrics: dict) -> list[tuple[str, str, float]]:
    """(direction, metric, value) of a metrics dict, rsum last as direction "both"."""
    figures = [(d, name, value) for d in DIRECTIONS for name, value in metrics[d].items()]
    if "rsum" in metrics:
        figures.append(("both", "rsum", metrics["rsum"]))
    return figures


def within_interval(reference, low, high) -> bool | None:
    """Does the published value lie inside our bootstrap interval? None when either is missing,
    or when the interval is a single point (it cannot tell a figure from its neighbours)."""
    if reference is None or low is None or high is None or low >= high:
        return None
    return bool(low <= reference <= high)


def figure_rows(run_id: str, protocol: Protocol | str, model_label: str, checkpoint_label: str,
                daa: bool, evaluation: dict, intervals: dict | None = None, compare: bool = True,
                own: bool = False, other_model: bool = False,
                method: tuple[str, str | None] | None = None) -> list[dict]:
    """Every figure of an evaluation (headline, then per fold) with its reference and status.

    `intervals` ({group: {(direction, metric): (low, high)}}, bench.eval.bootstrap) adds each
    figure's bootstrap interval and whether the published value lies inside it. `compare=False`
    (a run the paper's figures do not apply to) marks every row no-reference. `own`: the
    checkpoints were trained here or by the user, so a distance from the paper is not a
    reproduction failure: such figures get the status "own" instead of ok/off. `other_model`: the
    scores came from another model (`eval --scores`): no reference, status "other-model".
    `method` (name, noise ratio): a family method other than DAA and SGRAF is compared only with its
    own paper's figure at that noise ratio (none confirmed: no-reference).
    """
    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    headline = "mean" if protocol.folds > 1 else "all"
    groups = [(headline, evaluation["metrics"])]
    groups += [(str(k), fold) for k, fold in enumerate(evaluation.get("folds", []))]
    rows = []
    for fold, metrics in groups:
        for direction, metric, value in _figures_of(metrics):
            value = float(value)
            ref = _reference(protocol.name, model_label, daa, method, direction, metric, fold) \
                if compare and not other_model else None
            low, high = (intervals or {}).get(fold, {}).get((direction, metric), (None, None))
            rows.append({
                "run_id": run_id, "dataset": protocol.dataset, "protocol": protocol.name,
                "model": model_label, "checkpoint": checkpoint_label, "fold": fold,
                "direction": direction, "metric": metric, "value": round(value, 4),
                "ci_low": _rounded(low), "ci_high": _rounded(high),
                "reference": ref and ref.value, "reference_source": ref.source if ref else "",
                "delta": ref and round(value - ref.value, 4), "tolerance": ref and ref.tolerance,
                "status": OTHER_MODEL if other_model else "own" if own and ref else status(value, ref),
                "within_ci": within_interval(ref and ref.value, low, high),
            })
    return rows


def _reference(protocol: str, model_label: str, daa: bool, method, direction: str, metric: str, fold: str):
    """The DAA paper's figure for DAA and SGRAF runs; a family method's own paper's otherwise."""
    if method is None or method[0] in PAPER_METHODS:
        return find_reference(protocol, model_label, daa, direction, metric, fold)
    if fold not in WHOLE_PROTOCOL_FOLDS:
        return None
    return family_reference(protocol, model_label, method[0], method[1], direction, metric)


def _rounded(value):
    return None if value is None else round(float(value), 4)


def _blank_if_missing(value):
    """None (a figure without reference) and pandas' NaN both become an empty CSV cell."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def check_columns(columns, source) -> None:
    """Raise unless `columns` (a CSV's header) hold the results columns; the interval ones may lack."""
    missing = set(FIELDS) - set(INTERVAL_FIELDS) - set(columns) if len(columns) else set(FIELDS)
    if missing:
        raise BenchError(f"{source} is not a results CSV: it lacks columns {', '.join(sorted(missing))}")


def complete_rows(rows: list[dict], source) -> list[dict]:
    """CSV rows checked for the results columns; files older than the intervals get them empty."""
    check_columns(rows[0] if rows else (), source)
    return [{name: "" for name in INTERVAL_FIELDS} | row for row in rows]


def dict_csv(rows: Iterable[dict], fields: Sequence[str]) -> str:
    """CSV text of `rows` under a header of `fields` (the results, gains and changes CSVs); text
    cells lose control characters (a caption's escapes would reach whoever `cat`s the file)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: without_controls(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def csv_text(rows: Sequence[dict], fields: Sequence[str] = FIELDS) -> str:
    """The results CSV (the one writer of it: per run, and the summary with its leaderboard columns)."""
    return dict_csv(({k: _blank_if_missing(row.get(k)) for k in fields} for row in rows), fields)


def _number(value, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def with_interval(row: dict) -> str:
    """`value [low, high]`: the figure and its bootstrap interval (not symmetric: medr, 0%/100%)."""
    interval = interval_text(row.get("ci_low"), row.get("ci_high"))
    return format(float(row["value"]), ".2f") + (f" {interval}" if interval else "")


def status_counts(rows: Sequence[dict]) -> dict[str, int]:
    """How many of `rows` have each status (every status present, 0 included)."""
    return {s: sum(row["status"] == s for row in rows) for s in STATUSES}


def _yes_no(flag) -> str:
    return {True: "yes", False: "no", "True": "yes", "False": "no"}.get(flag, "")


def headline_table(rows: Sequence[dict], title_of, columns: Sequence[str], left: Sequence[str],
                   may_wrap: Sequence[str] | None = None) -> tuple[list[dict], Table | None]:
    """The headline rows (whole protocol, no folds) and an empty titled table for them.

    `title_of(first_row)` gives the title; `left` columns are left-justified, the rest right;
    `may_wrap`, when given, names the only columns that may wrap. No headline rows: no table.
    """
    headline = [row for row in rows if row["fold"] in WHOLE_PROTOCOL_FOLDS]
    if not headline:
        return headline, None
    table = Table(title=shown(title_of(headline[0])), box=box.SIMPLE_HEAD)  # file names are no markup
    for name in columns:
        table.add_column(name, justify="left" if name in left else "right",
                         no_wrap=may_wrap is not None and name not in may_wrap)
    return headline, table


def print_table(rows: Sequence[dict], console: Console | None = None) -> None:
    """Headline figures: ours, paper, delta, coloured by status (per-fold rows stay in the CSV)."""
    console = console or Console()
    headline, table = headline_table(
        rows, lambda first: f"{first['model']} on {first['protocol']} ({first['checkpoint']})",
        ("dir", "metric", "ours [95% interval]", "paper", "delta", "tol", "status", "in CI", "source"),
        left=("dir", "metric", "source", "status"),
        may_wrap=("source",))  # on a narrow terminal the source wraps, never a number
    if table is None:
        return
    for row in headline:
        style = STATUS_STYLE[row["status"]]
        table.add_row(row["direction"], row["metric"], with_interval(row),
                      _number(row["reference"], ".1f"), _number(row["delta"], "+.2f"),
                      _number(row["tolerance"], ".1f"), f"[{style}]{row['status']}[/{style}]",
                      _yes_no(row.get("within_ci")), row["reference_source"])
    counts = status_counts(rows)
    parts = [f"{counts['ok']} ok", f"{counts['off']} off"]
    if counts["own"]:
        parts = [f"{counts['own']} own checkpoint (not a released one: paper figures for orientation, no ok/off)"]
    if counts[OTHER_MODEL]:
        parts = [f"{counts[OTHER_MODEL]} of another model (the paper's DAA figures are no reference for it)"]
    else:
        parts.append(f"{counts['no-reference']} without reference")
    folds = any(row["fold"] not in WHOLE_PROTOCOL_FOLDS for row in rows)
    table.caption = ", ".join(parts) + (" (all folds); per-fold rows are in the CSV" if folds else "")
    wide_tables.print_table(table, console)
