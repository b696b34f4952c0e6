"""Bootstrap over images: a 95% percentile interval for every figure of both directions.

The resampled unit is the image: a replicate draws the fold's images with replacement, and a
drawn image brings its i2t query and the t2i queries of all its captions. The five captions of
an image share its difficulty, so drawing captions one by one (as if independent) gives t2i
intervals far too narrow; one draw per replicate for both directions also makes rsum, a sum of
both directions' recalls, vary as it would on another sample of images. coco-1k draws within
each fold and averages the fold figures, as the protocol does.

Draws come from a generator seeded with (seed, fold), so two runs over the same images get the
same replicates: that is what makes bench.eval.paired a paired bootstrap. A replicate is held
as a count per image, so every mean figure of a chunk of replicates is one product with the
images' sums and the median one cumulative sum of rank histograms (coco-5k, 1,000 replicates:
about a second on 2 cores).

At 0% or 100% a recall's replicates are all equal and the percentile interval collapses to a
point; there the interval is Clopper-Pearson's over the fold's images instead (see
`boundary_interval`). A group of one image has nothing to resample: its recalls get the exact
(Clopper-Pearson) interval over their queries, its other figures none. meanr gets no interval:
ranks are long-tailed, and neither the percentile nor a studentized bootstrap interval of their
mean reaches its nominal coverage (tests/test_bootstrap.py simulates it; docs/statistics.md).

    reps = replicates(queries)                  # queries: bench.eval.per_query layout
    intervals(reps)["all"][("i2t", "r1")]       # (low, high)
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse, stats

from bench.common.errors import BenchError
from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.eval.metrics import RECALL_KS
from bench.eval.protocols import DIRECTIONS

RESAMPLES = 1000
SEED = 2022
CONFIDENCE = 0.95
CHUNK_ELEMENTS = 1 << 22  # replicates x images (or distinct ranks) held as float64 at a time (~32 MB)
UNIT = "image"
METHOD = ("percentile bootstrap over images (each drawn image brings its i2t query and its captions' "
          "t2i queries, one draw for both directions; coco-1k: within folds, fold figures averaged); "
          "Clopper-Pearson over the images for a recall at 0% or 100%; a group of one image: Clopper-Pearson "
          "over its queries for recalls, no interval for the other figures; no interval for meanr (the mean "
          "of long-tailed ranks: no bootstrap interval reaches its nominal coverage)")
NO_INTERVAL = ("meanr",)  # figures given no interval (why: the module docstring)
VALUE_FIELDS = ("rank", "asp", "pmrp")  # the per-query values figures are computed from
RECALLS = tuple(f"r{k}" for k in RECALL_KS)


@dataclass(frozen=True)
class Settings:
    resamples: int = RESAMPLES
    seed: int = SEED
    confidence: float = CONFIDENCE

    def record(self) -> dict:
        """What a result file says about its intervals."""
        return {"method": METHOD, "resample": UNIT, "resamples": self.resamples, "seed": self.seed,
                "confidence": self.confidence}


def resample_indices(rng: np.random.Generator, n_units: int, n_resamples: int) -> np.ndarray:
    """(n_resamples, n_units) unit indices drawn with replacement (scipy.stats.bootstrap's draw)."""
    return rng.integers(0, n_units, (n_resamples, n_units))


def counts_of(indices: np.ndarray, n_units: int) -> np.ndarray:
    """(resamples, n_units) float64: how many times each unit was drawn in each resample."""
    offsets = n_units * np.arange(len(indices))[:, None]
    counts = np.bincount((indices + offsets).ravel(), minlength=len(indices) * n_units)
    return counts.reshape(len(indices), n_units).astype(np.float64)


def _columns(values: dict) -> tuple[list[str], np.ndarray]:
    """Names and (queries, k) matrix of the per-query quantities whose resampled means we need."""
    rank = values["rank"].astype(np.float64)
    names = [f"r{k}" for k in RECALL_KS] + ["rank"]
    columns = [(rank < k).astype(np.float64) for k in RECALL_KS] + [rank]
    if "asp" in values:
        names.append("asp")
        columns.append(values["asp"])
    if "pmrp" in values:
        answered = ~np.isnan(values["pmrp"])
        for t in range(values["pmrp"].shape[1]):
            names += [f"pmrp_sum{t}", f"pmrp_count{t}"]
            columns += [np.where(answered[:, t], values["pmrp"][:, t], 0.0), answered[:, t].astype(np.float64)]
    return names, np.stack(columns, axis=1)


def figures_of_means(names: list[str], means: np.ndarray) -> dict:
    """Each mean figure (bench.eval.metrics / asp / pmrp definitions) from the columns' means."""
    col = {name: means[:, i] for i, name in enumerate(names)}
    figures = {f"r{k}": 100.0 * col[f"r{k}"] for k in RECALL_KS}
    figures["meanr"] = col["rank"] + 1
    if "asp" in col:
        figures["asp"] = 100.0 * col["asp"]
    thresholds = sum(name.startswith("pmrp_sum") for name in names)
    if thresholds:
        per_threshold = [col[f"pmrp_sum{t}"] / np.maximum(col[f"pmrp_count{t}"], 1e-300) for t in range(thresholds)]
        figures["pmrp"] = 100.0 * np.mean(per_threshold, axis=0)
    return figures


class DirectionQueries:
    """One direction's queries of one fold, summed per image: a resample weights images, so
    each figure needs only the per-image sums (means) and per-image rank histograms (median)."""

    def __init__(self, values: dict, image: np.ndarray, n_images: int):
        names, matrix = _columns(values)
        self.names, self.image = names, image  # image: each query's position in the fold's images
        self.image_sums = np.zeros((n_images, matrix.shape[1]))
        np.add.at(self.image_sums, image, matrix)
        self.image_queries = np.bincount(image, minlength=n_images).astype(np.float64)
        self.ranks, rank_slot = np.unique(values["rank"], return_inverse=True)
        self.histogram = sparse.csr_matrix(  # (distinct ranks, n_images): queries of each image at each rank
            (np.ones(len(image)), (rank_slot.ravel(), image)), shape=(len(self.ranks), n_images))

    def figures(self, image_counts: np.ndarray) -> dict:
        """{metric: (resamples,)} with each query weighted by its image's count in each resample."""
        totals = image_counts @ self.image_queries
        figures = figures_of_means(self.names, image_counts @ self.image_sums / totals[:, None])
        cumulative = np.cumsum(np.asarray((self.histogram @ image_counts.T).T), axis=1)
        middle = [np.floor((totals - 1) / 2), np.floor(totals / 2)]  # 0-based middle positions
        picks = [self.ranks[np.count_nonzero(cumulative <= p[:, None], axis=1)] for p in middle]
        figures["medr"] = np.floor((picks[0] + picks[1]) / 2) + 1
        return figures


@dataclass(frozen=True)
class ImageFold:
    """The queries of one fold grouped by image: what one bootstrap draw resamples."""

    label: str  # "0".."F-1"
    n_images: int
    directions: dict  # {direction: DirectionQueries}

    def figures(self, count_chunks: Iterator[np.ndarray]) -> dict:
        """{(direction, metric): (resamples,)} over chunks of (resamples, n_images) image counts,
        every direction weighted by the same counts; rsum under ("both", "rsum")."""
        parts: dict = {}
        for counts in count_chunks:
            for direction, queries in self.directions.items():
                for metric, values in queries.figures(counts).items():
                    parts.setdefault((direction, metric), []).append(values)
        figures = {key: np.concatenate(chunks) for key, chunks in parts.items()}
        return with_rsum(figures)


def with_rsum(figures: dict) -> dict:
    """`figures` ({(direction, metric): values}) with rsum, both directions' recalls summed, under
    ("both", "rsum")."""
    figures[("both", "rsum")] = sum(figures[(d, r)] for d in DIRECTIONS for r in RECALLS)
    return figures


def query_images(queries: dict) -> dict:
    """{direction: (queries,) split-wide image row of each query} (a t2i query: its caption's image)."""
    i2t, t2i = np.asarray(queries["i2t"]["index"]), np.asarray(queries["t2i"]["index"])
    per_image = CAPTIONS_PER_IMAGE if len(t2i) == CAPTIONS_PER_IMAGE * len(i2t) else 1  # CC152K: one caption
    return {"i2t": i2t, "t2i": t2i // per_image}


def image_folds(queries: dict, fields: tuple[str, ...] = VALUE_FIELDS) -> list[ImageFold]:
    """Each fold's queries grouped by image; `fields`: the per-query values to use (when present).

    A fold's images are its i2t queries; every t2i query must belong to one of them."""
    images = query_images(queries)
    folds = []
    for fold in np.unique(queries["i2t"]["fold"]):
        fold_images = images["i2t"][queries["i2t"]["fold"] == fold]
        order = np.argsort(fold_images, kind="stable")
        directions = {}
        for direction in DIRECTIONS:
            values = queries[direction]
            keep = values["fold"] == fold
            if not keep.any():
                raise BenchError(f"bootstrap: fold {fold} has no {direction} queries")
            found = order[np.minimum(np.searchsorted(fold_images[order], images[direction][keep]),
                                     len(order) - 1)]
            if not np.array_equal(fold_images[found], images[direction][keep]):
                raise BenchError(f"bootstrap: fold {fold} has {direction} queries of images without "
                                 f"an i2t query in that fold; the per-query file is inconsistent")
            subset = {k: v[keep] for k, v in values.items() if k in fields}
            directions[direction] = DirectionQueries(subset, found, len(fold_images))
        folds.append(ImageFold(str(int(fold)), len(fold_images), directions))
    return folds


def drawn_counts(rng: np.random.Generator, fold: ImageFold, n_resamples: int) -> Iterator[np.ndarray]:
    """Chunks of (resamples, n_images) image counts, sized so a chunk's rank histograms stay
    within CHUNK_ELEMENTS."""
    width = max([fold.n_images] + [len(d.ranks) for d in fold.directions.values()])
    step = max(1, CHUNK_ELEMENTS // width)
    for start in range(0, n_resamples, step):
        yield counts_of(resample_indices(rng, fold.n_images, min(step, n_resamples - start)), fold.n_images)


def fold_generator(seed: int, fold: ImageFold) -> np.random.Generator:
    """The draws of one fold: the same for every run over the same images."""
    return np.random.default_rng([seed, int(fold.label)])


def by_group(per_fold: dict) -> dict:
    """{fold label: {key: values}} -> {group: {key: values}}: group "all" (one fold) or "mean" and
    "0".."F-1" (coco-1k), as the result rows name them; the mean averages the folds' values."""
    if len(per_fold) == 1:
        return {"all": next(iter(per_fold.values()))}
    keys = next(iter(per_fold.values())).keys()
    mean = {key: np.mean([values[key] for values in per_fold.values()], axis=0) for key in keys}
    return {"mean": mean, **per_fold}


def group_figures(folds: list[ImageFold], chunks_of: Callable[[ImageFold], Iterator[np.ndarray]]) -> dict:
    """{group: {(direction, metric): values}} (see by_group); `chunks_of(fold)` yields its image counts."""
    return by_group({fold.label: fold.figures(chunks_of(fold)) for fold in folds})


def point_figures(queries: dict, fields: tuple[str, ...] = VALUE_FIELDS) -> dict:
    """{group: {(direction, metric): value}}: every figure recomputed from the per-query values
    (each image once), as `eval` computed it from the scores."""
    return fold_points(image_folds(queries, fields))


def fold_points(folds: list[ImageFold]) -> dict:
    """point_figures of folds already grouped (image_folds)."""
    figures = group_figures(folds, lambda fold: iter([np.ones((1, fold.n_images))]))
    return {group: {key: float(values[0]) for key, values in by_key.items()} for group, by_key in figures.items()}


@dataclass(frozen=True)
class Replicates:
    figures: dict  # {group: {(direction, metric): (resamples,) figures}}
    images: dict  # {group: images resampled} (coco-1k "mean": all folds' images)
    queries: dict = field(default_factory=dict)  # {group: {direction: queries}}


def replicates(queries: dict, settings: Settings = Settings(),
               fields: tuple[str, ...] = VALUE_FIELDS) -> Replicates:
    """Every figure of every resample of the images (see the module docstring)."""
    return fold_replicates(image_folds(queries, fields), settings)


def fold_replicates(folds: list[ImageFold], settings: Settings = Settings()) -> Replicates:
    """replicates of folds already grouped (image_folds)."""
    figures = group_figures(folds, lambda fold: drawn_counts(fold_generator(settings.seed, fold), fold,
                                                             settings.resamples))
    images = {fold.label: fold.n_images for fold in folds}
    queries = {fold.label: {d: len(q.image) for d, q in fold.directions.items()} for fold in folds}
    if len(folds) == 1:
        return Replicates(figures, {"all": folds[0].n_images}, {"all": queries[folds[0].label]})
    total = {d: sum(by_direction[d] for by_direction in queries.values()) for d in DIRECTIONS}
    return Replicates(figures, {"mean": sum(images.values()), **images}, {"mean": total, **queries})


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def clopper_pearson(hits: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact binomial interval (percent) of `hits` in `trials`."""
    tail = (1.0 - confidence) / 2.0
    low = stats.beta.ppf(tail, hits, trials - hits + 1) if hits > 0 else 0.0
    high = stats.beta.ppf(1.0 - tail, hits + 1, trials - hits) if hits < trials else 1.0
    return 100.0 * float(low), 100.0 * float(high)


def boundary_interval(percent: float, n_images: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Clopper-Pearson interval (percent) of a recall observed at 0% or 100% of `n_images` draws.

    Every resample of an all-miss (or all-hit) sample misses (hits) too, so the bootstrap says
    [0, 0]; the exact binomial bound says how high (low) the recall could still be. Counting
    images, not queries, keeps it conservative for t2i, whose captions cluster by image."""
    return clopper_pearson(0 if percent == 0.0 else n_images, n_images, confidence)


def one_image_intervals(figures: dict, queries: dict, confidence: float = CONFIDENCE) -> dict:
    """A group of one image: every resample is that image, so a bootstrap interval would be a point
    claiming certainty. Its recalls get the exact interval over its queries (t2i: its captions, which
    share the image's difficulty, so this is the best one image allows, not a sample of images); the
    other figures get none."""
    bounds = {}
    for (direction, metric), values in figures.items():
        if direction != "both" and metric in RECALLS:
            trials = queries[direction]
            bounds[(direction, metric)] = clopper_pearson(round(float(values[0]) * trials / 100.0), trials,
                                                          confidence)
    return bounds


def _degenerate_recall(metric: str, values: np.ndarray) -> bool:
    return metric in RECALLS and (np.all(values == 0.0) or np.all(values == 100.0))


def group_intervals(figures: dict, n_images: int, confidence: float = CONFIDENCE) -> dict:
    """{(direction, metric): (low, high)} of one group: percentile, or Clopper-Pearson for a
    recall at 0% / 100%; rsum widens by those recalls' bounds (their replicates are constant)."""
    bounds = {key: percentile_interval(values, confidence) for key, values in figures.items()
              if key[1] not in NO_INTERVAL}
    widen = [0.0, 0.0]
    for (direction, metric), values in figures.items():
        if direction != "both" and _degenerate_recall(metric, values):
            point = float(values[0])
            bounds[(direction, metric)] = low_high = boundary_interval(point, n_images, confidence)
            widen = [widen[0] + low_high[0] - point, widen[1] + low_high[1] - point]
    if ("both", "rsum") in bounds:
        low, high = bounds[("both", "rsum")]
        bounds[("both", "rsum")] = (low + widen[0], high + widen[1])
    return bounds


def intervals(reps: Replicates, confidence: float = CONFIDENCE) -> dict:
    """{group: {(direction, metric): (low, high)}} from `replicates`; a figure without an interval
    (meanr; a one-image group's figures other than recalls) has no entry."""
    return {group: one_image_intervals(figures, reps.queries[group], confidence) if reps.images[group] == 1
            else group_intervals(figures, reps.images[group], confidence)
            for group, figures in reps.figures.items()}
