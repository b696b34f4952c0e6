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
from pathlib import Path

import numpy as np

from bench.common.atomic import write_all
from bench.common.errors import BenchError
from bench.common.outputs import check_outputs
from bench.results.rows import FIELDS, csv_text
from bench.results.uncertainty import queries_path

STATUSES = ("ok", "off", "own", "no-reference", "other-model")
CORE_KEYS = ("protocol", "metrics", "folds", "provenance", "figures")


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
        return {s: sum(row["status"] == s for row in self.figures) for s in STATUSES}

    def without_references(self, reason: str) -> "RunResult":
        """A copy compared with no published figure (generated data, mismatched checkpoints)."""
        cleared = dict(reference=None, reference_source="", delta=None, tolerance=None, status="no-reference",
                       within_ci=None)
        figures = [row | cleared for row in self.figures]
        return dataclasses.replace(self, figures=figures, provenance=self.provenance | {"note": reason})

    def document(self, queries_file: str | None = None) -> dict:
        """The result JSON: protocol, metrics, folds (if any), extra keys, provenance, figures."""
        folds = {"folds": self.folds} if self.folds is not None else {}
        extra = dict(self.extra)
        if queries_file is not None and "queries" in extra:
            extra["queries"] = extra["queries"] | {"file": queries_file}
        return {"protocol": self.protocol, "metrics": self.metrics, **folds, **extra,
                "provenance": self.provenance, "figures": list(self.figures)}

    @classmethod
    def from_document(cls, document: dict, source: str = "result") -> "RunResult":
        missing = {"protocol", "metrics", "provenance"} - set(document)
        if missing:
            raise BenchError(f"{source}: not a run result (lacks {', '.join(sorted(missing))})")
        extra = {k: v for k, v in document.items() if k not in CORE_KEYS}
        return cls(document["protocol"], document["metrics"], document["provenance"],
                   list(document.get("figures", [])), document.get("folds"), extra=extra)

    def write(self, *, json_path=None, csv_path=None, sims_path=None) -> None:
        """Write the requested outputs together: each appears only if all of them could be written.

        With a JSON or CSV, the per-query file goes beside it (`<run>.queries.npz`)."""
        if sims_path is not None and self.sims is None:
            raise BenchError(f"{sims_path}: this result holds no score matrix (read back from JSON?)")
        queries = queries_path(json_path or csv_path) if self.queries_npz is not None and \
            (json_path or csv_path) is not None else None
        check_outputs({"json_path": json_path, "csv_path": csv_path, "sims_path": sims_path,
                       "the per-query file": queries})
        text = json_path and json.dumps(self.document(queries and queries.name), indent=2, default=_builtin) + "\n"
        write_all({
            sims_path: lambda tmp: np.save(tmp, np.asarray(self.sims, dtype=np.float32)),
            queries: lambda tmp: tmp.write_bytes(self.queries_npz),
            csv_path: lambda tmp: tmp.write_text(csv_text(self.figures), encoding="utf-8"),
            json_path: lambda tmp: tmp.write_text(text, encoding="utf-8"),
        })

    def to_json(self, path) -> None:
        self.write(json_path=path)

    def to_csv(self, path) -> None:
        self.write(csv_path=path)

    def save_sims(self, path) -> None:
        """The float32 score matrix as .npy (the `eval --save-sims` layout)."""
        self.write(sims_path=path)


def read_document(path: Path):
    """A result JSON's raw document; one line naming the file when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BenchError(f"cannot read run result {path}: {err}") from err


def load_result(path) -> RunResult:
    """A result JSON (`eval --json`, `RunResult.to_json`) read back; `sims` is None."""
    path = Path(path)
    document = read_document(path)
    if not isinstance(document, dict):
        raise BenchError(f"{path}: not a run result (a JSON object with protocol, metrics, provenance)")
    return RunResult.from_document(document, str(path))


def find_results(folder, recursive: bool = True) -> list[tuple[Path, RunResult]]:
    """Every run result JSON under `folder`, by path; other JSON files (a summary) are skipped."""
    folder = Path(folder)
    found = []
    for path in sorted(folder.rglob("*.json") if recursive else folder.glob("*.json")):
        document = read_document(path)
        if isinstance(document, dict) and "protocol" in document:
            found.append((path, RunResult.from_document(document, str(path))))
    return found
