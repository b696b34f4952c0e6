"""Metric time on a COCO-5K-sized matrix (5,000 x 25,000): recalls, ASP, PMRP, whole protocols.

    python -m bench.perf.metrics_bench            # part of make bench

The original spent about 75 s on recalls alone for this size on this kind of CPU.
"""

import argparse

import numpy as np
import torch

from bench.common.terminal import summary
from bench.data.synthetic import CONCEPTS, FILLER
from bench.eval.metrics import recall_metrics
from bench.eval.pmrp import protocol_pmrp
from bench.eval.protocol_metrics import protocol_metrics
from bench.eval.protocols import PROTOCOLS
from bench.perf.measure import peak_memory_mb, reset_peak_memory, timed
from bench.perf.report import publish

CPU = torch.device("cpu")


def synthetic_texts(n_captions: int, seed: int = 0) -> list[str]:
    """Captions with a realistic vocabulary spread for TF-IDF (about 2,000 words, Zipf-like)."""
    rng = np.random.default_rng(seed)
    words = CONCEPTS + FILLER + [f"word{i}" for i in range(2000)]
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    return [" ".join(rng.choice(words, size=int(rng.integers(8, 16)), p=weights)) for _ in range(n_captions)]


def synthetic_instances(n_images: int, seed: int = 0) -> tuple[list[int], dict]:
    rng = np.random.default_rng(seed)
    ids = list(range(1, n_images + 1))
    vectors = {i: (rng.random(90) < 0.04).astype(np.uint8) for i in ids}
    return ids, vectors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    n_images = args.images
    sims = np.random.default_rng(0).random((n_images, 5 * n_images), dtype=np.float32)
    texts = synthetic_texts(5 * n_images)
    ids, vectors = synthetic_instances(n_images)
    stages = {
        "recalls (both directions)": lambda: recall_metrics(sims),
        "coco-5k protocol (recalls + ASP)": lambda: protocol_metrics(PROTOCOLS["coco-5k"], sims, texts),
        "coco-1k protocol (5 folds)": lambda: protocol_metrics(PROTOCOLS["coco-1k"], sims, texts),
        "PMRP coco-5k": lambda: protocol_pmrp("coco-5k", sims, ids, vectors),
    }
    rows = []
    for stage, fn in stages.items():
        reset_peak_memory(CPU)
        _, seconds = timed(fn, CPU, warmup=False)
        rows.append({"stage": stage, "matrix": f"{n_images} x {5 * n_images}", "seconds": round(seconds, 2),
                     "peak_memory_mb": round(peak_memory_mb(CPU) or 0, 1)})
    publish(rows, args.out, "cpu-metrics", "metrics")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
