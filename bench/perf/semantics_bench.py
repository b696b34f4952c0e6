"""Memory of the training semantics on a COCO-sized corpus: sparse TF-IDF, per-batch blocks.

The original densified the TF-IDF matrix of COCO train (566,435 captions x ~10k terms,
float64: more than 50 GB per process). We keep it sparse and build each batch's 128 x 128
relevance block from 128 sparse rows; this measures the peak (target: under 500 MB).

    python -m bench.perf.semantics_bench          # part of make bench
"""

import argparse
import time
import tracemalloc

import numpy as np

from bench.common.terminal import summary
from bench.perf.report import publish
from bench.training.batches import TrainingSemantics

COCO_TRAIN_CAPTIONS = 566_435
LIMIT_BYTES = 500 * 2**20


def generated_corpus(n_captions: int, vocabulary: int = 25_000, seed: int = 0) -> list[str]:
    """Captions of 8-16 words drawn from a Zipf-like vocabulary, roughly COCO's statistics."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / (np.arange(vocabulary) + 2.7) ** 1.07
    lengths = rng.integers(8, 17, size=n_captions)
    words = rng.choice(vocabulary, size=int(lengths.sum()), p=weights / weights.sum())
    names = [f"w{i}" for i in range(vocabulary)]
    ends = np.cumsum(lengths)
    return [" ".join(names[w] for w in words[end - length:end]) for end, length in zip(ends, lengths)]


def measure_semantics_memory(n_captions: int = COCO_TRAIN_CAPTIONS, batches: int = 200, batch_size: int = 128,
                             seed: int = 0) -> dict:
    """Peak traced memory of fitting the TF-IDF and building `batches` relevance blocks."""
    captions = generated_corpus(n_captions, seed=seed)
    rng = np.random.default_rng(seed)
    tracemalloc.start()
    started = time.perf_counter()
    semantics = TrainingSemantics(captions)
    fitted = time.perf_counter()
    for _ in range(batches):
        semantics.block(rng.choice(n_captions, size=batch_size, replace=False))
    finished = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_terms = semantics.tfidf.shape[1]
    return {
        "n_captions": n_captions, "n_terms": n_terms, "peak_mb": peak / 2**20,
        "kept_mb": semantics.nbytes() / 2**20, "limit_mb": LIMIT_BYTES / 2**20, "ok": peak < LIMIT_BYTES,
        "dense_original_gb": n_captions * n_terms * 8 / 2**30,
        "fit_seconds": fitted - started, "seconds_per_batch": (finished - fitted) / max(batches, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--captions", type=int, default=COCO_TRAIN_CAPTIONS)
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    row = {key: round(value, 4) if isinstance(value, float) else value
           for key, value in measure_semantics_memory(args.captions).items()}
    publish([row], args.out, "cpu-semantics", "training semantics memory")
    return 0 if row["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
