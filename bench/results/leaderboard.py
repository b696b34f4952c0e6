"""Every run of a protocol on one board, sorted by rsum, each beside the best DAA run on its queries.

Released checkpoints, your own and other models' score files (`eval --scores`) stand together.
Each run's gain over the best DAA run (the DAA run with the highest rsum among those that scored
the same queries: generated data shares a protocol name with the real split) is the paired
bootstrap of `compare`; where there is none, the board says why.
`report` puts the boards in summary.md and their columns (LEADERBOARD_FIELDS) in summary.csv.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common.errors import BenchError
from bench.eval.protocols import DIRECTIONS
from bench.results import compare
from bench.results.interval_text import interval_text
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS
from bench.results.rows import with_interval
from bench.results.run_result import RunResult
from bench.results.tables import is_other_model

LEADERBOARD_FIELDS = ("method", "noise", "rank", "best_daa_run",  # method and noise: bench.family.identity
                       "gain_vs_best_daa", "gain_ci_low", "gain_ci_high", "gain_p_value")
BOARD_METRICS = ("r1", "asp", "pmrp")  # per direction, then rsum; the rest of the figures are in the CSV
LABELS = {"r1": "R@1", "asp": "ASP", "pmrp": "PMRP"}


@dataclass
class Entry:
    """One run on a board: its headline rows by (direction, metric), and its gains over the best DAA run."""

    path: Path
    result: RunResult
    headline: dict
    best_daa: "Entry | None" = None  # the best DAA run over the same queries
    gains: dict = field(default_factory=dict)  # (fold, direction, metric) -> compare row
    note: str = ""  # why there is no gain (no DAA run on these queries, no per-query file)

    @property
    def rsum(self) -> float:
        row = self.headline.get(("both", "rsum"))
        return float(row["value"]) if row else float("-inf")

    @property
    def kind(self) -> str:
        if is_other_model(self.result):
            return "other model"
        own = any(row["status"] == "own" for row in self.headline.values())
        return ("own " if own else "") + ("DAA" if self.result.provenance.get("daa") else "baseline")

    @property
    def queries(self) -> str | None:
        """What identifies the queries: the split's caption sha256 (generated data and the real
        split share a protocol name, never their captions)."""
        return ((self.result.provenance.get("data") or {}).get("captions_sha256"))


@dataclass
class Board:
    protocol: str
    entries: list[Entry]  # best rsum first


def _entry(path: Path, result: RunResult) -> Entry:
    headline = {(r["direction"], r["metric"]): r for r in result.figures if r["fold"] in WHOLE_PROTOCOL_FOLDS}
    return Entry(path, result, headline)


def _add_gains(entries: list[Entry]) -> None:
    """Each entry's paired gains over the best DAA run on its queries (that run itself: exactly zero)."""
    best: dict[str | None, Entry] = {}
    for entry in entries:  # best rsum first
        if entry.kind.endswith("DAA") and entry.queries is not None:
            best.setdefault(entry.queries, entry)
    loaded: dict[Path, compare.ComparedRun] = {}
    for entry in entries:
        entry.best_daa = best.get(entry.queries)
        if entry.best_daa is None:
            entry.note = "no DAA run over the same queries"
            continue
        try:
            if entry.best_daa.path not in loaded:
                loaded[entry.best_daa.path] = compare.load_run(entry.best_daa.path)
            rows = compare.paired_rows(loaded[entry.best_daa.path], compare.load_run(entry.path))
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
    for entries in by_protocol.values():
        entries.sort(key=lambda e: -e.rsum)
        _add_gains(entries)
    return [Board(protocol, entries) for protocol, entries in sorted(by_protocol.items())]


def csv_columns(board_list: Sequence[Board]) -> dict[tuple, dict]:
    """(run_id, fold, direction, metric) -> the LEADERBOARD_FIELDS of that figure row in summary.csv."""
    columns = {}
    for board in board_list:
        for rank, entry in enumerate(board.entries, start=1):
            for row in entry.result.figures:
                key = (row["fold"], row["direction"], row["metric"])
                gain = entry.gains.get(key, {})
                columns[(entry.result.run_id, *key)] = {
                    "method": entry.result.provenance.get("method", ""),
                    "noise": entry.result.provenance.get("noise") or "",
                    "rank": rank, "best_daa_run": entry.best_daa.result.run_id if entry.best_daa else "",
                    "gain_vs_best_daa": gain.get("gain", ""), "gain_ci_low": gain.get("ci_low", ""),
                    "gain_ci_high": gain.get("ci_high", ""), "gain_p_value": gain.get("p_value", "")}
    return columns


def _gain_cell(entry: Entry) -> str:
    gain = entry.gains.get(("all", "both", "rsum")) or entry.gains.get(("mean", "both", "rsum"))
    if gain is None:
        return "–"
    interval = interval_text(gain["ci_low"], gain["ci_high"], "+")
    return f"{gain['gain']:+.2f} {interval} vs {entry.best_daa.result.run_id}"


def board_markdown(board: Board) -> str:
    present = {key for entry in board.entries for key in entry.headline}
    columns = [(d, m) for d in DIRECTIONS for m in BOARD_METRICS if (d, m) in present] + [("both", "rsum")]
    header = ["#", "run", "model", "method", "noise", "kind"]
    header += [f"{d} {LABELS[m]}" if d != "both" else "rsum" for d, m in columns]
    header.append("rsum gain over the best DAA run [95%]")
    lines = [f"### {board.protocol}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, entry in enumerate(board.entries, start=1):
        provenance = entry.result.provenance
        cells = [str(rank), entry.result.run_id, entry.headline.get(("both", "rsum"), {}).get("model", ""),
                 str(provenance.get("method", "")), str(provenance.get("noise") or ""), entry.kind]
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
             "Each cell: ours [95% interval]. Gain: paired bootstrap over the same images "
             "against the best DAA run on those queries (every figure's gain and p-value is in summary.csv).\n\n")
    return intro + "\n".join(board_markdown(board) for board in board_list)
