"""One evaluation's outcome as a Python object: figures, the paper comparison, provenance, scores.

`bench.evaluate` returns a RunResult; `eval --json/--csv/--save-sims` are its `write`;
`bench.load_result` reads a result JSON back (without the score matrix), and `report` and
`table` read every run of a folder through `find_results`.

    result = bench.load_result("results/coco5k-sgr.json")
    result.table[result.table.status == "off"]

Per-query values and bootstrap intervals (bench.results.uncertainty) travel in `queries`
(numpy, written as `<run>.queries.npz` beside the JSON or CSV) and `extra` (the JSON's
"bootstrap", "intervals" and "queries" keys). A new top-level JSON key goes into `extra`: it is
written and read back without a change here.
"""

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.common.atomic import write_all
from bench.common.errors import BenchError
from bench.common.inputs import require_file
from bench.common.outputs import check_outputs
from bench.eval.protocols import DIRECTIONS, PROTOCOL_NAMES, get_protocol
from bench.results.rows import FIELDS, csv_text, status_counts
from bench.results.run_files import PER_QUERY, RESULT_JSON, RESULTS_CSV, SIMS_KEY, queries_beside, score_matrix_of

if TYPE_CHECKING:
    import pandas

CORE_KEYS = ("protocol", "metrics", "folds", "provenance", "figures")
GENERATED_KEY = "generated_data"  # provenance: what generated the data, for runs not on a real dataset


def _builtin(obj):
    """JSON fallback for numpy scalars/arrays and paths in provenance."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


@dataclasses.dataclass
class RunResult:
    """The figures of one protocol run, each beside its published value, and where they came from."""

    protocol: str  # "f30k-1k" | "coco-1k" | "coco-5k"
    metrics: dict  # {"i2t": {"r1": ..., "asp": ...}, "t2i": {...}, "rsum": ...} (the JSON's "metrics")
    provenance: dict
    figures: list[dict]  # one row per figure, the CSV's columns (bench.results.rows.FIELDS)
    folds: list[dict] | None = None  # per-fold metrics (coco-1k)
    sims: np.ndarray | None = None  # float32 scores (n_images, n_captions); coco-1k: (5, n/5, n) blocks
    extra: dict = dataclasses.field(default_factory=dict)  # further JSON keys: bootstrap, intervals, queries
    queries: dict | None = None  # per-query values, numpy (bench.eval.per_query); not read back from JSON
    queries_npz: bytes | None = None  # `queries` as the .npz file written beside the result

    @property
    def table(self) -> "pandas.DataFrame":
        """The figures as a DataFrame with exactly the CSV's columns."""
        import pandas  # on first use: `report --help` and friends stay light

        return pandas.DataFrame(self.figures, columns=list(FIELDS))

    @property
    def run_id(self) -> str:
        return self.figures[0]["run_id"] if self.figures else ""

    def status_counts(self) -> dict[str, int]:
        """ok / off / no-reference over all rows (per-fold rows included)."""
        return status_counts(self.figures)

    def without_references(self, reason: str) -> "RunResult":
        """A copy compared with no published figure (generated data, mismatched checkpoints)."""
        cleared = dict(reference=None, reference_source="", delta=None, tolerance=None, status="no-reference",
                       within_ci=None)
        figures = [row | cleared for row in self.figures]
        return dataclasses.replace(self, figures=figures, provenance=self.provenance | {"note": reason})

    def on_generated_data(self, source: str) -> "RunResult":
        """A copy marked as scored on generated data (the demo's): no figure is set beside the paper's,
        and `table`, `report` and `plot` keep it apart from runs on the real datasets."""
        marked = self.without_references(f"generated data ({source}); no published reference")
        return dataclasses.replace(marked, provenance=marked.provenance | {GENERATED_KEY: source})

    @property
    def generated_data(self) -> bool:
        """Scored on generated data: its figures mean nothing beside the paper's."""
        return bool(self.provenance.get(GENERATED_KEY))

    def document(self, queries_file: str | None = None, sims_file: str | None = None) -> dict:
        """The result JSON: protocol, metrics, folds (if any), extra keys, provenance, figures; with
        `sims_file`, the score matrix written beside it (so that evaluating the run again may replace it)."""
        folds = {"folds": self.folds} if self.folds is not None else {}
        extra = dict(self.extra)
        if sims_file is not None:
            extra[SIMS_KEY] = {"file": sims_file}
        if queries_file is not None and "queries" in extra:
            extra["queries"] = extra["queries"] | {"file": queries_file}
        return {"protocol": self.protocol, "metrics": self.metrics, **folds, **extra,
                "provenance": self.provenance, "figures": list(self.figures)}

    @classmethod
    def from_document(cls, document: dict, source: str = "result") -> "RunResult":
        check_document(document, source)
        extra = {k: v for k, v in document.items() if k not in CORE_KEYS}
        return cls(document["protocol"], document["metrics"], document["provenance"],
                   list(document.get("figures", [])), document.get("folds"), extra=extra)

    def write(self, *, json_path=None, csv_path=None, sims_path=None) -> None:
        """Write the requested outputs together: each appears only if all of them could be written.

        With a JSON or CSV, the per-query file goes beside it (`<run>.queries.npz`)."""
        if sims_path is not None and self.sims is None:
            raise BenchError(f"{sims_path}: this result holds no score matrix (read back from JSON?)")
        queries = queries_beside(json_path, csv_path) if self.queries_npz is not None else None
        sims_kind = score_matrix_of(json_path)
        check_outputs({"json_path": json_path, "csv_path": csv_path, "sims_path": sims_path,
                       "the per-query file": queries}, inputs=self.inputs(),
                      kinds={"json_path": RESULT_JSON, "csv_path": RESULTS_CSV, "sims_path": sims_kind,
                             "the per-query file": PER_QUERY})
        sims_file = sims_path and os.path.relpath(sims_path, Path(json_path or ".").parent)
        text = json_path and json.dumps(self.document(queries and queries.name, sims_file), indent=2,
                                        default=_builtin) + "\n"
        write_all({
            sims_path: (sims_kind, lambda tmp: _save_npy(tmp, self.sims)),
            queries: (PER_QUERY, lambda tmp: tmp.write_bytes(self.queries_npz)),
            csv_path: (RESULTS_CSV, lambda tmp: tmp.write_text(csv_text(self.figures), encoding="utf-8")),
            json_path: (RESULT_JSON, lambda tmp: tmp.write_text(text, encoding="utf-8")),
        })

    def inputs(self) -> dict[str, list]:
        """The files this run read, as its provenance (evaluate's) records them: no output may replace one."""
        data = self.provenance.get("data") or {}
        folder = Path(data.get("directory", "."))
        return {"checkpoint": [c["path"] for c in self.provenance.get("checkpoints", [])],
                "vocabulary": list(self.provenance.get("vocab", [])),
                "split data": [folder / name for name in data.get("files", {})]}

    def to_json(self, path) -> None:
        self.write(json_path=path)

    def to_csv(self, path) -> None:
        self.write(csv_path=path)

    def save_sims(self, path) -> None:
        """The float32 score matrix as .npy (the `eval --save-sims` layout)."""
        self.write(sims_path=path)


def _is_number(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _check_metrics(metrics, where: str, source: str) -> None:
    if not isinstance(metrics, dict) or not all(isinstance(metrics.get(d), dict) for d in DIRECTIONS):
        raise BenchError(f"{source}: {where} must be an object with {' and '.join(DIRECTIONS)} objects")
    values = [v for d in DIRECTIONS for v in metrics[d].values()] + [metrics.get("rsum")]
    if not all(map(_is_number, values)):
        raise BenchError(f"{source}: {where} holds a value that is not a number")


def check_document(document, source: str, need_folds: bool = False) -> None:
    """A result JSON's core keys have the types every reader (compare, table, report) relies on,
    so a damaged or hand-edited file is one line naming it, never a traceback later. `need_folds`:
    a protocol scored in folds must hold them (compare resamples per fold)."""
    if not isinstance(document, dict):
        raise BenchError(f"{source}: not a run result (a JSON object with protocol, metrics, provenance)")
    missing = {"protocol", "metrics", "provenance"} - set(document)
    if missing:
        raise BenchError(f"{source}: not a run result (lacks {', '.join(sorted(missing))})")
    if document["protocol"] not in PROTOCOL_NAMES:
        raise BenchError(f"{source}: protocol {document['protocol']!r} is none of {', '.join(PROTOCOL_NAMES)}")
    _check_metrics(document["metrics"], "metrics", source)
    if not isinstance(document["provenance"], dict):
        raise BenchError(f"{source}: provenance must be an object")
    figures = document.get("figures", [])
    if not isinstance(figures, list) or not all(isinstance(row, dict) for row in figures):
        raise BenchError(f"{source}: figures must be a list of objects (one per figure)")
    folds = document.get("folds")
    if need_folds and get_protocol(document["protocol"]).folds > 1 and not isinstance(folds, list):
        raise BenchError(f"{source}: a {document['protocol']} run must hold its per-fold metrics (folds)")
    if folds is not None and not isinstance(folds, list):
        raise BenchError(f"{source}: folds must be a list of per-fold metrics")
    for number, fold in enumerate(folds or [], start=1):
        _check_metrics(fold, f"fold {number}", source)


def per_query_file(path: Path, document: dict) -> Path | None:
    """The `<run>.queries.npz` a result JSON names (None: none), always beside the JSON: a name with
    a folder in it (`../../etc/passwd`) is refused."""
    record = document.get("queries")
    name = record.get("file") if isinstance(record, dict) else None
    if name is None:
        return None
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        raise BenchError(f"{path}: queries.file {name!r} is not a file name beside the result")
    return path.with_name(name)


def _save_npy(path: Path, array) -> None:
    """np.save through an open file: given a path, it would append `.npy` to any other name."""
    with open(path, "wb") as handle:
        np.save(handle, np.asarray(array, dtype=np.float32))


def read_document(path: Path):
    """A result JSON's raw document; one line naming the file when it cannot be read."""
    require_file(path, "run result")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise BenchError(f"cannot read run result {path}: {err}") from err


def load_result(path) -> RunResult:
    """A result JSON (`eval --json`, `RunResult.to_json`) read back; `sims` is None."""
    path = Path(path)
    return RunResult.from_document(read_document(path), str(path))


def find_results(folder, recursive: bool = True) -> list[tuple[Path, RunResult]]:
    """Every run result JSON under `folder`, by path; other JSON files (a summary) are skipped."""
    folder = Path(folder)
    found = []
    for path in sorted(folder.rglob("*.json") if recursive else folder.glob("*.json")):
        document = read_document(path)
        if isinstance(document, dict) and "protocol" in document:
            found.append((path, RunResult.from_document(document, str(path))))
    return found
