"""Run B against run A over the same images: paired bootstrap gains and permutation p-values.

    gains = paired_gains(queries_a, queries_b)     # bench.eval.per_query layout, same queries
    gains["all"][("t2i", "r1")]                    # {"value_a", "value_b", "gain", "ci_low", ...}

Both runs are resampled with the same image draws (bench.eval.bootstrap), so each replicate's
gain compares the two models on the same images; its 2.5 and 97.5 percentiles are the gain's
interval. `frac_not_better` is the share of replicates in which B is not better (a gain within
the p-value's tie tolerance of 0 is a tie): a description of the bootstrap, not a p-value.
`p_value` is a paired sign-flip permutation test: under "the two models are exchangeable",
swapping A's and B's values of a random half of the images (each image with its i2t query and all
its captions' t2i queries) is as likely as the observed assignment; the p-value is the two-sided
share of swaps whose gain is at least as large as the observed one. `p_holm` adjusts the p-values
of one group of figures (Holm) because a comparison tests them all at once. medr gets neither: its
resampling distribution is too lumpy (a few distinct values) for either to be calibrated.
"""

import numpy as np

from bench.common.errors import BenchError
from bench.eval import bootstrap
from bench.eval.protocols import DIRECTIONS

PERMUTATIONS = 1999
PERMUTATION_STREAM = 1  # draws of the permutations, apart from the bootstrap's
LOWER_IS_BETTER = ("medr", "meanr")
UNTESTED = ("medr",)
TIE_TOLERANCE = 1e-9  # a permuted gain this close to the observed one counts as "as large"; a
# replicate gain this close to 0 is a tie (frac_not_better)


def common_fields(queries_a: dict, queries_b: dict) -> tuple[str, ...]:
    """The per-query values both runs have (a run without PMRP has no PMRP gain)."""
    return tuple(field for field in bootstrap.VALUE_FIELDS
                 if all(field in q[d] for q in (queries_a, queries_b) for d in DIRECTIONS))


def check_same_layout(queries_a: dict, queries_b: dict) -> None:
    """Refuse two runs whose queries are not the same images and captions in the same folds."""
    for direction in DIRECTIONS:
        for field in ("index", "fold"):
            if not np.array_equal(queries_a[direction][field], queries_b[direction][field]):
                raise BenchError(f"the two runs' {direction} queries differ ({field}); "
                                 f"a paired comparison needs the same queries")


def fold_permutation_gains(fold_a: bootstrap.ImageFold, fold_b: bootstrap.ImageFold, rng: np.random.Generator,
                           n_permutations: int) -> dict:
    """{(direction, metric): (n_permutations,)} gains B - A after swapping the runs' values of a
    random half of the images; every figure but medr (sums of per-query columns, so swaps are
    one matrix product)."""
    swaps = rng.integers(0, 2, (n_permutations, fold_a.n_images)).astype(np.float64)
    gains = {}
    for direction in DIRECTIONS:
        a, b = fold_a.directions[direction], fold_b.directions[direction]
        sums_a, sums_b = a.image_sums, b.image_sums
        moved = swaps @ (sums_a - sums_b)  # what the swapped images move from A's side to B's
        n_queries = len(a.image)
        side_b = bootstrap.figures_of_means(a.names, (sums_b.sum(axis=0) + moved) / n_queries)
        side_a = bootstrap.figures_of_means(a.names, (sums_a.sum(axis=0) - moved) / n_queries)
        gains |= {(direction, metric): side_b[metric] - side_a[metric] for metric in side_b}
    return bootstrap.with_rsum(gains)


def permutation_gains(folds_a: list, folds_b: list, seed: int, n_permutations: int) -> dict:
    """{group: {(direction, metric): permuted gains}}, grouped as bootstrap.by_group."""
    per_fold = {}
    for fold_a, fold_b in zip(folds_a, folds_b):
        rng = np.random.default_rng([seed, int(fold_a.label), PERMUTATION_STREAM])
        per_fold[fold_a.label] = fold_permutation_gains(fold_a, fold_b, rng, n_permutations)
    return bootstrap.by_group(per_fold)


def permutation_p(observed: float, permuted: np.ndarray) -> float:
    """Two-sided: (1 + permutations at least as extreme) / (1 + permutations)."""
    extreme = np.count_nonzero(np.abs(permuted) >= abs(observed) - TIE_TOLERANCE)
    return float((1 + extreme) / (1 + len(permuted)))


def frac_not_better(differences: np.ndarray, lower_is_better: bool) -> float:
    """Share of replicates in which B is not better than A. A difference within TIE_TOLERANCE of 0 is a
    tie (not better), as in the p-value: the figures of a replicate are float sums, so two runs that tie
    exactly can differ by 1e-15 either way, and that noise must not decide."""
    signed = -differences if lower_is_better else differences
    return float(np.mean(signed <= TIE_TOLERANCE))


def holm(p_values: dict) -> dict:
    """Holm's step-down adjustment of a family of p-values ({key: p} -> {key: adjusted p})."""
    ordered = sorted(p_values, key=p_values.get)
    adjusted, running = {}, 0.0
    for place, key in enumerate(ordered):
        running = max(running, min(1.0, (len(ordered) - place) * p_values[key]))
        adjusted[key] = running
    return adjusted


def paired_gains(queries_a: dict, queries_b: dict, settings: bootstrap.Settings = bootstrap.Settings(),
                 n_permutations: int = PERMUTATIONS) -> dict:
    """{group: {(direction, metric): gain of B over A}} for every figure both runs have.

    Each gain: value_a, value_b (recomputed from the per-query values), gain (B - A), ci_low,
    ci_high (paired bootstrap over images), and, except for medr, frac_not_better, p_value
    (sign-flip permutation over images, two-sided) and p_holm (Holm over the group's figures)."""
    check_same_layout(queries_a, queries_b)
    fields = common_fields(queries_a, queries_b)
    folds = [bootstrap.image_folds(q, fields) for q in (queries_a, queries_b)]
    points = [bootstrap.fold_points(f) for f in folds]
    reps = [bootstrap.fold_replicates(f, settings).figures for f in folds]
    permuted = permutation_gains(*folds, settings.seed, n_permutations)
    result = {}
    for group, figures in reps[0].items():
        gains = {}
        for key, values_a in figures.items():
            metric = key[1]
            value_a, value_b = points[0][group][key], points[1][group][key]
            difference = reps[1][group][key] - values_a
            low, high = bootstrap.percentile_interval(difference, settings.confidence)
            gain = {"value_a": value_a, "value_b": value_b, "gain": value_b - value_a, "ci_low": low,
                    "ci_high": high, "frac_not_better": None, "p_value": None, "p_holm": None}
            if metric not in UNTESTED:
                gain["frac_not_better"] = frac_not_better(difference, metric in LOWER_IS_BETTER)
                gain["p_value"] = permutation_p(value_b - value_a, permuted[group][key])
            gains[key] = gain
        tested = {key: g["p_value"] for key, g in gains.items() if g["p_value"] is not None}
        for key, adjusted in holm(tested).items():
            gains[key]["p_holm"] = adjusted
        result[group] = gains
    return result
