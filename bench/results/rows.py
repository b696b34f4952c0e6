"""One row per figure, set beside the published one; written as CSV + JSON and shown as a table.

    rows = figure_rows("daa_coco_sgr_coco-5k", "coco-5k", "SGR", "daa_coco_sgr", True, evaluation)
    write_results(rows, "results/run.csv", "results/run.json", payload)
"""

import contextlib
import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from bench.common.atomic import atomic_path
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS, find_reference, status
from bench.eval.protocols import DIRECTIONS, Protocol, get_protocol

FIELDS = ("run_id", "dataset", "protocol", "model", "checkpoint", "fold", "direction", "metric",
          "value", "reference", "reference_source", "delta", "tolerance", "status")
STATUS_STYLE = {"ok": "green", "off": "bold red", "no-reference": "dim"}


def _figures_of(metrics: dict) -> list[tuple[str, str, float]]:
    """(direction, metric, value) of a metrics dict, rsum last as direction "both"."""
    figures = [(d, name, value) for d in DIRECTIONS for name, value in metrics[d].items()]
    if "rsum" in metrics:
        figures.append(("both", "rsum", metrics["rsum"]))
    return figures


def figure_rows(run_id: str, protocol: Protocol | str, model_label: str, checkpoint_label: str,
                daa: bool, evaluation: dict) -> list[dict]:
    """Every figure of an evaluation (headline, then per fold) with its reference and status."""
    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    headline = "mean" if protocol.folds > 1 else "all"
    groups = [(headline, evaluation["metrics"])]
    groups += [(str(k), fold) for k, fold in enumerate(evaluation.get("folds", []))]
    rows = []
    for fold, metrics in groups:
        for direction, metric, value in _figures_of(metrics):
            value = float(value)
            ref = find_reference(protocol.name, model_label, daa, direction, metric, fold)
            rows.append({
                "run_id": run_id, "dataset": protocol.dataset, "protocol": protocol.name,
                "model": model_label, "checkpoint": checkpoint_label, "fold": fold,
                "direction": direction, "metric": metric, "value": round(value, 4),
                "reference": ref and ref.value, "reference_source": ref.source if ref else "",
                "delta": ref and round(value - ref.value, 4), "tolerance": ref and ref.tolerance,
                "status": status(value, ref),
            })
    return rows


def _builtin(obj):
    """JSON fallback for numpy scalars/arrays and paths in provenance."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def csv_text(rows: Sequence[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if row[k] is None else row[k] for k in FIELDS} for row in rows)
    return buffer.getvalue()


def write_results(rows: Sequence[dict], csv_path, json_path, payload: dict) -> None:
    """Write the CSV and the JSON (payload + "figures") together: both appear, or neither does."""
    outputs = []
    if csv_path is not None:
        outputs.append((csv_path, csv_text(rows)))
    if json_path is not None:
        document = {**payload, "figures": list(rows)}
        outputs.append((json_path, json.dumps(document, indent=2, default=_builtin) + "\n"))
    with contextlib.ExitStack() as stack:
        for path, text in outputs:
            stack.enter_context(atomic_path(path)).write_text(text, encoding="utf-8")


def _number(value, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def print_table(rows: Sequence[dict], console: Console | None = None) -> None:
    """Headline figures: ours, paper, delta, coloured by status (per-fold rows stay in the CSV)."""
    console = console or Console()
    headline = [row for row in rows if row["fold"] in WHOLE_PROTOCOL_FOLDS]
    if not headline:
        return
    first = headline[0]
    table = Table(title=f"{first['model']} on {first['protocol']} ({first['checkpoint']})",
                  box=box.SIMPLE_HEAD)
    for name in ("dir", "metric", "ours", "paper", "delta", "tol", "source", "status"):
        table.add_column(name, justify="right" if name in ("ours", "paper", "delta", "tol") else "left")
    for row in headline:
        style = STATUS_STYLE[row["status"]]
        table.add_row(row["direction"], row["metric"], _number(row["value"], ".2f"),
                      _number(row["reference"], ".1f"), _number(row["delta"], "+.2f"),
                      _number(row["tolerance"], ".1f"), row["reference_source"],
                      f"[{style}]{row['status']}[/{style}]")
    counts = {s: sum(row["status"] == s for row in rows) for s in STATUS_STYLE}
    table.caption = (f"{counts['ok']} ok, {counts['off']} off, {counts['no-reference']} without "
                     f"reference (all folds); per-fold rows are in the CSV")
    console.print(table)
