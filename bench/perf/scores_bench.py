"""Peak memory of `eval --scores` on a COCO-5K-sized float32 matrix (5,000 x 25,000, 500 MB).

    python -m bench.perf.scores_bench --out results/perf     # part of make bench

Generates a captions-only COCO testall (captions, ids, instance annotations for PMRP) and the
matrix in a temporary folder, runs `python -m bench eval --scores` on it in a child process and
reports that child's peak resident memory. The matrix is memory-mapped, so its pages count once;
the target is under 2 GB (exit status 1 above it: `make bench` checks it, the tests do not).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common.host import cpu_model
from bench.common.terminal import summary
from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.eval.pmrp import INSTANCES_FILE
from bench.perf.child_memory import run_measured
from bench.perf.metrics_bench import synthetic_instances, synthetic_texts
from bench.perf.report import publish

LIMIT_MB = 2048
ROW_BLOCK = 250  # matrix rows generated at a time


def write_matrix(path: Path, n_images: int, seed: int = 0) -> None:
    """Random float32 scores, the ground-truth pairs lifted a little, written block by block."""
    rng = np.random.default_rng(seed)
    n_captions = CAPTIONS_PER_IMAGE * n_images
    sims = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_images, n_captions))
    for start in range(0, n_images, ROW_BLOCK):
        rows = np.arange(start, min(start + ROW_BLOCK, n_images))
        block = rng.random((len(rows), n_captions), dtype=np.float32)
        block[np.arange(len(rows))[:, None], rows[:, None] * CAPTIONS_PER_IMAGE + np.arange(CAPTIONS_PER_IMAGE)] += 0.2
        sims[rows] = block
    sims.flush()
    del sims


def write_split(root: Path, n_images: int) -> None:
    """testall captions and ids (a row per caption, as SCAN's) and instance annotations."""
    directory = root / "coco_precomp"
    directory.mkdir(parents=True)
    captions = synthetic_texts(CAPTIONS_PER_IMAGE * n_images)
    (directory / "testall_caps.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
    ids, vectors = synthetic_instances(n_images)
    (directory / "testall_ids.txt").write_text("".join(f"{i}\n" * CAPTIONS_PER_IMAGE for i in ids), encoding="utf-8")
    annotations = [{"image_id": i, "category_id": int(c) + 1} for i in ids for c in np.flatnonzero(vectors[i])]
    (root / "coco_annotations").mkdir()
    (root / "coco_annotations" / INSTANCES_FILE).write_text(json.dumps({"annotations": annotations}))


def eval_in_child(matrix: Path, root: Path, result: Path) -> tuple[float, int]:
    """(seconds, peak RSS in bytes) of `python -m bench eval --scores` in a fresh interpreter."""
    command = [sys.executable, "-m", "bench", "eval", "--scores", str(matrix), "--protocol", "coco-5k",
               "--data-root", str(root), "--json", str(result)]
    returncode, seconds, peak = run_measured(command, stdout=subprocess.DEVNULL)
    if returncode:
        raise SystemExit(f"scores_bench: {' '.join(command)} failed")
    return seconds, peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--out", default="results/perf")
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the files (default: a temp dir)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="daa-perf-scores-", dir=args.workdir))
    try:
        write_split(workdir / "data", args.images)
        write_matrix(workdir / "scores.npy", args.images)
        seconds, peak = eval_in_child(workdir / "scores.npy", workdir / "data", workdir / "run.json")
        metrics = json.loads((workdir / "run.json").read_text(encoding="utf-8"))["metrics"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    peak_mb = peak / 2**20
    captions = CAPTIONS_PER_IMAGE * args.images
    row = {"benchmark": "eval --scores coco-5k (PMRP included)", "matrix": f"{args.images} x {captions} float32",
           "matrix_mb": round(args.images * captions * 4 / 2**20, 1), "seconds": round(seconds, 1),
           "peak_rss_mb": round(peak_mb, 1), "limit_mb": LIMIT_MB, "ok": peak_mb < LIMIT_MB,
           "rsum": round(metrics["rsum"], 2), "figures": sum(len(metrics[d]) for d in ("i2t", "t2i")) + 1,
           "host": socket.gethostname(), "cpu": cpu_model(), "cores": os.cpu_count()}
    publish([row], args.out, "cpu-scores-memory", "peak memory of eval --scores")
    return 0 if row["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
