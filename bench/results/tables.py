"""The paper's DAA-versus-baseline tables (Table 1: COCO, Table 3: Flickr30K) from our runs.

For each model, the SGRAF baseline and the +DAA checkpoints side by side, each figure as
`ours (paper)`, then the improvement DAA brings: ours beside the paper's. The paper's claim
is that DAA lifts the semantic metrics (ASP, PMRP) while keeping R@1; this table shows
whether the released checkpoints bear it out on your machine.

    python -m bench table --table 1 --results results/tables/table1
"""

from dataclasses import dataclass
from pathlib import Path

from bench.common.errors import BenchError
from bench.eval.protocols import DIRECTIONS
from bench.results.daa_gains import paired_gains
from bench.results.interval_text import interval_text, p_text
from bench.results.paper_figures import PAPER_METHODS, WHOLE_PROTOCOL_FOLDS, _published
from bench.results.run_result import RunResult, find_results

MODELS = ("SGR", "SAF", "SGRAF")
LABELS = {"r1": "R@1", "asp": "ASP", "pmrp": "PMRP"}
MISSING = "–"


@dataclass(frozen=True)
class TableSpec:
    """One of the paper's tables: its published source and its columns."""

    title: str
    source: str  # `source` in paper-figures.csv
    protocols: tuple[str, ...]
    metrics: tuple[str, ...]

    def columns(self) -> list[tuple[str, str]]:
        return [(d, m) for d in DIRECTIONS for m in self.metrics]


TABLES = {
    1: TableSpec("Table 1 (COCO): SGRAF baseline vs +DAA", "paper-table1",
                 ("coco-1k", "coco-5k"), ("pmrp", "r1", "asp")),
    3: TableSpec("Table 3 (Flickr30K 1K): SGRAF baseline vs +DAA", "paper-table3",
                 ("f30k-1k",), ("r1", "asp")),
}


@dataclass(frozen=True)
class Run:
    """One evaluation result (an `eval --json` file), reduced to what a table needs."""

    path: Path
    protocol: str
    model: str
    daa: bool
    metrics: dict


@dataclass(frozen=True)
class Grid:
    """One protocol's part of a table, ready to print or write."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str]


def _model_label(checkpoints: list[dict]) -> str:
    names = sorted(c["module_name"] for c in checkpoints)
    return "SGRAF" if names == ["SAF", "SGR"] else "+".join(names)


def _is_daa(provenance: dict, path: Path) -> bool:
    """provenance["daa"] when the run recorded it; else the released files' names say it
    (daa_*.pth.tar are DAA, sgraf_*.pth.tar the SGRAF baselines)."""
    if "daa" in provenance:
        return bool(provenance["daa"])
    names = {Path(c["path"]).name.split("_")[0] for c in provenance["checkpoints"]}
    if names in ({"daa"}, {"sgraf"}):
        return names == {"daa"}
    raise BenchError(f"{path}: cannot tell whether it evaluated DAA or baseline checkpoints "
                     f"(no provenance.daa, checkpoint names {sorted(names)}); re-run eval")


def _run_of(path: Path, result: RunResult) -> Run:
    try:
        return Run(path, result.protocol, _model_label(result.provenance["checkpoints"]),
                   _is_daa(result.provenance, path), result.metrics)
    except (KeyError, TypeError) as err:
        raise BenchError(f"{path}: run result lacks provenance.checkpoints ({err})") from err


def is_other_model(result: RunResult) -> bool:
    """A score file from another model (`eval --scores`): never a cell of the paper's tables."""
    return bool(result.provenance.get("other_model"))


def is_paper_method(result: RunResult) -> bool:
    """A run of DAA's or SGRAF's checkpoints (the DAA paper's tables); the family's other methods are in
    the family table. Runs recorded before methods were named are DAA's or SGRAF's."""
    return result.provenance.get("method", "SGRAF") in PAPER_METHODS


def load_runs(results_dir) -> dict[tuple[str, str, bool], Run]:
    """(protocol, model, daa) -> run of SGRAF-family checkpoints; when several runs match, the newest
    file wins. Other models' runs, and runs on generated data (the demo's: no Flickr30K or COCO
    result), are left out."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise BenchError(f"results folder {results_dir} does not exist; run "
                         f"`make reproduce-table1` (or eval --json into it) first")
    runs: dict[tuple[str, str, bool], Run] = {}
    found = find_results(results_dir, recursive=False)
    for path, result in sorted(found, key=lambda item: item[0].stat().st_mtime):
        if result.generated_data or is_other_model(result) or not is_paper_method(result):
            continue
        run = _run_of(path, result)
        runs[(run.protocol, run.model, run.daa)] = run
    return runs


def _ours(run: Run | None, direction: str, metric: str) -> float | None:
    if run is None:
        return None
    value = run.metrics.get(direction, {}).get(metric)
    return None if value is None else float(value)


def _paper(spec: TableSpec, protocol: str, column: tuple[str, str], model: str, daa: bool) -> float | None:
    return _published(spec.source, (protocol, model, daa, *column), "")


def _pair(ours: float | None, paper: float | None, sign: str = "") -> str:
    text = MISSING if ours is None else format(ours, f"{sign}.2f")
    return text if paper is None else f"{text} ({paper:{sign}.1f})"


def _difference(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _interval(gain: dict | None) -> str:
    return MISSING if gain is None else interval_text(gain["ci_low"], gain["ci_high"], "+", digits=1)


def _model_rows(spec: TableSpec, protocol: str, runs: dict, model: str, gains: dict) -> list[list[str]]:
    """Baseline, +DAA, the DAA gain (ours (paper)) of one model, and the gain's paired bootstrap."""
    cells = {False: [], True: [], "gain": [], "interval": [], "p": []}
    for column in spec.columns():
        gain = gains.get(column)
        cells["interval"].append(_interval(gain))
        cells["p"].append(MISSING if gain is None else p_text(gain["p_holm"]))
        ours = {daa: _ours(runs.get((protocol, model, daa)), *column) for daa in (False, True)}
        paper = {daa: _paper(spec, protocol, column, model, daa) for daa in (False, True)}
        for daa in (False, True):
            cells[daa].append(_pair(ours[daa], paper[daa]))
        cells["gain"].append(_pair(_difference(ours[True], ours[False]),
                                   _difference(paper[True], paper[False]), sign="+"))
    return [[model, "baseline", *cells[False]], [model, "+DAA", *cells[True]],
            [model, "DAA gain", *cells["gain"]], [model, "gain CI", *cells["interval"]],
            [model, "p (Holm)", *cells["p"]]]


def _protocol_grid(spec: TableSpec, protocol: str, runs: dict, pairs: dict | None) -> Grid:
    wanted = [(protocol, m, daa) for m in MODELS for daa in (False, True)]
    header = ["model", "run"] + [f"{d} {LABELS[m]}" for d, m in spec.columns()]
    gains = {model: paired_gains(runs, protocol, model) if pairs is None else pairs.get((protocol, model), ([], None))
             for model in MODELS}
    failed = {model: note for model, (_, note) in gains.items() if note}
    gains = {model: {(r["direction"], r["metric"]): r for r in rows if r["fold"] in WHOLE_PROTOCOL_FOLDS}
             for model, (rows, _) in gains.items()}
    rows = [row for model in MODELS for row in _model_rows(spec, protocol, runs, model, gains[model])]
    notes = [f"cells: ours ({spec.source}); DAA gain: +DAA minus baseline, ours (paper's)",
             "gain CI: 95% paired bootstrap interval over the same images; p (Holm): sign-flip permutation "
             "test over images, Holm-adjusted over the pair's figures (bench compare)",
             *([f"no gain CI for {', '.join(failed)}: {next(iter(failed.values()))}"] if failed else []),
             "runs: " + (", ".join(runs[key].path.name for key in wanted if key in runs) or "none")]
    missing = [f"{m} {'+DAA' if daa else 'baseline'}" for _, m, daa in wanted if (protocol, m, daa) not in runs]
    if missing:
        notes.append("missing: " + ", ".join(missing))
    return Grid(f"{spec.title}, {protocol}", header, rows, notes)


def build(table: int, runs: dict, pairs: dict | None = None) -> list[Grid]:
    """One grid per protocol of the table (the paper's column groups); `pairs`: the DAA gains
    (daa_gains.gains_by_pair(runs)) when already computed, else each grid computes its own."""
    if table not in TABLES:
        raise BenchError(f"no table {table}; choose one of {', '.join(map(str, TABLES))}")
    spec = TABLES[table]
    if not any(key[0] in spec.protocols for key in runs):
        raise BenchError(f"no run for {spec.title} in the results folder: it needs eval results "
                         f"of the {', '.join(spec.protocols)} protocol(s) (runs on generated data, such as "
                         f"the demo's, are never set beside the paper)")
    return [_protocol_grid(spec, protocol, runs, pairs) for protocol in spec.protocols]


def to_markdown(grids: list[Grid]) -> str:
    lines = []
    for grid in grids:
        lines += [f"## {grid.title}", "", "| " + " | ".join(grid.header) + " |",
                  "|" + "---|" * len(grid.header)]
        lines += ["| " + " | ".join(row) + " |" for row in grid.rows]
        lines += [""] + [f"- {note}" for note in grid.notes] + [""]
    return "\n".join(lines)
