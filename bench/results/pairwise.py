"""The pairwise matrix of paired gains: every two runs of a protocol that scored the same queries.

Each cell is row run minus column run (rsum, and R@1 both ways) on the same images: the gain, its
95% paired bootstrap interval and its p-value (sign-flip permutation over images, bench.eval.paired),
Holm-adjusted across every cell of the protocol's matrix, so that "is CREAM at 20% noise really better
than NCR at 20%?" is answered with its uncertainty and with the many comparisons accounted for.
"""

from collections.abc import Sequence
from pathlib import Path

from bench.common.errors import BenchError
from bench.eval.paired import holm
from bench.results import compare
from bench.results.interval_text import interval_text, p_text
from bench.results.leaderboard import Board, Entry
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS

MATRIX_FIGURES = (("both", "rsum"), ("i2t", "r1"), ("t2i", "r1"))
FIELDS = ("protocol", "run_a", "run_b", "method_a", "noise_a", "method_b", "noise_b", "direction", "metric",
          "gain", "ci_low", "ci_high", "p_value", "p_holm")
LABELS = {("both", "rsum"): "rsum", ("i2t", "r1"): "i2t R@1", ("t2i", "r1"): "t2i R@1"}


def method_text(entry: Entry) -> tuple[str, str]:
    provenance = entry.result.provenance
    return str(provenance.get("method", "")), str(provenance.get("noise") or "")


def _pair_cells(a: Entry, b: Entry, runs: dict[Path, compare.ComparedRun]) -> list[dict]:
    """A's gain over B for the matrix's figures (compare gives B - A: turned round)."""
    for entry in (a, b):
        if entry.path not in runs:
            runs[entry.path] = compare.load_run(entry.path)
    cells = []
    for row in compare.paired_rows(runs[b.path], runs[a.path]):
        if row["fold"] in WHOLE_PROTOCOL_FOLDS and (row["direction"], row["metric"]) in MATRIX_FIGURES:
            cells.append({"run_a": a.result.run_id, "run_b": b.result.run_id,
                          **dict(zip(("method_a", "noise_a"), method_text(a))),
                          **dict(zip(("method_b", "noise_b"), method_text(b))),
                          **{k: row[k] for k in ("direction", "metric", "gain", "ci_low", "ci_high", "p_value")}})
    return cells


def board_cells(board: Board) -> tuple[list[dict], list[str]]:
    """Every pair of the board's runs over the same queries (best rsum first), Holm over all its cells."""
    cells, notes, runs = [], [], {}
    for i, a in enumerate(board.entries):
        for b in board.entries[i + 1:]:
            if a.queries is None or a.queries != b.queries:
                continue
            try:
                cells += _pair_cells(a, b, runs)
            except BenchError as err:
                notes.append(f"{a.result.run_id} vs {b.result.run_id}: {err}")
    tested = {n: cell["p_value"] for n, cell in enumerate(cells) if cell["p_value"] is not None}
    adjusted = holm(tested) if tested else {}
    for n, cell in enumerate(cells):
        cell.update(protocol=board.protocol, p_holm=adjusted.get(n))
    return cells, notes


def _cell_text(cell: dict | None) -> str:
    if cell is None:
        return "–"
    p = "" if cell["p_holm"] is None else f" p {p_text(cell['p_holm'])}"
    return f"{cell['gain']:+.2f} {interval_text(cell['ci_low'], cell['ci_high'], '+')}{p}"


def matrix_markdown(board: Board, cells: list[dict], notes: list[str]) -> str:
    """One matrix per figure: row run minus column run, [95% interval], Holm-adjusted p."""
    names = [e.result.run_id for e in board.entries if any(e.result.run_id in (c["run_a"], c["run_b"]) for c in cells)]
    if not names:
        return ""
    label = {e.result.run_id: " ".join(filter(None, method_text(e))) for e in board.entries}
    lines = [f"### {board.protocol}", ""]
    for figure in MATRIX_FIGURES:
        found = {(c["run_a"], c["run_b"]): c for c in cells if (c["direction"], c["metric"]) == figure}
        lines += [f"{LABELS[figure]}: row minus column", "",
                  "| run (method noise) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for row in names:
            texts = ["·" if row == col else _cell_text(found.get((row, col))) for col in names]
            lines.append(f"| {row} ({label[row]}) | " + " | ".join(texts) + " |")
        lines.append("")
    return "\n".join(lines + [f"- {note}" for note in notes]) + "\n"


def pairwise_section(board_list: Sequence[Board]) -> tuple[str, list[dict]]:
    """summary.md's pairwise section and every cell (summary_pairwise.csv)."""
    parts, all_cells = [], []
    for board in board_list:
        cells, notes = board_cells(board)
        all_cells += cells
        text = matrix_markdown(board, cells, notes)
        if text:
            parts.append(text)
    if not parts:
        return "", all_cells
    intro = ("\n## Pairwise paired gains (runs over the same queries)\n\n"
             "Each cell: row run minus column run on the same images, [95% paired bootstrap interval], "
             "p: sign-flip permutation test, Holm-adjusted across every cell of the protocol's matrices "
             "(all cells: summary_pairwise.csv).\n\n")
    return intro + "\n".join(parts), all_cells
