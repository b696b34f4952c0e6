"""DAA's gain over the SGRAF baseline with its paired bootstrap, for every pair of runs found.

A pair is a baseline run and a +DAA run of the same protocol and model (bench.results.tables
finds them). The gain rows are bench.results.compare's; summary.md shows the headline ones.
"""

from bench.common.errors import BenchError
from bench.results import compare
from bench.results.interval_text import interval_text, p_text
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS

MARKDOWN_METRICS = ("r1", "asp", "pmrp")


def paired_gains(runs: dict, protocol: str, model: str) -> tuple[list[dict], str | None]:
    """Gain rows of +DAA over the baseline (bench.results.compare.FIELDS), and a note when they
    cannot be computed (a run without its per-query file, different queries); ([], None) when
    either run is missing."""
    pair = [runs.get((protocol, model, daa)) for daa in (False, True)]
    if None in pair:
        return [], None
    try:
        return compare.paired_rows(*(compare.load_run(run.path) for run in pair)), None
    except BenchError as err:
        return [], str(err)


def gains_by_pair(runs: dict) -> dict[tuple[str, str], tuple[list[dict], str | None]]:
    """paired_gains of every (protocol, model) that has a run, in sorted order."""
    return {(protocol, model): paired_gains(runs, protocol, model)
            for protocol, model in sorted({(p, m) for p, m, _ in runs})}


def all_gains(runs: dict, pairs: dict | None = None) -> tuple[list[dict], list[str]]:
    """Gain rows of every (protocol, model) that has both runs, and the notes of those that failed
    (`pairs`: gains_by_pair(runs) when already computed)."""
    rows, notes = [], []
    for (protocol, model), (gains, note) in (gains_by_pair(runs) if pairs is None else pairs).items():
        rows += gains
        notes += [f"{protocol} {model}: {note}"] if note else []
    return rows, notes


def gains_markdown(rows: list[dict], notes: list[str]) -> str:
    """A Markdown section: headline gain [95% interval] and Holm-adjusted p per pair of runs."""
    headline = [r for r in rows if r["fold"] in WHOLE_PROTOCOL_FOLDS and r["metric"] in MARKDOWN_METRICS]
    if not headline and not notes:
        return ""
    columns = sorted({(r["direction"], r["metric"]) for r in headline},
                     key=lambda c: (c[0], MARKDOWN_METRICS.index(c[1])))
    lines = ["", "## DAA gain over the SGRAF baseline (paired over the same images)", "",
             "Each cell: +DAA minus baseline [95% bootstrap interval] p (sign-flip permutation test, "
             "Holm-adjusted over the pair's headline figures).", ""]
    if columns:
        lines += ["| protocol | baseline run | DAA run | " + " | ".join(f"{d} {m}" for d, m in columns) + " |",
                  "|" + "---|" * (3 + len(columns))]
        pairs: dict = {}
        for row in headline:
            pairs.setdefault((row["protocol"], row["run_a"], row["run_b"]), {})[(row["direction"], row["metric"])] = row
        for (protocol, run_a, run_b), cells in pairs.items():
            shown = [f"{c['gain']:+.2f} {interval_text(c['ci_low'], c['ci_high'], '+')} p {p_text(c['p_holm'])}"
                     if (c := cells.get(column)) else "" for column in columns]
            lines.append(f"| {protocol} | {run_a} | {run_b} | " + " | ".join(shown) + " |")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"
