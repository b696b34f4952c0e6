"""The kinds of a run's files, for the replace rule (bench.common.replace_rule).

A run is `<run>.json` (eval --json), `<run>.csv` (eval --csv), `<run>.queries.npz` and, with
--save-sims, its score matrix; `compare`, `table` and `report` read them again later, so a chart,
table or gains CSV written over one of them would break those commands for good. Only eval
writing the same run again replaces them.

    check_outputs({"--json": path}, kinds={"--json": RESULT_JSON}, inputs=...)
"""

import re
from pathlib import Path

from bench.common.atomic import writes_through
from bench.common.errors import BenchError
from bench.common.replace_rule import RESULT_JSON, Kind, json_object
from bench.results.rows import csv_text
from bench.results.uncertainty import QUERIES_SUFFIX, queries_path

__all__ = ["RESULT_JSON", "RESULTS_CSV", "PER_QUERY", "score_matrix_of", "queries_beside", "check_run_id"]

RESULTS_CSV = Kind.text("a results CSV", csv_text([]))
PER_QUERY = Kind("the per-query file of a run", lambda path: path.name.endswith(QUERIES_SUFFIX))
SIMS_KEY = "score_matrix"  # the result JSON's record of the score matrix written with it
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+=@,-]{0,119}")


def score_matrix_of(json_path) -> Kind:
    """A score matrix may replace the one the existing result JSON at `json_path` names: the same
    run evaluated again (no JSON: no existing matrix is this run's)."""
    recorded = None
    if json_path is not None and (document := json_object(Path(json_path))) is not None:
        recorded = (document.get(SIMS_KEY) or {}).get("file") if isinstance(document.get(SIMS_KEY), dict) else None
    folder = Path(json_path).parent if json_path is not None else None

    def recognises(path: Path) -> bool:
        return recorded is not None and (folder / recorded).resolve() == path.resolve()

    return Kind("the score matrix of this run (the one its --json names)", recognises)


def queries_beside(json_path, csv_path) -> Path | None:
    """Where the per-query file of a run goes: beside its JSON, else its CSV; None without either, or
    where both are devices (`--json /dev/null` discards the run: nothing is created in /dev)."""
    for path in (json_path, csv_path):
        if path is not None and not _device(path):
            return queries_path(path)
    return None


def _device(path) -> bool:
    try:
        return writes_through(path)
    except BenchError:  # not writable at all: check_outputs refuses it, naming its flag
        return False


def check_run_id(run_id: str, source: str = "run_id") -> None:
    """A run id names files (compare-<A>-vs-<B>.csv) and is printed in tables: letters, digits,
    space and `._+=@,-` only, so it can hold no folder, no terminal escape and no rich markup."""
    if not _RUN_ID.fullmatch(run_id):
        raise BenchError(f"{source} {run_id!r}: a run id is 1-120 letters, digits, spaces and ._+=@,- "
                         "(starting with a letter or digit)")


