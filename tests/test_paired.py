"""Paired gains of two runs that really differ: bootstrap and permutation test against numpy oracles."""

import numpy as np
import pytest

from bench.common.errors import BenchError
from bench.eval import bootstrap, paired
from bench.eval.pmrp import pmrp_figure
from bench.results.interval_text import interval_text, p_text

N_IMAGES = 60


def _run_pair(seed=0):
    """Run A, and run B that ranks better on some images and worse on others (clustered by image)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.gamma(1.0, 4.0, N_IMAGES)
    runs = ({}, {})
    for direction, n in (("i2t", N_IMAGES), ("t2i", 5 * N_IMAGES)):
        image = np.arange(n) // (n // N_IMAGES)
        rank_a = rng.poisson(difficulty[image])
        shift = np.where(rng.random(N_IMAGES) < 0.7, -3, 1)[image]  # B helps 70% of the images
        rank_b = np.maximum(rank_a + shift + rng.integers(-1, 2, n), 0)
        pmrp = rng.random((n, 3))
        pmrp[rng.random((n, 3)) < 0.2] = np.nan
        common = {"index": np.arange(n), "fold": np.zeros(n, dtype=np.int16)}
        runs[0][direction] = common | {"rank": rank_a, "asp": rng.random(n), "pmrp": pmrp}
        runs[1][direction] = common | {"rank": rank_b, "asp": np.clip(runs[0][direction]["asp"] + 0.05 *
                                       rng.standard_normal(n), 0, 1), "pmrp": np.clip(pmrp + 0.1, 0, 1)}
    return runs


def _figures(run, images):
    """Figures of the queries of `images` (each i2t query and its five captions), by hand."""
    rows = {"i2t": images, "t2i": (5 * images[:, None] + np.arange(5)).ravel()}
    figures = {}
    for direction, picked in rows.items():
        values = {field: array[picked] for field, array in run[direction].items()}
        figures |= {(direction, f"r{k}"): 100 * np.mean(values["rank"] < k) for k in (1, 5, 10)}
        figures[(direction, "meanr")] = np.mean(values["rank"]) + 1
        figures[(direction, "asp")] = 100 * np.mean(values["asp"])
        figures[(direction, "pmrp")] = pmrp_figure(values["pmrp"])
    figures[("both", "rsum")] = sum(figures[(d, f"r{k}")] for d in rows for k in (1, 5, 10))
    return figures


def _swapped(run_a, run_b, swap):
    """A and B with their values exchanged on the images where `swap` is 1."""
    out_a, out_b = {}, {}
    for direction in ("i2t", "t2i"):
        per_image = len(run_a[direction]["rank"]) // N_IMAGES
        moved = np.repeat(swap.astype(bool), per_image)
        out_a[direction], out_b[direction] = {}, {}
        for field, values in run_a[direction].items():
            mask = moved.reshape(-1, *([1] * (values.ndim - 1)))
            out_a[direction][field] = np.where(mask, run_b[direction][field], values)
            out_b[direction][field] = np.where(mask, values, run_b[direction][field])
    return out_a, out_b


def test_paired_gains_equal_a_numpy_oracle_on_the_same_draws():
    run_a, run_b = _run_pair()
    settings = bootstrap.Settings(resamples=300, seed=4)
    gains = paired.paired_gains(run_a, run_b, settings, n_permutations=200)["all"]
    everything = np.arange(N_IMAGES)
    point_a, point_b = _figures(run_a, everything), _figures(run_b, everything)
    draws = bootstrap.resample_indices(np.random.default_rng([4, 0]), N_IMAGES, 300)
    resampled = [(_figures(run_a, images), _figures(run_b, images)) for images in draws]
    swaps = np.random.default_rng([4, 0, paired.PERMUTATION_STREAM]).integers(0, 2, (200, N_IMAGES))
    permuted = [tuple(_figures(run, everything) for run in _swapped(run_a, run_b, swap)) for swap in swaps]
    for key in point_a:
        gain, observed = gains[key], point_b[key] - point_a[key]
        difference = np.array([b[key] - a[key] for a, b in resampled])
        assert gain["value_a"] == pytest.approx(point_a[key]) and gain["gain"] == pytest.approx(observed)
        assert (gain["ci_low"], gain["ci_high"]) == pytest.approx(tuple(np.percentile(difference, [2.5, 97.5])))
        better = difference < 0 if key[1] == "meanr" else difference > 0
        assert gain["frac_not_better"] == pytest.approx(1 - np.mean(better))
        extreme = sum(abs(b[key] - a[key]) >= abs(observed) - 1e-9 for a, b in permuted)
        assert gain["p_value"] == pytest.approx((1 + extreme) / 201), key
    assert gains[("t2i", "r1")]["ci_low"] > 0 and gains[("t2i", "r1")]["p_value"] < 0.01  # B is better
    assert gains[("i2t", "medr")]["p_value"] is None and gains[("i2t", "medr")]["frac_not_better"] is None


def test_an_interval_from_caption_draws_is_narrower_than_the_paired_image_interval():
    """The pair differs image by image, so drawing captions independently understates the noise."""
    run_a, run_b = _run_pair(seed=3)
    gains = paired.paired_gains(run_a, run_b, bootstrap.Settings(resamples=1000), n_permutations=10)["all"]
    hits = [run["t2i"]["rank"] < 5 for run in (run_a, run_b)]
    per_caption = 100 * (hits[1].astype(float) - hits[0])
    draws = np.random.default_rng(0).integers(0, len(per_caption), (1000, len(per_caption)))
    caption_low, caption_high = np.percentile(per_caption[draws].mean(axis=1), [2.5, 97.5])
    image_width = gains[("t2i", "r5")]["ci_high"] - gains[("t2i", "r5")]["ci_low"]
    assert image_width > 1.2 * (caption_high - caption_low)


def test_holm_multiplies_the_smallest_p_by_the_family_size_and_keeps_the_order():
    adjusted = paired.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    assert adjusted == pytest.approx({"a": 0.04, "c": 0.09, "b": 0.09, "d": 0.5})


def _reference_holm(p_values: dict) -> dict:
    """Holm (1979) from its definition: the i-th smallest of m p-values times (m - i + 1), capped at 1,
    made monotone by taking the largest adjusted value so far."""
    keys = sorted(p_values, key=p_values.get)
    scaled = np.minimum(1.0, (len(keys) - np.arange(len(keys))) * np.array([p_values[k] for k in keys]))
    return dict(zip(keys, np.maximum.accumulate(scaled)))


def test_paired_gains_adjust_the_p_values_of_one_group_with_holm():
    run_a, run_b = _run_pair(seed=4)
    gains = paired.paired_gains(run_a, run_b, bootstrap.Settings(resamples=50), n_permutations=100)["all"]
    tested = {key: g["p_value"] for key, g in gains.items() if g["p_value"] is not None}
    assert len(tested) == 13
    expected = _reference_holm(tested)
    assert {key: gains[key]["p_holm"] for key in tested} == pytest.approx(expected)
    # this draw tells Holm from Bonferroni (m * p) on several figures, so either mistake would show
    assert sum(expected[key] < min(1.0, 13 * p) - 1e-9 for key, p in tested.items()) >= 3


def test_runs_over_other_queries_are_refused():
    run_a, run_b = _run_pair()
    run_b["t2i"]["index"] = run_b["t2i"]["index"][::-1].copy()
    with pytest.raises(BenchError, match="t2i queries differ"):
        paired.paired_gains(run_a, run_b, bootstrap.Settings(resamples=10), n_permutations=10)


def test_display_of_intervals_and_p_values():
    assert interval_text(8.0, 30.0) == "[8.00, 30.00]" and interval_text(-1.234, 2.0, "+", 1) == "[-1.2, +2.0]"
    assert interval_text("", 3.0) == "" and interval_text(None, None) == ""
    assert p_text(0.0005) == "< 0.001" and p_text(0.0123) == "0.012" and p_text(None) == "–"


def test_coco_1k_pairs_permute_within_folds_and_test_each_fold_as_its_own_family():
    run_a, run_b = _run_pair(seed=2)
    for run in (run_a, run_b):
        for direction, values in run.items():
            values["fold"] = (np.arange(len(values["fold"])) >= len(values["fold"]) // 2).astype(np.int16)
    gains = paired.paired_gains(run_a, run_b, bootstrap.Settings(resamples=100, seed=7), n_permutations=100)
    assert set(gains) == {"mean", "0", "1"}
    for key, gain in gains["mean"].items():
        assert gain["gain"] == pytest.approx((gains["0"][key]["gain"] + gains["1"][key]["gain"]) / 2)
    half = N_IMAGES // 2
    for fold, images in (("0", np.arange(half)), ("1", np.arange(half, N_IMAGES))):
        # the oracle: swaps drawn for this fold's images only, every other image left where it is
        draws = np.random.default_rng([7, int(fold), paired.PERMUTATION_STREAM]).integers(0, 2, (100, half))
        swaps = np.zeros((100, N_IMAGES), dtype=np.int64)
        swaps[:, images] = draws
        observed_a, observed_b = _figures(run_a, images), _figures(run_b, images)
        permuted = [tuple(_figures(run, images) for run in _swapped(run_a, run_b, swap)) for swap in swaps]
        for key, gain in gains[fold].items():
            if key[1] == "medr":
                continue
            observed = observed_b[key] - observed_a[key]
            extreme = sum(abs(b[key] - a[key]) >= abs(observed) - 1e-9 for a, b in permuted)
            assert gain["p_value"] == pytest.approx((1 + extreme) / 101), (fold, key)
    for group in gains.values():
        tested = {key: g["p_value"] for key, g in group.items() if g["p_value"] is not None}
        assert {key: group[key]["p_holm"] for key in tested} == pytest.approx(_reference_holm(tested))


def _swapped_pairs(n_folds=5, per_fold=6, seed=0):
    """coco-1k-like runs A and B over the same images, B being A with the values of pairs of images
    (within a fold) exchanged: a replicate that draws both images of every pair equally often has
    a gain of exactly 0, which floating-point sums may not give."""
    rng = np.random.default_rng(seed)
    n = n_folds * per_fold
    runs = ({}, {})
    partner = np.arange(n).reshape(n_folds, per_fold // 2, 2)[..., ::-1].ravel()  # 0<->1, 2<->3, ...
    for direction, per_image in (("i2t", 1), ("t2i", 5)):
        image = np.arange(n * per_image) // per_image
        rank = rng.integers(0, 12, n * per_image)
        common = {"index": np.arange(n * per_image), "fold": (image // per_fold).astype(np.int16)}
        swapped = (partner[image] * per_image + np.arange(n * per_image) % per_image)
        runs[0][direction] = common | {"rank": rank}
        runs[1][direction] = common | {"rank": rank[swapped]}
    return runs, n_folds, per_fold


def test_frac_not_better_counts_exact_ties_as_not_better_like_an_exact_reference():
    """Against integer arithmetic: a replicate's gain is a sum of whole numbers over the fold sizes,
    so its sign is exact; a tie (gain 0) counts as not better, whatever the floating-point noise."""
    (run_a, run_b), n_folds, per_fold = _swapped_pairs()
    resamples, seed = 400, 11
    gains = paired.paired_gains(run_a, run_b, bootstrap.Settings(resamples=resamples, seed=seed), n_permutations=50)
    numerators = {}  # {(direction, metric): (folds, resamples) integer gains x fold size}
    for fold in range(n_folds):
        draws = np.random.default_rng([seed, fold]).integers(0, per_fold, (resamples, per_fold))
        counts = np.stack([np.bincount(row, minlength=per_fold) for row in draws])
        for direction in ("i2t", "t2i"):
            keep = run_a[direction]["fold"] == fold
            image = np.arange(keep.sum()) // (keep.sum() // per_fold)
            for metric, column in (("r1", lambda r: r < 1), ("r5", lambda r: r < 5), ("meanr", lambda r: r)):
                per_image = [np.bincount(image, column(run[direction]["rank"][keep])).astype(np.int64)
                             for run in (run_a, run_b)]
                numerators.setdefault((direction, metric), []).append(counts @ (per_image[1] - per_image[0]))
    ties = 0
    for key, by_fold in numerators.items():
        lower_is_better = key[1] == "meanr"
        for group, numerator in [("mean", np.sum(by_fold, axis=0)), *((str(f), n) for f, n in enumerate(by_fold))]:
            not_better = numerator >= 0 if lower_is_better else numerator <= 0
            ties += np.count_nonzero(numerator == 0)
            assert gains[group][key]["frac_not_better"] == np.mean(not_better), (group, key)
    assert ties > 1000  # many exact ties: the case the rule is for
