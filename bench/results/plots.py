"""A chart of one run: how far each headline figure is from the published one, against its tolerance.

Reads a run's CSV (`eval --csv`) and writes `<run>.png` beside it. Each figure with a published
value is a point at ours minus paper; the grey band is its tolerance (inside: ok, green; outside:
off, red); the error bar is our 95% bootstrap interval, shifted the same way, so a bar that
crosses the zero line (the published value) means the published value lies inside our interval.
A run without any published value (generated data) shows its figures with their intervals.
matplotlib is optional (`pip install -e '.[plot]'`).

    python -m bench plot results/daa_coco_sgr_coco-5k.csv
"""

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from bench.common.atomic import atomic_path
from bench.common.errors import BenchError
from bench.common.inputs import require_file
from bench.common.outputs import check_outputs
from bench.common.replace_rule import PNG
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS
from bench.results.rows import complete_rows
from bench.results.run_result import GENERATED_KEY

STATUS_COLOUR = {"ok": "tab:green", "off": "tab:red", "no-reference": "tab:blue"}


@dataclass(frozen=True)
class Point:
    label: str
    value: float  # ours minus paper (or ours, without any reference)
    low: float | None  # the bootstrap interval, shifted like `value`
    high: float | None
    tolerance: float | None
    status: str


def read_figures(csv_path) -> list[dict]:
    """The rows of a results CSV, checked for the results schema's columns."""
    path = require_file(csv_path, "results CSV")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise BenchError(f"cannot read results CSV {path}: {err}") from err
    return complete_rows(rows, path)


def _number(text) -> float | None:
    """A cell's number; NaN or infinity (a hand-edited CSV) cannot be drawn and is refused."""
    if text in ("", None):
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def headline_points(rows: list[dict]) -> tuple[list[Point], bool]:
    """Headline figures as points, and whether they are differences from the paper.

    With any published value: every figure that has one, at ours minus paper. Without: every
    figure on the percent scale (not medr, meanr, rsum), at its value.
    """
    headline = [row for row in rows if row["fold"] in WHOLE_PROTOCOL_FOLDS]
    referenced = [row for row in headline if _number(row["reference"]) is not None]
    chosen = referenced or [row for row in headline if row["metric"] not in ("medr", "meanr", "rsum")]
    if not chosen:
        raise BenchError("the results CSV has no headline figures to plot")
    points = []
    for row in chosen:
        shift = _number(row["reference"]) if referenced else 0.0
        low, high = _number(row["ci_low"]), _number(row["ci_high"])
        value = _number(row["value"])
        if value is None:
            raise ValueError(f"{row['direction']} {row['metric']} has no value")
        points.append(Point(f"{row['direction']} {row['metric']}", value - shift,
                            None if low is None else low - shift, None if high is None else high - shift,
                            _number(row["tolerance"]), row["status"]))
    return points, bool(referenced)


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise BenchError("plots need matplotlib: pip install matplotlib (or, in a source checkout, "
                         "pip install -e '.[plot]'; from the wheel, pip install 'daa-bench[plot]')") from err
    return Figure


def _draw(axes, points: list[Point], against_paper: bool) -> None:
    positions = list(range(len(points)))
    for x, point in zip(positions, points):
        if point.tolerance is not None:
            axes.fill_between([x - 0.35, x + 0.35], -point.tolerance, point.tolerance, color="0.85", lw=0)
        if point.low is not None and point.high is not None:
            below, above = max(0.0, point.value - point.low), max(0.0, point.high - point.value)  # an edited CSV
            axes.errorbar([x], [point.value], yerr=[[below], [above]],
                          fmt="none", ecolor="0.3", capsize=3)
        axes.plot([x], [point.value], "o", color=STATUS_COLOUR.get(point.status, "tab:blue"))
    axes.set_xticks(positions, [p.label for p in points], rotation=60, ha="right")
    if against_paper:
        axes.axhline(0.0, color="black", lw=0.8)
        axes.set_ylabel("ours − published (0 = published value)")
        ok = sum(p.status == "ok" for p in points)
        axes.text(0.01, 0.98, f"grey: tolerance; bars: our 95% interval; green ok ({ok}), "
                  f"red off ({len(points) - ok})", transform=axes.transAxes, va="top", fontsize=8)
    else:
        axes.set_ylabel("percent (no published value; bars: 95% interval)")


def on_generated_data(csv_path: Path) -> bool:
    """The run's JSON beside its CSV says its data was generated (a CSV alone cannot tell)."""
    try:
        document = json.loads(csv_path.with_suffix(".json").read_text(encoding="utf-8"))
        return bool(document.get("provenance", {}).get(GENERATED_KEY))
    except (OSError, ValueError, AttributeError):
        return False


def plot_run(csv_path, png_path=None) -> Path:
    """Write the chart (default: the CSV's path with .png) and return where it went."""
    png_path = Path(png_path) if png_path else Path(csv_path).with_suffix(".png")
    check_outputs({"png_path": png_path}, kinds={"png_path": PNG}, inputs={"results CSV": csv_path})
    rows = read_figures(csv_path)
    try:
        points, against_paper = headline_points(rows)
    except ValueError as err:  # a hand-edited cell
        raise BenchError(f"results CSV {csv_path}: a figure's cell is not a number ({err})") from None
    figure = _figure_class()(figsize=(max(6.0, 0.55 * len(points)), 4.5), layout="constrained")
    axes = figure.subplots()
    _draw(axes, points, against_paper)
    first = rows[0]
    generated = " — GENERATED DATA, not a reproduction" if on_generated_data(Path(csv_path)) else ""
    axes.set_title(f"{first['model']} on {first['protocol']} ({first['run_id']}){generated}")
    with atomic_path(png_path, PNG, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    return png_path
