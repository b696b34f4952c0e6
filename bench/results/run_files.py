"""Files of an existing run are not outputs of another command.

A run is `<run>.json` (eval --json), `<run>.csv` (eval --csv) and `<run>.queries.npz`; `compare`,
`table` and `report` read them again later, so a chart, table or gains CSV written over one of
them would break those commands for good. Only a writer of the same kind of file may replace it
(eval writing its run again).

    check_result_outputs({"--out": png}, inputs={"results CSV": csv_path})
"""

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from bench.common.errors import BenchError
from bench.common.outputs import PathLike, check_outputs
from bench.results.rows import FIELDS
from bench.results.uncertainty import QUERIES_SUFFIX

RESULT_JSON = "result JSON"
RESULTS_CSV = "results CSV"
PER_QUERY = "per-query file"
_CSV_HEADER = ",".join(FIELDS[:4])
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+=@,-]{0,119}")


def check_run_id(run_id: str, source: str = "run_id") -> None:
    """A run id names files (compare-<A>-vs-<B>.csv) and is printed in tables: letters, digits,
    space and `._+=@,-` only, so it can hold no folder, no terminal escape and no rich markup."""
    if not _RUN_ID.fullmatch(run_id):
        raise BenchError(f"{source} {run_id!r}: a run id is 1-120 letters, digits, spaces and ._+=@,- "
                         "(starting with a letter or digit)")


def _is_result_json(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(document, dict) and "protocol" in document


def _first_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return handle.readline(len(_CSV_HEADER) + 1)
    except OSError:
        return ""


def run_file_kind(path: PathLike) -> str | None:
    """What part of a run the existing regular file `path` is, or None (absent, or not a run's)."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.name.endswith(QUERIES_SUFFIX):
        return PER_QUERY
    if path.suffix == ".json" and _is_result_json(path):
        return RESULT_JSON
    if path.suffix == ".csv" and _first_line(path).startswith(_CSV_HEADER):
        return RESULTS_CSV
    return None


def check_result_outputs(outputs: Mapping[str, PathLike | None],
                         inputs: Mapping[str, PathLike | Iterable[PathLike] | None] | None = None,
                         replaces: Mapping[str, str] | None = None) -> None:
    """check_outputs, and refuse an output that is a file of an existing run unless `replaces`
    (output name -> kind) says this output is that kind of file."""
    check_outputs(outputs, inputs)
    for flag, path in outputs.items():
        kind = None if path is None else run_file_kind(path)
        if kind is not None and kind != (replaces or {}).get(flag):
            raise BenchError(f"{flag} {os.fspath(path)}: is the {kind} of an existing run; writing there "
                             "would destroy it (give another name)")
