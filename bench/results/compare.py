"""Two runs over the same queries: the paired gain of every figure (run B minus run A).

Both runs' per-query files are resampled with the same image draws (bench.eval.paired), so each
resample's gain compares the two models on the same images. Runs whose queries differ (split,
protocol, caption order) are refused: their gain would mix the models with the samples. The
figures compared are recomputed from the per-query files, and a JSON that states other figures
than its per-query file is refused: nothing that can be recomputed is taken on trust.

    a, b = load_run("results/sgraf_sgr.json"), load_run("results/daa_sgr.json")
    rows = paired_rows(a, b)
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common.errors import BenchError
from bench.common.inputs import require_file
from bench.eval import bootstrap, paired, per_query
from bench.results.paper_figures import WHOLE_PROTOCOL_FOLDS
from bench.results.run_result import check_document, per_query_file, read_document

FIELDS = ("run_a", "run_b", "protocol", "fold", "direction", "metric", "value_a", "value_b", "gain",
          "ci_low", "ci_high", "frac_not_better", "p_value", "p_holm")
FIGURE_TOLERANCE = 1e-3  # JSON figures are rounded to 4 decimals at most


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
    require_file(npz, f"per-query file (named by {path.name})")
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


def _metric_figures(group: str, metrics) -> list[tuple[tuple, object]]:
    """((group, direction, metric), value) of a JSON metrics dict ("metrics" or one of "folds")."""
    if not isinstance(metrics, dict):
        return []
    found = [((group, "both", "rsum"), metrics["rsum"])] if "rsum" in metrics else []
    for direction, values in metrics.items():
        if isinstance(values, dict):
            found += [((group, direction, metric), value) for metric, value in values.items()]
    return found


def stated_figures(document: dict) -> list[tuple[tuple, object, str]]:
    """Every figure a result JSON states, as ((group, direction, metric), value, where): its
    metrics, its folds' metrics and its figure rows (what the CSV and summary show)."""
    headline = "all" if not document.get("folds") else "mean"
    stated = [(key, value, "metrics") for key, value in _metric_figures(headline, document.get("metrics"))]
    for fold, metrics in enumerate(document.get("folds") or []):
        stated += [(key, value, "folds") for key, value in _metric_figures(str(fold), metrics)]
    for row in document.get("figures") or []:
        if isinstance(row, dict):
            key = (str(row.get("fold")), row.get("direction"), row.get("metric"))
            stated.append((key, row.get("value"), "figures"))
    return stated


def check_figures(run: ComparedRun) -> None:
    """Refuse a JSON whose figures are not those of its per-query file (an edited JSON, or a
    per-query file copied from another run): compare computes from the per-query values."""
    recomputed = {(group, *key): value for group, figures in bootstrap.point_figures(run.queries).items()
                  for key, value in figures.items()}
    for key, stated, where in stated_figures(run.document):
        if key not in recomputed:
            continue
        try:
            agrees = abs(float(stated) - recomputed[key]) <= FIGURE_TOLERANCE
        except (TypeError, ValueError):
            agrees = False
        if not agrees:
            group, direction, metric = key
            fold = "" if group in WHOLE_PROTOCOL_FOLDS else f" (fold {group})"
            raise BenchError(f"{run.path}: {direction} {metric}{fold} is {stated!r} in its {where} but its "
                             f"per-query file {run.npz.name} gives {recomputed[key]:.4f}; the JSON was "
                             f"edited or the files belong to different runs")


def paired_rows(a: ComparedRun, b: ComparedRun,
                settings: bootstrap.Settings = bootstrap.Settings()) -> list[dict]:
    """One row per figure both runs have (headline, then per fold): B - A with its interval and
    p-values (bench.eval.paired), every figure recomputed from the per-query files."""
    check_same_queries(a, b)
    for run in (a, b):
        check_figures(run)
    rows = []
    for group, gains in paired.paired_gains(a.queries, b.queries, settings).items():
        for (direction, metric), gain in gains.items():
            rows.append({"run_a": a.run_id, "run_b": b.run_id, "protocol": a.document["protocol"],
                         "fold": group, "direction": direction, "metric": metric,
                         **{key: _rounded(value) for key, value in gain.items()}})
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
