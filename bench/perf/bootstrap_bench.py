"""Time of the bootstrap intervals of every coco-5k figure (5,000 + 25,000 queries, 1,000 resamples),
and of a paired comparison of two such runs (the same, plus the permutation test).

    python -m bench.perf.bootstrap_bench          # part of make bench; seconds, not minutes, on 2 cores

The per-query values are generated (ASP, PMRP with left-out queries, ranks mostly small with a
tail spread over the whole gallery): the time depends on the numbers of images, resamples and
distinct ranks (the median's histograms), which the tail makes as large as a weak model's.
"""

import argparse
import os
import platform
import time

import numpy as np

from bench.common.host import cpu_model
from bench.common.terminal import summary
from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.eval import bootstrap, paired
from bench.perf.report import publish


def synthetic_queries(n_images: int, seed: int = 0) -> dict:
    """coco-5k-shaped per-query values for both directions (bench.eval.per_query layout)."""
    rng = np.random.default_rng(seed)

    def direction(n: int, gallery: int) -> dict:
        pmrp = rng.random((n, 3))
        pmrp[rng.random((n, 3)) < 0.05] = np.nan
        rank = np.where(rng.random(n) < 0.8, rng.geometric(0.15, n) - 1, rng.integers(0, gallery, n))
        return {"rank": rank, "asp": rng.random(n), "pmrp": pmrp,
                "index": np.arange(n), "fold": np.zeros(n, dtype=np.int16)}

    captions = CAPTIONS_PER_IMAGE * n_images
    return {"i2t": direction(n_images, captions), "t2i": direction(captions, n_images)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=bootstrap.RESAMPLES)
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    queries = synthetic_queries(args.images)
    other = synthetic_queries(args.images, seed=1)
    settings = bootstrap.Settings(resamples=args.resamples)
    started = time.perf_counter()
    intervals = bootstrap.intervals(bootstrap.replicates(queries, settings))
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    gains = paired.paired_gains(queries, other, settings)
    paired_seconds = time.perf_counter() - started
    common = {"queries": f"{args.images} i2t + {CAPTIONS_PER_IMAGE * args.images} t2i", "resamples": args.resamples,
              "host": platform.node(), "cpu": cpu_model(),
              "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    rows = [{"stage": "bootstrap intervals, every figure", **common, "permutations": "",
             "figures": len(intervals["all"]), "seconds": round(seconds, 2)},
            {"stage": "paired compare of two runs, every figure", **common, "permutations": paired.PERMUTATIONS,
             "figures": len(gains["all"]), "seconds": round(paired_seconds, 2)}]
    publish(rows, args.out, "cpu-bootstrap", "bootstrap")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
