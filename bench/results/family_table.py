"""The family table: per protocol, every checkpoint run with its method and noise ratio, our figures
with their 95% intervals, its own paper's figure and the status (`python -m bench table --family`)."""

from pathlib import Path

from bench.common.errors import BenchError
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS
from bench.results.rows import with_interval
from bench.results.run_result import find_results
from bench.results.tables import MISSING, Grid, is_other_model

COLUMNS = (("i2t", "r1"), ("i2t", "r5"), ("i2t", "r10"), ("t2i", "r1"), ("t2i", "r5"), ("t2i", "r10"),
           ("both", "rsum"))
HEADER = ["method", "noise", "run", "i2t R@1", "i2t R@5", "i2t R@10", "t2i R@1", "t2i R@5", "t2i R@10", "rsum",
          "status"]


def _cell(row: dict | None) -> str:
    if row is None:
        return MISSING
    paper = row.get("reference")
    return with_interval(row) + ("" if paper in (None, "") else f" ({float(paper):.1f})")


def _status(rows: list[dict]) -> str:
    """off if any recall or rsum is off; ok if all have a reference and are ok; else no-reference."""
    statuses = {row["status"] for row in rows}
    return "off" if "off" in statuses else "ok" if statuses == {"ok"} else sorted(statuses)[0] if statuses else MISSING


def build_family(results_dir: Path) -> list[Grid]:
    """One grid per protocol; runs on generated data and other models' score files are left out."""
    found = [(p, r) for p, r in find_results(Path(results_dir), recursive=False)
             if r.figures and not r.generated_data and not is_other_model(r)]
    if not found:
        raise BenchError(f"{results_dir}: no checkpoint run on a real dataset (eval --json) to tabulate")
    grids = []
    for protocol in sorted({r.protocol for _, r in found}):
        rows = []
        for path, result in sorted((item for item in found if item[1].protocol == protocol),
                                   key=lambda item: (str(item[1].provenance.get("method", "")), item[0].name)):
            headline = {(f["direction"], f["metric"]): f for f in result.figures if f["fold"] in WHOLE_PROTOCOL_FOLDS}
            shown = [headline.get(column) for column in COLUMNS]
            rows.append([str(result.provenance.get("method", "SGRAF")), str(result.provenance.get("noise") or "?"),
                         result.run_id, *(_cell(row) for row in shown), _status([r for r in shown if r])])
        notes = ["cells: ours [95% bootstrap interval over images] (the method's own paper, where confirmed); "
                 "status: ok/off against that figure with the usual tolerance, no-reference where none is confirmed"]
        grids.append(Grid(f"The SGRAF family, {protocol}", HEADER, rows, notes))
    return grids
