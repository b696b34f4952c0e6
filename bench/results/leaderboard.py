"""Every run of a protocol on one board, sorted by rsum, each beside the best DAA run of that protocol.

Released checkpoints, your own and other models' score files (`eval --scores`) stand together.
Each run's gain over the best DAA run (the DAA run with the highest rsum) is the paired bootstrap
of `compare`, where the two runs scored the same queries; otherwise the board says why not.
`report` puts the boards in summary.md and their columns (LEADERBOARD_FIELDS) in summary.csv.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common.errors import BenchError
from bench.eval.protocols import DIRECTIONS
from bench.results import compare
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS
from bench.results.rows import with_interval
from bench.results.run_result import RunResult

LEADERBOARD_FIELDS = ("rank", "best_daa_run", "gain_vs_best_daa", "gain_ci_low", "gain_ci_high", "p_no_gain")
BOARD_METRICS = ("r1", "asp", "pmrp")  # per direction, then rsum; the rest of the figures are in the CSV
LABELS = {"r1": "R@1", "asp": "ASP", "pmrp": "PMRP"}


@dataclass
class Entry:
    """One run on a board: its headline rows by (direction, metric), and its gains over the best DAA run."""

    path: Path
    result: RunResult
    headline: dict
    gains: dict = field(default_factory=dict)  # (fold, direction, metric) -> compare row
    note: str = ""  # why there is no gain (different queries, no per-query file)

    @property
    def rsum(self) -> float:
        row = self.headline.get(("both", "rsum"))
        return float(row["value"]) if row else float("-inf")

    @property
    def kind(self) -> str:
        provenance = self.result.provenance
        if provenance.get("other_model"):
            return "other model"
        own = any(row["status"] == "own" for row in self.headline.values())
        return ("own " if own else "") + ("DAA" if provenance.get("daa") else "baseline")


@dataclass
class Board:
    protocol: str
    entries: list[Entry]  # best rsum first
    best_daa: Entry | None


def _entry(path: Path, result: RunResult) -> Entry:
    headline = {(r["direction"], r["metric"]): r for r in result.figures if r["fold"] in WHOLE_PROTOCOL_FOLDS}
    return Entry(path, result, headline)


def _add_gains(board: Board) -> None:
    """Paired gains of every entry over the best DAA run (itself included: exactly zero)."""
    if board.best_daa is None:
        return
    try:
        best = compare.load_run(board.best_daa.path)
    except BenchError as err:
        for entry in board.entries:
            entry.note = f"no gains: {err}"
        return
    for entry in board.entries:
        try:
            rows = compare.paired_rows(best, compare.load_run(entry.path))
        except BenchError as err:
            entry.note = str(err)
            continue
        entry.gains = {(r["fold"], r["direction"], r["metric"]): r for r in rows}


def boards(found: Sequence[tuple[Path, RunResult]]) -> list[Board]:
    """One board per protocol (sorted by name) of every run with figures."""
    by_protocol: dict[str, list[Entry]] = {}
    for path, result in found:
        if result.figures:
            by_protocol.setdefault(result.protocol, []).append(_entry(path, result))
    result_boards = []
    for protocol, entries in sorted(by_protocol.items()):
        entries.sort(key=lambda e: -e.rsum)
        daa = [e for e in entries if e.kind.endswith("DAA")]
        board = Board(protocol, entries, daa[0] if daa else None)
        _add_gains(board)
        result_boards.append(board)
    return result_boards


def csv_columns(board_list: Sequence[Board]) -> dict[tuple, dict]:
    """(run_id, fold, direction, metric) -> the LEADERBOARD_FIELDS of that figure row in summary.csv."""
    columns = {}
    for board in board_list:
        for rank, entry in enumerate(board.entries, start=1):
            for row in entry.result.figures:
                key = (row["fold"], row["direction"], row["metric"])
                gain = entry.gains.get(key, {})
                columns[(entry.result.run_id, *key)] = {
                    "rank": rank, "best_daa_run": board.best_daa.result.run_id if board.best_daa else "",
                    "gain_vs_best_daa": gain.get("gain", ""), "gain_ci_low": gain.get("ci_low", ""),
                    "gain_ci_high": gain.get("ci_high", ""), "p_no_gain": gain.get("p_no_gain", "")}
    return columns


def _gain_cell(entry: Entry) -> str:
    gain = entry.gains.get(("all", "both", "rsum")) or entry.gains.get(("mean", "both", "rsum"))
    if gain is None:
        return "–"
    return f"{gain['gain']:+.2f} [{gain['ci_low']:+.2f}, {gain['ci_high']:+.2f}]"


def board_markdown(board: Board) -> str:
    present = {key for entry in board.entries for key in entry.headline}
    columns = [(d, m) for d in DIRECTIONS for m in BOARD_METRICS if (d, m) in present] + [("both", "rsum")]
    best = board.best_daa.result.run_id if board.best_daa else None
    header = ["#", "run", "model", "kind"] + [f"{d} {LABELS[m]}" if d != "both" else "rsum" for d, m in columns]
    header.append(f"rsum gain over {best} [95%]" if best else "rsum gain (no DAA run)")
    lines = [f"### {board.protocol}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, entry in enumerate(board.entries, start=1):
        cells = [str(rank), entry.result.run_id, entry.headline.get(("both", "rsum"), {}).get("model", ""), entry.kind]
        cells += [with_interval(entry.headline[c]) if c in entry.headline else "" for c in columns]
        cells.append(_gain_cell(entry))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {entry.result.run_id}: {entry.note}" for entry in board.entries if entry.note]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def leaderboard_markdown(board_list: Sequence[Board]) -> str:
    """The summary.md section: one board per protocol."""
    if not board_list:
        return ""
    intro = ("\n## Leaderboard per protocol (every run, by rsum)\n\n"
             "Each cell: ours ±half the 95% interval. Gain: paired bootstrap over the same queries "
             "against the protocol's best DAA run (every figure's gain is in summary.csv).\n\n")
    return intro + "\n".join(board_markdown(board) for board in board_list)
