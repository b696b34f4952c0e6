"""Retrieval ranks and recalls of a score matrix (docs/evaluation.md), vectorised.

`sims[i, j]` scores image i against caption j; caption j belongs to image j // 5. Ranks are
0-based positions of the best ground truth when the gallery is ordered by score, highest
first. The original sorted every row in a Python loop (~75 s for COCO 5K on a 2-core CPU);
counting the gallery items that beat the ground truth gives the same ranks in one pass.

    python -c "import numpy as np; from bench.eval.metrics import recall_metrics; \
print(recall_metrics(np.random.rand(100, 500)))"
"""

import numpy as np

from bench.common.errors import BenchError
from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.eval.protocols import DIRECTIONS

TIE_RULE = ("equal scores are ordered by gallery index, lower index first (stable), for recalls, "
            "PMRP and both rankings inside ASP; the original broke ties arbitrarily (unstable GPU argsort)")
RECALL_KS = (1, 5, 10)
ROW_BLOCK = 512  # rows compared at a time: bounds the boolean temporaries to a few MB


def captions_per_image(sims: np.ndarray) -> int:
    """5 (SCAN's F30K and COCO: caption j describes image j // 5) or 1 (CC152K), from the shape."""
    if sims.ndim == 2 and sims.shape[0] and sims.shape[1] in (CAPTIONS_PER_IMAGE * sims.shape[0], sims.shape[0]):
        return sims.shape[1] // sims.shape[0]
    raise BenchError(f"score matrix has shape {sims.shape}; expected (n_images, {CAPTIONS_PER_IMAGE} x n_images) "
                     "with caption j belonging to image j // 5, or (n_images, n_images) for one caption per image")


def _count_before(block: np.ndarray, target: np.ndarray, position: np.ndarray, axis: int) -> np.ndarray:
    """Per row (axis=1) or column (axis=0): items scored above `target`, or equal with a lower index.

    `position` is the target's own index along `axis` (outside the block for t2i blocks that
    do not hold the caption's image). The tie pass only runs where an item other than the
    target equals it, which real models almost never produce.
    """
    target = np.expand_dims(target, axis)
    before = np.count_nonzero(block > target, axis=axis)
    equal = block == target
    holds_target = (position >= 0) & (position < block.shape[axis])
    tied = np.count_nonzero(equal, axis=axis) > holds_target
    if tied.any():
        index = np.arange(block.shape[axis])
        lower = np.expand_dims(index, 1 - axis) < np.expand_dims(position, axis)
        before += np.count_nonzero(equal & lower & np.expand_dims(tied, axis), axis=axis)
    return before


def i2t_ranks(sims: np.ndarray) -> np.ndarray:
    """(n_images,) rank of each image's best-placed caption among all captions."""
    sims = np.asarray(sims)
    per_image = captions_per_image(sims)
    ranks = np.empty(sims.shape[0], dtype=np.int64)
    for start in range(0, sims.shape[0], ROW_BLOCK):
        block = sims[start:start + ROW_BLOCK]
        images = np.arange(start, start + block.shape[0])
        own = images[:, None] * per_image + np.arange(per_image)
        rows = np.arange(block.shape[0])
        own_scores = block[rows[:, None], own]
        best = own_scores.argmax(axis=1)  # first maximum: the lowest-index caption wins ties
        ranks[images] = _count_before(block, own_scores[rows, best], own[rows, best], axis=1)
    return ranks


def t2i_ranks(sims: np.ndarray) -> np.ndarray:
    """(n_captions,) rank of each caption's image among all images."""
    sims = np.asarray(sims)
    per_image = captions_per_image(sims)
    n_images, n_captions = sims.shape
    owner = np.arange(n_captions) // per_image
    target = sims[owner, np.arange(n_captions)]
    ranks = np.zeros(n_captions, dtype=np.int64)
    for start in range(0, n_images, ROW_BLOCK):
        block = sims[start:start + ROW_BLOCK]
        ranks += _count_before(block, target, owner - start, axis=0)
    return ranks


def rank_summary(ranks: np.ndarray) -> dict:
    """R@1/5/10 in percent, medr = floor(median) + 1 and meanr = mean + 1 (1-based)."""
    ranks = np.asarray(ranks)
    summary = {f"r{k}": float(100.0 * np.mean(ranks < k)) for k in RECALL_KS}
    summary["medr"] = float(np.floor(np.median(ranks)) + 1)
    summary["meanr"] = float(np.mean(ranks) + 1)
    return summary


def rsum(metrics: dict) -> float:
    """R@1 + R@5 + R@10 of both directions (what the paper calls rsum)."""
    return float(sum(metrics[d][f"r{k}"] for d in DIRECTIONS for k in RECALL_KS))


def recall_metrics(sims: np.ndarray) -> dict:
    """Both directions' rank summaries and rsum, without ASP (training validation uses this)."""
    metrics = {"i2t": rank_summary(i2t_ranks(sims)), "t2i": rank_summary(t2i_ranks(sims))}
    metrics["rsum"] = rsum(metrics)
    return metrics
