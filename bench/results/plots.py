"""A bar chart of one run: our figure beside the published one, per metric and direction.

Reads a run's CSV (`eval --csv`), draws its headline figures in percent (recalls, ASP, PMRP,
ECCV/CxC; not ranks or rsum, whose scales differ) and writes `<run>.png` beside it.
matplotlib is optional (`pip install -e '.[plot]'`).

    python -m bench plot results/daa_coco_sgr_coco-5k.csv
"""

import csv
from pathlib import Path

from bench.common.atomic import atomic_path
from bench.common.errors import BenchError
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS
from bench.results.rows import complete_rows

NOT_PERCENT = ("medr", "meanr", "rsum")


def read_figures(csv_path) -> list[dict]:
    """The rows of a results CSV, checked for the results schema's columns."""
    path = Path(csv_path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise BenchError(f"cannot read results CSV {path}: {err}") from err
    return complete_rows(rows, path)


def headline_bars(rows: list[dict]) -> list[tuple[str, float, float | None]]:
    """(label, ours, paper or None) for each headline figure on the percent scale."""
    bars = []
    for row in rows:
        if row["fold"] in WHOLE_PROTOCOL_FOLDS and row["metric"] not in NOT_PERCENT:
            paper = float(row["reference"]) if row["reference"] not in ("", None) else None
            bars.append((f"{row['direction']} {row['metric']}", float(row["value"]), paper))
    if not bars:
        raise BenchError("the results CSV has no headline figures to plot")
    return bars


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise BenchError("plots need matplotlib: pip install matplotlib "
                         "(or pip install -e '.[plot]')") from err
    return Figure


def plot_run(csv_path, png_path=None) -> Path:
    """Write the bar chart (default: the CSV's path with .png) and return where it went."""
    rows = read_figures(csv_path)
    bars = headline_bars(rows)
    png_path = Path(png_path) if png_path else Path(csv_path).with_suffix(".png")
    figure = _figure_class()(figsize=(max(6.0, 0.55 * len(bars)), 4.0), layout="constrained")
    axes = figure.subplots()
    positions = range(len(bars))
    axes.bar([x - 0.2 for x in positions], [b[1] for b in bars], width=0.4, label="ours")
    published = [(x, b[2]) for x, b in zip(positions, bars) if b[2] is not None]
    if published:
        axes.bar([x + 0.2 for x, _ in published], [v for _, v in published], width=0.4,
                 label="published")
    axes.set_xticks(list(positions), [b[0] for b in bars], rotation=60, ha="right")
    axes.set_ylabel("percent")
    first = rows[0]
    axes.set_title(f"{first['model']} on {first['protocol']} ({first['run_id']})")
    axes.legend()
    with atomic_path(png_path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    return png_path
