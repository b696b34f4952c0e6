"""Peak memory of the streaming `{split}_ims.npy` -> `{split}.h5` conversion on a generated file.

    python -m bench.perf.convert_bench --gib 3 [--workdir DIR] [--json results/perf_convert.json]

COCO train's features are 33 GB; the conversion must stay under 1 GB of resident memory
whatever the file size (exit status 1 otherwise: `make bench` checks it, the tests do not). The
file is generated here block by block (SCAN's shape: rows x 36 x 2048 float32), converted in a
child process, and the child's peak RSS is reported.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

from bench.common.atomic import write_json
from bench.common.replace_rule import Kind
from bench.common.terminal import summary
from bench.perf.child_memory import run_measured

ROW_SHAPE = (36, 2048)
ROW_BYTES = ROW_SHAPE[0] * ROW_SHAPE[1] * 4
LIMIT_BYTES = 1 << 30


def write_features(path: Path, rows: int, block_rows: int = 256) -> None:
    """A float32 (rows, 36, 2048) .npy written block by block (row r is filled with r % 997)."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_2_0(handle, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (rows, *ROW_SHAPE)})
        for start in range(0, rows, block_rows):
            count = min(block_rows, rows - start)
            block = np.broadcast_to((np.arange(start, start + count, dtype=np.float32) % 997)[:, None, None],
                                    (count, *ROW_SHAPE))
            handle.write(np.ascontiguousarray(block).tobytes())


def convert_in_child(source: Path, dest: Path) -> tuple[float, int]:
    """Run the conversion in a fresh interpreter; returns (seconds, peak RSS bytes of that child)."""
    code = ("import sys; from pathlib import Path; from bench.download.convert import npy_to_hdf5; "
            "npy_to_hdf5(Path(sys.argv[1]), Path(sys.argv[2]))")
    command = [sys.executable, "-c", code, str(source), str(dest)]
    returncode, seconds, peak = run_measured(command)
    if returncode:
        raise subprocess.CalledProcessError(returncode, command)
    return seconds, peak


def spot_check(dest: Path, rows: int) -> None:
    with h5py.File(dest) as h5:
        for row in (0, rows // 2, rows - 1):
            assert float(h5["feat"][row, 0, 0]) == row % 997 and h5["feat"].shape == (rows, *ROW_SHAPE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--gib", type=float, default=3.0, help="size of the generated .npy in GiB")
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the files (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="daa-perf-convert-", dir=args.workdir))
    try:
        rows = max(1, int(args.gib * 2**30 // ROW_BYTES))
        write_features(workdir / "train_ims.npy", rows)
        seconds, peak = convert_in_child(workdir / "train_ims.npy", workdir / "train.h5")
        spot_check(workdir / "train.h5", rows)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures = {"benchmark": "npy_to_hdf5", "rows": rows, "input_bytes": rows * ROW_BYTES, "seconds": round(seconds, 2),
               "mb_per_s": round(rows * ROW_BYTES / 2**20 / seconds, 1), "peak_rss_bytes": peak,
               "limit_bytes": LIMIT_BYTES, "ok": peak < LIMIT_BYTES}
    print(json.dumps(figures))
    if args.json:
        write_json(args.json, figures, Kind.json_with("a conversion benchmark JSON", ("benchmark", "mb_per_s")))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
