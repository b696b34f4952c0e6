"""Time of the bootstrap intervals of every coco-5k figure (5,000 + 25,000 queries, 1,000 resamples).

    python -m bench.perf.bootstrap_bench          # part of make bench; issue 14 asks for < 10 s on 2 cores

The per-query values are generated (realistic rank spread, ASP, PMRP with left-out queries):
the time depends only on the number of queries and resamples.
"""

import argparse
import os
import time

import numpy as np

from bench.eval import bootstrap
from bench.perf.report import publish


def synthetic_queries(n_images: int, seed: int = 0) -> dict:
    """coco-5k-shaped per-query values for both directions (bench.eval.per_query layout)."""
    rng = np.random.default_rng(seed)

    def direction(n: int) -> dict:
        pmrp = rng.random((n, 3))
        pmrp[rng.random((n, 3)) < 0.05] = np.nan
        return {"rank": rng.geometric(0.15, n) - 1, "asp": rng.random(n), "pmrp": pmrp,
                "index": np.arange(n), "fold": np.zeros(n, dtype=np.int16)}

    return {"i2t": direction(n_images), "t2i": direction(5 * n_images)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=bootstrap.RESAMPLES)
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    queries = synthetic_queries(args.images)
    settings = bootstrap.Settings(resamples=args.resamples)
    started = time.perf_counter()
    intervals = bootstrap.intervals(bootstrap.replicates(queries, settings))
    seconds = time.perf_counter() - started
    row = {"stage": "bootstrap intervals, every figure", "queries": f"{args.images} i2t + {5 * args.images} t2i",
           "resamples": args.resamples, "figures": len(intervals["all"]), "seconds": round(seconds, 2),
           "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    publish([row], args.out, "cpu-bootstrap", "bootstrap")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
