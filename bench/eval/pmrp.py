"""Plausible Match R-Precision (PMRP, from PCME), vectorised over the score matrix.

Two COCO images match plausibly within threshold `th` when the L1 distance of their
90-slot instance-category multi-hot vectors is at most `th`. For a query, `R` = the number
of plausible gallery items; its R-precision = plausible items among its top `R` / `R`.
PMRP = 100 x mean over thresholds {0, 1, 2} of the mean over queries (docs/evaluation.md).
The original built one Python dict per (query, item) pair; here each block of queries has
its scores sorted once and every threshold reads its top-R cutoff off that sort (COCO 5K:
about 10 s on a 2-core CPU).
Equal scores are ordered by gallery index, lower first, as bench.eval.metrics.TIE_RULE says.

    python -c "from bench.eval.pmrp import load_instance_vectors; \
print(len(load_instance_vectors('data/coco_annotations')))"
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from bench.common.errors import BenchError
from bench.data.coco_ids import read_annotation_pairs
from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.eval.protocols import DIRECTIONS, fold_blocks, fold_bounds, get_protocol

CATEGORY_SLOTS = 90  # COCO category ids run 1..90 (80 used); id c sets slot c - 1
THRESHOLDS = (0, 1, 2)
INSTANCES_FILE = "instances_val2014.json"
SORT_BUDGET = 1 << 23  # scores sorted at a time: ~32 MB per float32 copy of a block


def load_instance_vectors(annotations_dir) -> dict[int, np.ndarray]:
    """COCO image id -> uint8 multi-hot of its instance categories; images without any are absent."""
    path = Path(annotations_dir) / INSTANCES_FILE
    pairs = read_annotation_pairs(path, "image_id", "category_id", "PMRP")
    vectors: dict[int, np.ndarray] = {}
    for image_id, category in pairs:
        if not 1 <= category <= CATEGORY_SLOTS:
            raise BenchError(f"{path}: category id {category} is outside 1..{CATEGORY_SLOTS}")
        vectors.setdefault(image_id, np.zeros(CATEGORY_SLOTS, dtype=np.uint8))[category - 1] = 1
    return vectors


def _hamming(multi_hot: np.ndarray) -> np.ndarray:
    """(m, m) L1 distances of binary vectors: |a| + |b| - 2 a.b (exact in float32 up to 2^24)."""
    hot = multi_hot.astype(np.float32)
    counts = hot.sum(axis=1)
    return (counts[:, None] + counts[None, :] - 2.0 * (hot @ hot.T)).round().astype(np.uint8)


def _top_r_hits(block: np.ndarray, ascending: np.ndarray, relevant: np.ndarray,
                plausible: np.ndarray) -> np.ndarray:
    """Plausible items among each row's `relevant` best-scored ones (`relevant` >= 1).

    The R-th best score is the row's cutoff: all items above it are in the top R, and the
    remaining slots go to the items equal to it, lowest gallery index first.
    """
    rows = np.arange(block.shape[0])
    cutoff = ascending[rows, block.shape[1] - relevant][:, None]
    above = block > cutoff
    equal = block == cutoff
    slots = relevant - np.count_nonzero(above, axis=1)
    taken = above | equal
    crowded = np.flatnonzero(np.count_nonzero(equal, axis=1) > slots)
    if crowded.size:  # more ties at the cutoff than slots left: keep the lowest indices
        tie_order = np.cumsum(equal[crowded], axis=1)
        taken[crowded] = above[crowded] | (equal[crowded] & (tie_order <= slots[crowded, None]))
    return np.count_nonzero(plausible & taken, axis=1)


def _rprecisions(query_block, n_queries: int, query_owner: np.ndarray, gallery_owner: np.ndarray,
                 distance: np.ndarray, thresholds: Sequence[int]) -> np.ndarray:
    """(n_queries, thresholds) R-precision of each query; NaN where no item is plausible (R = 0).

    `query_block(start, stop)` gives those queries' scores over the whole gallery; `*_owner`
    give each query's / gallery item's image (an index into `distance`). Sorting only the
    values (not an argsort) is what makes this fast: the cutoff is all a threshold needs.
    """
    precisions = np.full((n_queries, len(thresholds)), np.nan)
    block_rows = max(1, SORT_BUDGET // len(gallery_owner))
    for start in range(0, n_queries, block_rows):
        block = np.ascontiguousarray(query_block(start, start + block_rows))
        ascending = np.sort(block, axis=1)
        item_distance = distance[query_owner[start:start + block.shape[0]]][:, gallery_owner]
        for t, threshold in enumerate(thresholds):
            plausible = item_distance <= threshold
            relevant = np.count_nonzero(plausible, axis=1)
            answered = relevant > 0
            hits = _top_r_hits(block, ascending, np.maximum(relevant, 1), plausible)
            rows = np.arange(start, start + block.shape[0])[answered]
            precisions[rows, t] = hits[answered] / relevant[answered]
    return precisions


def pmrp_figure(per_query: np.ndarray) -> float:
    """PMRP in percent from (queries, thresholds) R-precisions: NaN (R = 0, or no annotations) left out."""
    answered = ~np.isnan(per_query)
    totals = np.where(answered, per_query, 0.0).sum(axis=0)
    return float(100.0 * np.mean(totals / np.maximum(answered.sum(axis=0), 1)))


def pmrp_per_query(sims: np.ndarray, image_ids: Sequence[int], vectors: Mapping[int, np.ndarray],
                   thresholds: Sequence[int] = THRESHOLDS) -> dict:
    """{"i2t": (n_images, T), "t2i": (n_captions, T)} R-precisions of one (n_images, 5 n_images) matrix.

    `image_ids[i]` is the COCO id of image row i. Images without instance annotations leave
    the evaluation entirely: they are neither queries (their rows are NaN) nor gallery items
    (as the original did).
    """
    sims = np.asarray(sims)
    image_ids = [int(i) for i in image_ids]
    if sims.ndim != 2 or sims.shape[0] != len(image_ids) or \
            sims.shape[1] != CAPTIONS_PER_IMAGE * len(image_ids):
        raise BenchError(f"PMRP: score matrix of shape {sims.shape} does not fit {len(image_ids)} "
                         f"image ids with {CAPTIONS_PER_IMAGE} captions each")
    known = np.array([i in vectors for i in image_ids], dtype=bool)
    if not known.any():
        raise BenchError("PMRP: none of the matrix's COCO image ids has instance annotations; "
                         "are the annotations and the ids from the same COCO split?")
    if not np.isfinite(sims).all():
        raise BenchError("PMRP: the score matrix contains NaN or infinite values")
    image_rows = np.flatnonzero(known)
    caption_columns = np.flatnonzero(np.repeat(known, CAPTIONS_PER_IMAGE))
    distance = _hamming(np.stack([vectors[image_ids[i]] for i in image_rows]))
    images = np.arange(len(image_rows))
    captions_owner = np.repeat(images, CAPTIONS_PER_IMAGE)

    def image_queries(start, stop):
        return sims[np.ix_(image_rows[start:stop], caption_columns)]

    def caption_queries(start, stop):
        return sims[np.ix_(image_rows, caption_columns[start:stop])].T

    per_query = {d: np.full((n, len(thresholds)), np.nan) for d, n in (("i2t", sims.shape[0]),
                                                                       ("t2i", sims.shape[1]))}
    per_query["i2t"][image_rows] = _rprecisions(image_queries, len(images), images, captions_owner,
                                                distance, thresholds)
    per_query["t2i"][caption_columns] = _rprecisions(caption_queries, len(captions_owner),
                                                     captions_owner, images, distance, thresholds)
    return per_query


def pmrp(sims: np.ndarray, image_ids: Sequence[int], vectors: Mapping[int, np.ndarray],
         thresholds: Sequence[int] = THRESHOLDS) -> dict:
    """{"i2t", "t2i"} PMRP in percent of one (n_images, 5 n_images) matrix."""
    per_query = pmrp_per_query(sims, image_ids, vectors, thresholds)
    return {d: pmrp_figure(values) for d, values in per_query.items()}


def protocol_pmrp(protocol_name: str, sims: np.ndarray, image_ids: Sequence[int],
                  vectors: Mapping[int, np.ndarray]) -> dict:
    """PMRP under a COCO protocol; coco-1k ranks within each fold and averages the folds.

    "per_query" holds every query's R-precisions in split order (folds one after another).

    `sims` is the full matrix or, for coco-1k, the stacked fold blocks (--save-sims layout).
    """
    protocol = get_protocol(protocol_name)
    if protocol.dataset != "coco":
        raise BenchError(f"PMRP needs COCO instance annotations; protocol {protocol_name} is not COCO")
    blocks = fold_blocks(protocol, sims)
    bounds = fold_bounds(protocol, len(image_ids))
    per_fold = [pmrp_per_query(block, list(image_ids)[rows], vectors)
                for block, (rows, _) in zip(blocks, bounds)]
    folds = [{d: pmrp_figure(values) for d, values in fold.items()} for fold in per_fold]
    result = {d: float(np.mean([fold[d] for fold in folds])) for d in DIRECTIONS}
    if protocol.folds > 1:
        result["folds"] = folds
    result["per_query"] = {d: np.concatenate([fold[d] for fold in per_fold]) for d in DIRECTIONS}
    return result
