"""One part of `make gpu-check`, in a process of its own (bench.perf.gpu_check starts it):

    python -m bench.perf.gpu_child <part> '<context as JSON>' <rows.json>

Writes the part's rows to <rows.json>; an exception becomes one failing row. A part that measures
one row at a time (speed) writes each as it is measured. A crash (a CUDA error that takes the
process down) or a kill at the deadline leaves only those rows, which the check reports with that
part's failure while the other parts go on.
"""

import json
import sys
from pathlib import Path

from bench.perf.gpu_env import PART_ROWS, one_line


def run_part(name: str, context: dict, rows_path: Path | None = None) -> list[dict]:
    from bench.perf.gpu_correctness import CheckContext, correctness_parts
    from bench.perf.gpu_speed import speed_part

    parts = {**correctness_parts(), "speed": speed_part}
    try:
        return parts[name](CheckContext.from_json(context, rows_path))
    except Exception as error:  # noqa: BLE001 - reported as this part's failure, the check goes on
        return [{"check": name, "status": "fail", "detail": one_line(error)}]


def main(argv: list[str]) -> int:
    name, context, rows_path = argv
    rows = run_part(name, json.loads(context), Path(rows_path))
    from bench.common.atomic import write_text

    write_text(Path(rows_path), json.dumps(rows), PART_ROWS)  # a fresh file in the check's own temporary folder
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
