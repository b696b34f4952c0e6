"""Bootstrap over queries: a 95% percentile interval for every figure, and paired gains.

A resample draws each direction's queries with replacement (coco-1k: within each fold, and
the fold figures are averaged, as the protocol does). Draws come from a generator seeded with
(seed, fold, direction), so two runs over the same queries get the same resamples: that is
what makes `paired_gains` a paired bootstrap. Each resample is held as counts per query, so
every mean figure of a chunk of resamples is one matrix product and the median one cumulative
sum (coco-5k, 1,000 resamples: a few seconds on 2 cores).

    reps = replicates(queries)                  # queries: bench.eval.per_query layout
    intervals(reps)["all"][("i2t", "r1")]       # (low, high)
"""

from dataclasses import dataclass

import numpy as np

from bench.common.errors import BenchError
from bench.eval.metrics import RECALL_KS
from bench.eval.protocols import DIRECTIONS

RESAMPLES = 1000
SEED = 2022
CONFIDENCE = 0.95
CHUNK_ELEMENTS = 1 << 22  # resamples x queries held as float64 counts at a time (~32 MB)
METHOD = "percentile bootstrap over queries (coco-1k: within folds, fold figures averaged)"


@dataclass(frozen=True)
class Settings:
    resamples: int = RESAMPLES
    seed: int = SEED
    confidence: float = CONFIDENCE

    def record(self) -> dict:
        """What a result file says about its intervals."""
        return {"method": METHOD, "resamples": self.resamples, "seed": self.seed,
                "confidence": self.confidence}


def resample_indices(rng: np.random.Generator, n_queries: int, n_resamples: int) -> np.ndarray:
    """(n_resamples, n_queries) query indices drawn with replacement (scipy.stats.bootstrap's draw)."""
    return rng.integers(0, n_queries, (n_resamples, n_queries))


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


def _figures(names: list[str], means: np.ndarray, medians: np.ndarray) -> dict:
    """Each figure (bench.eval.metrics / asp / pmrp definitions) from the resampled means."""
    col = {name: means[:, i] for i, name in enumerate(names)}
    figures = {f"r{k}": 100.0 * col[f"r{k}"] for k in RECALL_KS}
    figures["medr"] = np.floor(medians) + 1
    figures["meanr"] = col["rank"] + 1
    if "asp" in col:
        figures["asp"] = 100.0 * col["asp"]
    thresholds = sum(name.startswith("pmrp_sum") for name in names)
    if thresholds:
        per_threshold = [col[f"pmrp_sum{t}"] / np.maximum(col[f"pmrp_count{t}"], 1e-300) for t in range(thresholds)]
        figures["pmrp"] = 100.0 * np.mean(per_threshold, axis=0)
    return figures


def direction_replicates(values: dict, indices_of) -> dict:
    """{metric: (resamples,)} of one direction of one fold; `indices_of(n)` yields index chunks."""
    names, matrix = _columns(values)
    n = len(matrix)
    order = np.argsort(values["rank"], kind="stable")
    sorted_rank = values["rank"][order].astype(np.float64)
    middle = ((n - 1) // 2, n // 2)
    means, medians = [], []
    for chunk in indices_of(n):
        offsets = n * np.arange(len(chunk))[:, None]
        counts = np.bincount((chunk + offsets).ravel(), minlength=chunk.size).reshape(chunk.shape)
        counts = counts.astype(np.float64)
        means.append(counts @ matrix / n)
        cumulative = np.cumsum(counts[:, order], axis=1)
        picks = [sorted_rank[np.count_nonzero(cumulative <= p, axis=1)] for p in middle]
        medians.append((picks[0] + picks[1]) / 2)
    return _figures(names, np.concatenate(means), np.concatenate(medians))


def _chunked_draws(rng: np.random.Generator, n_resamples: int):
    def indices_of(n: int):
        step = max(1, CHUNK_ELEMENTS // max(n, 1))
        for start in range(0, n_resamples, step):
            yield resample_indices(rng, n, min(step, n_resamples - start))
    return indices_of


def replicates(queries: dict, settings: Settings = Settings()) -> dict:
    """{group: {(direction, metric): (resamples,) figures}}; group "all" (one fold) or "mean"
    and "0".."F-1" (coco-1k), as the result rows name them; rsum under ("both", "rsum")."""
    folds = np.unique(queries["i2t"]["fold"])
    per_fold = {}
    for fold in folds:
        figures = {}
        for d_index, direction in enumerate(DIRECTIONS):
            values = queries[direction]
            keep = values["fold"] == fold
            subset = {k: v[keep] for k, v in values.items() if k in ("rank", "asp", "pmrp")}
            if not len(subset["rank"]):
                raise BenchError(f"bootstrap: fold {fold} has no {direction} queries")
            rng = np.random.default_rng([settings.seed, int(fold), d_index])
            reps = direction_replicates(subset, _chunked_draws(rng, settings.resamples))
            figures |= {(direction, metric): rep for metric, rep in reps.items()}
        figures[("both", "rsum")] = sum(figures[(d, f"r{k}")] for d in DIRECTIONS for k in RECALL_KS)
        per_fold[str(int(fold))] = figures
    if len(per_fold) == 1:
        return {"all": next(iter(per_fold.values()))}
    keys = next(iter(per_fold.values())).keys()
    mean = {key: np.mean([fold[key] for fold in per_fold.values()], axis=0) for key in keys}
    return {"mean": mean, **per_fold}


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def intervals(reps: dict, confidence: float = CONFIDENCE) -> dict:
    """{group: {(direction, metric): (low, high)}} from `replicates`."""
    return {group: {key: percentile_interval(values, confidence) for key, values in figures.items()}
            for group, figures in reps.items()}


def paired_gain(reps_a: np.ndarray, reps_b: np.ndarray, point_a: float, point_b: float,
                confidence: float = CONFIDENCE, lower_is_better: bool = False) -> dict:
    """B minus A on the same resamples: the gain, its interval, and the fraction of resamples
    where B is not better than A (gain <= 0; gain >= 0 for ranks, where lower is better)."""
    difference = np.asarray(reps_b) - np.asarray(reps_a)
    low, high = percentile_interval(difference, confidence)
    not_better = difference >= 0 if lower_is_better else difference <= 0
    return {"gain": float(point_b - point_a), "ci_low": low, "ci_high": high,
            "p_no_gain": float(np.mean(not_better))}
