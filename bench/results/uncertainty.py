"""What a run's per-query results add to its outputs: bootstrap intervals and `<run>.queries.npz`.

    extra = query_outputs(evaluation.pop("queries"), "coco-5k", split.texts, Path("results/run.json"))
    rows = figure_rows(..., intervals=extra.intervals); payload |= extra.payload
"""

from dataclasses import dataclass
from pathlib import Path

from bench.eval import bootstrap, per_query

QUERIES_SUFFIX = ".queries.npz"


@dataclass(frozen=True)
class QueryOutputs:
    intervals: dict  # {group: {(direction, metric): (low, high)}}
    path: Path | None  # where the per-query file goes (None: no result file was asked for)
    data: bytes  # the .npz
    payload: dict  # what the result JSON says about both


def queries_path(result_path) -> Path:
    """`results/run.json` -> `results/run.queries.npz` (beside the run's JSON or CSV)."""
    result_path = Path(result_path)
    return result_path.with_name(result_path.stem + QUERIES_SUFFIX)


def intervals_json(intervals: dict) -> dict:
    """{group: {direction: {metric: [low, high]}}}: the intervals as the JSON holds them."""
    document: dict = {}
    for group, figures in intervals.items():
        for (direction, metric), bounds in figures.items():
            document.setdefault(group, {}).setdefault(direction, {})[metric] = [round(b, 4) for b in bounds]
    return document


def query_outputs(queries: dict, protocol: str, captions, result_path=None,
                  settings: bootstrap.Settings = bootstrap.Settings()) -> QueryOutputs:
    """Intervals of every figure and the per-query file of one run (`result_path`: its JSON or CSV)."""
    intervals = bootstrap.intervals(bootstrap.replicates(queries, settings), settings.confidence)
    data = per_query.to_npz_bytes(queries, protocol, captions)
    path = queries_path(result_path) if result_path is not None else None
    payload = {
        "bootstrap": settings.record(),
        "intervals": intervals_json(intervals),
        "queries": {"file": path.name if path else None, "sha256": per_query.sha256(data),
                    "i2t": len(queries["i2t"]["rank"]), "t2i": len(queries["t2i"]["rank"])},
    }
    return QueryOutputs(intervals, path, data, payload)
