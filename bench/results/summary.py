"""Gather every run under results/ into results/summary.csv and a Markdown table beside the paper,
with a leaderboard per protocol (bench.results.leaderboard).

Each run is a `<run>.json` written by `eval --json` (with its figures); a `<run>.csv` beside it
is read instead when present, so a hand-corrected CSV is summarised as the user sees it.
"""

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.common.atomic import write_all
from bench.common.errors import BenchError
from bench.common.outputs import check_outputs
from bench.common.replace_rule import Kind
from bench.eval.protocols import DIRECTIONS
from bench.results import leaderboard, pairwise
from bench.results.daa_gains import all_gains, gains_markdown
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS, tolerance_text
from bench.results.rows import (
    FIELDS,
    INTERVAL_FIELDS,
    NUMERIC_FIELDS,
    check_columns,
    csv_text,
    status_counts,
    with_interval,
)
from bench.results.run_result import RunResult, find_results
from bench.results.tables import load_runs

SUMMARY_STEM = "summary"
MARKDOWN_METRICS = ("r1", "r5", "r10", "asp", "pmrp")  # the paper's columns; medr/meanr stay in CSV
LABELS = {"r1": "R@1", "r5": "R@5", "r10": "R@10", "asp": "ASP", "pmrp": "PMRP", "rsum": "rsum"}


def _run_table(json_path: Path, result: RunResult) -> pd.DataFrame:
    """One run's figures; a CSV beside its JSON wins (a hand-corrected CSV is summarised as seen)."""
    csv_path = json_path.with_suffix(".csv")
    if not csv_path.exists():
        return result.table
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BenchError(f"cannot read results CSV {csv_path}: {err}") from err
    check_columns(table.columns, csv_path)
    for column in INTERVAL_FIELDS:  # results written before the intervals lack them
        if column not in table:
            table[column] = ""
    for column in NUMERIC_FIELDS:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


def _runs_in(results_dir: Path) -> list[tuple[Path, RunResult]]:
    """Every run under `results_dir` (subfolders too, e.g. tables/), by path."""
    if not results_dir.is_dir():
        raise BenchError(f"results folder {results_dir} does not exist; run an evaluation first "
                         f"(make reproduce-all, or python -m bench eval ... --json FILE)")
    return find_results(results_dir)


def _rows_of(results_dir: Path, runs: list[tuple[Path, RunResult]]) -> list[dict]:
    tables = [_run_table(path, result) for path, result in runs]
    tables = [table for table in tables if len(table)]
    if not tables:
        raise BenchError(f"no run results (<run>.json with figures) in {results_dir}")
    rows = pd.concat(tables, ignore_index=True).to_dict("records")
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


def _cell(row: dict) -> str:
    """`ours [low, high] (paper)`, bold with a cross when off the paper beyond tolerance."""
    text = with_interval(row)
    if row["reference"] is not None:
        text += f" ({float(row['reference']):.1f})"
    return f"**{text}** ✗" if row["status"] == "off" else text


def markdown_table(rows: Sequence[dict]) -> str:
    """One line per run with its headline figures; columns only for metrics some run has."""
    headline = [row for row in rows if row["fold"] in WHOLE_PROTOCOL_FOLDS]
    present = {(row["direction"], row["metric"]) for row in headline}
    columns = [(d, m) for d in DIRECTIONS for m in MARKDOWN_METRICS if (d, m) in present]
    columns += [("both", "rsum")] if ("both", "rsum") in present else []
    runs: dict[str, dict] = {}
    for row in headline:
        runs.setdefault(row["run_id"], {"row": row})[(row["direction"], row["metric"])] = row
    header = ["run", "model", "protocol", "checkpoint"]
    header += [f"{d} {LABELS[m]}" if d != "both" else LABELS[m] for d, m in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run_id, figures in runs.items():
        first = figures["row"]
        cells = [run_id, first["model"], first["protocol"], first["checkpoint"]]
        cells += [_cell(figures[c]) if c in figures else "" for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart_links(results_dir: Path) -> str:
    """Markdown links to the runs' bar charts (`<run>.png`, drawn by `report` or `plot`)."""
    charts = sorted(results_dir.rglob("*.png"))
    if not charts:
        return ""
    links = [f"- [{png.stem}]({png.relative_to(results_dir).as_posix()})" for png in charts]
    return "\n## Charts: ours vs published\n\n" + "\n".join(links) + "\n"


def folder_gains(results_dir: Path) -> str:
    """The DAA-gain section for every folder under `results_dir` whose runs pair a baseline with
    +DAA; runs on generated data (the demo's) never pair (load_runs leaves them out)."""
    rows, notes = [], []
    for folder in sorted({p.parent for p in results_dir.rglob("*.json")}):
        try:
            runs = load_runs(folder)
        except BenchError:
            continue
        folder_rows, folder_notes = all_gains(runs)
        rows += folder_rows
        notes += folder_notes
    return gains_markdown(rows, notes)


def counts_line(rows: Sequence[dict]) -> str:
    """How the headline figures (those summary.md shows) stand against the paper."""
    headline = [row for row in rows if row["fold"] in WHOLE_PROTOCOL_FOLDS]
    counts = status_counts(headline)
    own = f", {counts['own']} of own checkpoints (paper for orientation, no ok/off)" if counts["own"] else ""
    own += f", {counts['other-model']} of other models (no reference)" if counts["other-model"] else ""
    return (f"{len(headline)} headline figures: {counts['ok']} ok, {counts['off']} off, "
            f"{counts['no-reference']} without a published reference{own} "
            "(medr and meanr included, per-fold rows not)")


def report_counts(rows: Sequence[dict]) -> str:
    """The one counts line of `report` and summary.md: the runs on real data against the paper, and how
    many runs on generated data are kept apart (rows carry `generated_data`)."""
    generated = {row["run_id"] for row in rows if row.get("generated_data")}
    real = [row for row in rows if not row.get("generated_data")]
    return counts_line(real) + (f"; {len(generated)} run(s) on generated data, summarised apart" if generated else "")


def generated_section(rows: Sequence[dict]) -> str:
    """Runs on generated data (the demo's), apart from the paper's datasets and without its figures."""
    if not rows:
        return ""
    return ("\n## Runs on generated data\n\nScored on generated data (`make demo`), not on Flickr30K or "
            "COCO: no published figure applies, so none is shown and none of these runs enters the "
            "comparisons above.\n\n" + markdown_table(rows))


def summary_markdown(rows: Sequence[dict], charts: str = "", gains: str = "", boards: str = "") -> str:
    """summary.md: the runs on real data beside the paper, then any runs on generated data apart."""
    counts = report_counts(rows)
    generated = [row for row in rows if row.get("generated_data")]
    rows = [row for row in rows if not row.get("generated_data")]
    return (
        summary_markdown_title() + "\n"
        "Each cell: ours [95% bootstrap interval over images] (paper). **Bold ✗** = off "
        f"by more than the tolerance ({tolerance_text()}). The tolerance "
        "asks whether we reproduce the published number; the interval says how much the figure "
        "would move on another sample of test images (summary.csv: ci_low, ci_high, within_ci). "
        "Headline figures only (COCO 1K: mean of the five folds); "
        f"per-fold rows, medr and meanr are in summary.csv.\n\n"
        f"{counts}.\n\n" + markdown_table(rows) + gains + boards + generated_section(generated) + charts
    )


def summary_markdown_title() -> str:
    return "# daa-bench results\n"


def write_summary(results_dir: Path) -> tuple[Path, Path, list[dict]]:
    """Write summary.csv and summary.md (both or neither); return their paths and the rows summarised."""
    csv_path = results_dir / f"{SUMMARY_STEM}.csv"
    md_path = results_dir / f"{SUMMARY_STEM}.md"
    pairs_path = results_dir / f"{SUMMARY_STEM}_pairwise.csv"
    summary_fields = (*FIELDS, "generated_data", *leaderboard.LEADERBOARD_FIELDS)
    kinds = {"the summary CSV": Kind.text("a summary CSV", csv_text([], summary_fields)),
             "the summary Markdown": Kind.text("a summary Markdown", summary_markdown_title()),
             "the pairwise CSV": Kind.text("a pairwise-gains CSV", csv_text([], pairwise.FIELDS))}
    check_outputs({"the summary CSV": csv_path, "the summary Markdown": md_path, "the pairwise CSV": pairs_path},
                  kinds=kinds)
    runs = _runs_in(results_dir)
    rows = _rows_of(results_dir, runs)
    generated = frozenset(result.run_id for _, result in runs if result.generated_data)
    rows = [row | {"generated_data": "yes" if row["run_id"] in generated else ""} for row in rows]  # a CSV column
    board_list = leaderboard.boards([(path, result) for path, result in runs if not result.generated_data])
    columns = leaderboard.csv_columns(board_list)
    ranked = [row | columns.get((row["run_id"], str(row["fold"]), row["direction"], row["metric"]), {})
              for row in rows]
    summary_csv = csv_text(ranked, summary_fields)
    pairs_markdown, cells = pairwise.pairwise_section(board_list)
    markdown = summary_markdown(rows, chart_links(results_dir), folder_gains(results_dir),
                                leaderboard.leaderboard_markdown(board_list) + pairs_markdown)
    pairs_csv = csv_text(cells, pairwise.FIELDS)
    write_all({csv_path: (kinds["the summary CSV"], lambda tmp: tmp.write_text(summary_csv, encoding="utf-8")),
               md_path: (kinds["the summary Markdown"], lambda tmp: tmp.write_text(markdown, encoding="utf-8")),
               pairs_path: (kinds["the pairwise CSV"], lambda tmp: tmp.write_text(pairs_csv, encoding="utf-8"))})
    return csv_path, md_path, rows
