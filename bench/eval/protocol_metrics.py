"""Every metric of a score matrix under a protocol: recalls, ranks and ASP, per fold and mean.

TF-IDF relevance for ASP is fitted on the whole split's captions, even for the COCO 1K folds
(docs/data.md). The folds themselves come from bench.eval.protocols.
"""

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from bench.common.errors import BenchError
from bench.data.semantics import split_relevance
from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.eval.asp import asp_figure, asp_per_query
from bench.eval.metrics import i2t_ranks, rank_summary, rsum, t2i_ranks
from bench.eval.per_query import fold_queries, join_folds
from bench.eval.protocols import DIRECTIONS, Protocol, fold_blocks, fold_bounds


def relevance_rows(queries: sparse.csr_matrix, gallery: sparse.csr_matrix):
    """`rows -> dense float32 (len(rows), n_gallery)` TF-IDF relevance of query rows to the gallery.

    Image profiles and caption TF-IDF rows live in one term space, so one function serves i2t
    (queries = profiles) and t2i (queries = captions). Sparse x dense in float32 is ~10x faster
    than the sparse x sparse float64 product: the result is nearly all non-zero (stop words);
    zeros stay exact zeros, so the ties that matter to ASP are kept.
    """
    queries, gallery = queries.astype(np.float32), gallery.tocsr().astype(np.float32)

    def rows_block(rows: slice) -> np.ndarray:
        return np.ascontiguousarray((gallery @ queries[rows].toarray().T).T)

    return rows_block


def _fold_metrics(scores: np.ndarray, profiles: sparse.csr_matrix, tfidf: sparse.csr_matrix,
                  fold: int) -> tuple[dict, dict]:
    """Recalls, ranks and ASP of one block, and its per-query values (bench.eval.per_query).

    `profiles` and `tfidf` are the block's images' and captions'.
    """
    ranks = {"i2t": i2t_ranks(scores), "t2i": t2i_ranks(scores)}
    asps = {"i2t": None, "t2i": None}
    if profiles is not None:
        asps = {"i2t": asp_per_query(scores, relevance_rows(profiles, tfidf)),
                "t2i": asp_per_query(scores.T, relevance_rows(tfidf, profiles))}
    metrics = {d: rank_summary(ranks[d]) | ({} if asps[d] is None else {"asp": asp_figure(asps[d])})
               for d in DIRECTIONS}
    metrics["rsum"] = rsum(metrics)
    return metrics, fold_queries(scores, ranks["i2t"], ranks["t2i"], asps["i2t"], asps["t2i"], fold)


ASP_LEFT_OUT = ("ASP's relevance is an image's five captions' TF-IDF profile against each caption; with one "
                "caption per image (CC152K) there is no such profile, so ASP is left out rather than faked")
PMRP_LEFT_OUT = "PMRP needs COCO's instance annotations of each image; CC152K has none"


def _relevance(protocol: Protocol, texts: Sequence[str]):
    """(image profiles, caption TF-IDF) for ASP; (None, None) where a protocol has one caption per image."""
    if protocol.captions_per_image != CAPTIONS_PER_IMAGE:
        return None, None
    try:
        return split_relevance(texts)
    except ValueError as err:  # scikit-learn: no word of two or more characters anywhere
        raise BenchError(f"{protocol.name}: cannot fit TF-IDF on the captions ({err})") from None


def mean_metrics(folds: Sequence[dict]) -> dict:
    """Every metric averaged over folds (rsum too: the mean of the folds' rsums)."""
    mean = {d: {name: float(np.mean([f[d][name] for f in folds])) for name in folds[0][d]}
            for d in DIRECTIONS}
    mean["rsum"] = float(np.mean([f["rsum"] for f in folds]))
    return mean


def protocol_metrics(protocol: Protocol, sims: np.ndarray, texts: Sequence[str]) -> dict:
    """{"metrics": {"i2t", "t2i", "rsum"}, "queries": per-query arrays} plus per-fold "folds"
    when the protocol has folds. "queries" holds numpy arrays: keep it out of JSON."""
    blocks = fold_blocks(protocol, sims)
    n_images, per_image = sum(block.shape[0] for block in blocks), protocol.captions_per_image
    if len(texts) != n_images * per_image:
        raise BenchError(f"{protocol.name}: {len(texts)} captions for {n_images} images; "
                         f"expected {n_images * per_image} ({per_image} per image)")
    for block in blocks:
        if not np.isfinite(block).all():
            raise BenchError("the score matrix contains NaN or infinite values; the model or its "
                             "precision setting produced invalid scores")
    profiles, tfidf = _relevance(protocol, texts)
    scored = [_fold_metrics(block, None if profiles is None else profiles[images],
                            None if tfidf is None else tfidf[captions], fold)
              for fold, (block, (images, captions)) in enumerate(zip(blocks, fold_bounds(protocol, n_images)))]
    folds, queries = [metrics for metrics, _ in scored], join_folds([q for _, q in scored])
    if protocol.folds == 1:
        left_out = {} if profiles is not None else {"asp": ASP_LEFT_OUT, "pmrp": PMRP_LEFT_OUT}
        return {"metrics": folds[0], "queries": queries} | ({"left_out": left_out} if left_out else {})
    return {"metrics": mean_metrics(folds), "folds": folds, "queries": queries}
