"""Two runs over the same queries: the paired bootstrap gain of every figure (run B minus run A).

Both runs' per-query files are resampled with the same draws (bench.eval.bootstrap seeds them by
fold and direction), so each resample's gain compares the two models on the same queries. Runs
whose queries differ (split, protocol, caption order) are refused: their gain would mix the
models with the samples.

    a, b = load_run("results/sgraf_sgr.json"), load_run("results/daa_sgr.json")
    rows = paired_rows(a, b)
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common.errors import BenchError
from bench.eval import bootstrap, per_query
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS
from bench.results.run_result import check_document, per_query_file, read_document

LOWER_IS_BETTER = ("medr", "meanr")
FIELDS = ("run_a", "run_b", "protocol", "fold", "direction", "metric", "value_a", "value_b", "gain",
          "ci_low", "ci_high", "p_no_gain")


@dataclass(frozen=True)
class ComparedRun:
    """A result JSON with its per-query file, checked against the sha256 the JSON recorded."""

    path: Path
    npz: Path
    run_id: str
    document: dict
    queries: dict


def load_run(json_path) -> ComparedRun:
    path = Path(json_path)
    document = read_document(path)
    check_document(document, str(path), need_folds=True)
    npz = per_query_file(path, document)
    if npz is None:
        raise BenchError(f"{path} names no per-query file: re-run eval with --json (intervals and "
                         f"comparisons need <run>.queries.npz)")
    record = document["queries"]
    if not npz.is_file():
        raise BenchError(f"{npz} (named by {path.name}) is missing")
    if per_query.sha256(npz.read_bytes()) != record.get("sha256"):
        raise BenchError(f"{npz} does not match the sha256 recorded in {path.name}: it changed after the run")
    rows = document.get("figures") or [{}]
    return ComparedRun(path, npz, rows[0].get("run_id", path.stem), document, per_query.load_queries(npz))


def _data(run: ComparedRun) -> dict:
    return (run.document.get("provenance") or {}).get("data") or {}


def check_same_queries(a: ComparedRun, b: ComparedRun) -> None:
    """Refuse (BenchError naming the first difference) unless both runs scored the same queries."""
    facts = [("protocol", a.document.get("protocol"), b.document.get("protocol"))]
    facts += [(f"data manifest {key}", _data(a).get(key), _data(b).get(key))
              for key in ("split", "n_images", "n_captions", "captions_sha256")]
    facts.append(("caption order", a.queries["captions"], b.queries["captions"]))
    for name, first, second in facts:
        if first != second:
            shown = "differs" if name == "caption order" else f"{first!r} vs {second!r}"
            raise BenchError(f"cannot compare {a.path.name} and {b.path.name}: {name} {shown}; "
                             f"a paired comparison needs the same queries")
    for direction in bootstrap.DIRECTIONS:
        for field in ("index", "fold", "coco_id"):
            left, right = a.queries[direction].get(field), b.queries[direction].get(field)
            if (left is None) != (right is None) or (left is not None and not np.array_equal(left, right)):
                raise BenchError(f"cannot compare {a.path.name} and {b.path.name}: their {direction} "
                                 f"queries differ ({field}); a paired comparison needs the same queries")


def _point(document: dict, group: str, direction: str, metric: str) -> float | None:
    metrics = document["metrics"] if group in WHOLE_PROTOCOL_FOLDS else document["folds"][int(group)]
    value = metrics.get("rsum") if direction == "both" else metrics.get(direction, {}).get(metric)
    return None if value is None else float(value)


def paired_rows(a: ComparedRun, b: ComparedRun,
                settings: bootstrap.Settings = bootstrap.Settings()) -> list[dict]:
    """One row per figure both runs have (headline, then per fold): B - A with its interval."""
    check_same_queries(a, b)
    reps_a, reps_b = bootstrap.replicates(a.queries, settings), bootstrap.replicates(b.queries, settings)
    rows = []
    for group, figures in reps_a.items():
        for (direction, metric), values_a in figures.items():
            point_a, point_b = (_point(run.document, group, direction, metric) for run in (a, b))
            if (direction, metric) not in reps_b[group] or point_a is None or point_b is None:
                continue
            gain = bootstrap.paired_gain(values_a, reps_b[group][(direction, metric)], point_a, point_b,
                                         settings.confidence, lower_is_better=metric in LOWER_IS_BETTER)
            rows.append({"run_a": a.run_id, "run_b": b.run_id, "protocol": a.document["protocol"],
                         "fold": group, "direction": direction, "metric": metric,
                         "value_a": round(point_a, 4), "value_b": round(point_b, 4),
                         **{key: round(value, 4) for key, value in gain.items()}})
    return rows
