"""Bootstrap over images: scipy on the same draws, clustered coverage, a numpy oracle, folds, 0%/100%."""

import numpy as np
import pytest
from scipy import stats

from bench.eval import bootstrap
from bench.eval.pmrp import pmrp_figure

ICC = 0.35  # within-image correlation of the t2i hits of clustered data


def _values(rng, n):
    pmrp = rng.random((n, 3))
    pmrp[rng.random((n, 3)) < 0.2] = np.nan
    return {"rank": rng.integers(0, 30, n), "asp": rng.random(n), "pmrp": pmrp}


def _queries(rng, n_images, fold=0, first_image=0):
    """Both directions of `n_images` images (five captions each) in the per-query layout."""
    images = np.arange(first_image, first_image + n_images)
    i2t = _values(rng, n_images) | {"index": images, "fold": np.full(n_images, fold, dtype=np.int16)}
    captions = np.arange(5 * first_image, 5 * (first_image + n_images))
    t2i = _values(rng, 5 * n_images) | {"index": captions, "fold": np.full(5 * n_images, fold, dtype=np.int16)}
    return {"i2t": i2t, "t2i": t2i}


def _single_unit(values, indices):
    """Figures of one direction whose queries are their own units, on the given draws."""
    n = len(values["rank"])
    return bootstrap.DirectionQueries(values, np.arange(n), n).figures(bootstrap.counts_of(indices, n))


@pytest.mark.parametrize("metric,statistic,column", [
    ("r5", lambda x, axis=-1: 100 * np.mean(x < 5, axis=axis), "rank"),
    ("medr", lambda x, axis=-1: np.floor(np.median(x, axis=axis)) + 1, "rank"),
    ("meanr", lambda x, axis=-1: np.mean(x, axis=axis) + 1, "rank"),
    ("asp", lambda x, axis=-1: 100 * np.mean(x, axis=axis), "asp"),
])
def test_one_query_per_unit_equals_scipy_bootstrap_on_the_same_draws(metric, statistic, column):
    values = _values(np.random.default_rng(3), 57)
    reps = _single_unit(values, bootstrap.resample_indices(np.random.default_rng(5), 57, 1000))
    expected = stats.bootstrap((values[column],), statistic, n_resamples=1000, method="percentile",
                               random_state=np.random.default_rng(5), vectorized=True).confidence_interval
    assert bootstrap.percentile_interval(reps[metric]) == pytest.approx((expected.low, expected.high), abs=1e-9)


def _oracle(queries, seed, resamples):
    """A few lines of numpy: draw images, take each drawn image's i2t query and its five
    captions' t2i queries, compute the figures of the resampled queries."""
    draws = bootstrap.resample_indices(np.random.default_rng([seed, 0]), len(queries["i2t"]["rank"]), resamples)
    figures = {}
    for images in draws:
        captions = (5 * images[:, None] + np.arange(5)).ravel()
        for direction, rows in (("i2t", images), ("t2i", captions)):
            rank, pmrp = queries[direction]["rank"][rows], queries[direction]["pmrp"][rows]
            figures.setdefault((direction, "r1"), []).append(100 * np.mean(rank < 1))
            figures.setdefault((direction, "r10"), []).append(100 * np.mean(rank < 10))
            figures.setdefault((direction, "medr"), []).append(np.floor(np.median(rank)) + 1)
            figures.setdefault((direction, "asp"), []).append(100 * np.mean(queries[direction]["asp"][rows]))
            figures.setdefault((direction, "pmrp"), []).append(pmrp_figure(pmrp))
    return {key: np.array(values) for key, values in figures.items()}


def test_replicates_equal_a_numpy_oracle_that_resamples_images():
    queries = _queries(np.random.default_rng(4), 40)
    reps = bootstrap.replicates(queries, bootstrap.Settings(resamples=60, seed=9))
    oracle = _oracle(queries, seed=9, resamples=60)
    for key, values in oracle.items():
        np.testing.assert_allclose(reps.figures["all"][key], values, rtol=1e-12, err_msg=str(key))
    assert reps.images == {"all": 40}


def _clustered(rng, n_images, true_recall=0.3, icc=ICC):
    """Queries whose hits share their image's difficulty: p_image ~ Beta with mean `true_recall`
    and intra-class correlation `icc`; each caption (and the image) hits with p_image."""
    strength = 1 / icc - 1
    p_image = rng.beta(true_recall * strength, (1 - true_recall) * strength, n_images)
    queries = {}
    for direction, p in (("i2t", p_image), ("t2i", np.repeat(p_image, 5))):
        rank = np.where(rng.random(len(p)) < p, 0, 7)
        queries[direction] = {"rank": rank, "index": np.arange(len(p)), "fold": np.zeros(len(p), dtype=np.int16)}
    return queries


def test_clustered_data_has_the_within_image_correlation_it_claims():
    hits = (_clustered(np.random.default_rng(0), 20000)["t2i"]["rank"] == 0).reshape(-1, 5)
    pairs = np.corrcoef(hits[:, 0], hits[:, 1])[0, 1]
    assert pairs == pytest.approx(ICC, abs=0.03)


def _coverage(interval_of, samples=240, n_images=150):
    rng = np.random.default_rng(2022)
    covered = 0
    for sample in range(samples):
        low, high = interval_of(_clustered(rng, n_images), sample)
        covered += low <= 30.0 <= high
    return covered / samples


def test_image_intervals_cover_a_clustered_t2i_recall_95_times_in_100():
    def image_level(queries, sample):
        reps = bootstrap.replicates(queries, bootstrap.Settings(resamples=400, seed=sample))
        return bootstrap.intervals(reps)["all"][("t2i", "r1")]
    assert 0.92 <= _coverage(image_level) <= 0.98


def test_caption_level_draws_undercover_the_same_clustered_recall():
    """The draw this project used before: each caption its own unit. The coverage test above
    would fail it."""
    def caption_level(queries, sample):
        t2i = queries["t2i"]
        draws = bootstrap.resample_indices(np.random.default_rng(sample), len(t2i["rank"]), 400)
        return bootstrap.percentile_interval(_single_unit(t2i, draws)["r1"])
    assert _coverage(caption_level) < 0.90


def test_image_interval_widths_match_an_independent_oracle_within_monte_carlo_error():
    queries = _clustered(np.random.default_rng(11), 300)
    ours = bootstrap.intervals(bootstrap.replicates(queries, bootstrap.Settings(resamples=2000)))["all"]
    rng = np.random.default_rng(12345)
    hits = {d: queries[d]["rank"] == 0 for d in ("i2t", "t2i")}
    t2i_hits_per_image = hits["t2i"].reshape(-1, 5).sum(axis=1)
    draws = rng.integers(0, 300, (2000, 300))
    oracle = {"i2t": 100 * hits["i2t"][draws].mean(axis=1), "t2i": 100 * t2i_hits_per_image[draws].sum(axis=1) / 1500}
    for direction in ("i2t", "t2i"):
        low, high = np.percentile(oracle[direction], [2.5, 97.5])
        assert ours[(direction, "r1")][1] - ours[(direction, "r1")][0] == pytest.approx(high - low, rel=0.1)


def test_both_directions_come_from_one_draw_so_rsum_varies_as_their_sum():
    queries = _clustered(np.random.default_rng(5), 200)
    reps = bootstrap.replicates(queries, bootstrap.Settings(resamples=2000)).figures["all"]
    together = np.corrcoef(reps[("i2t", "r1")], reps[("t2i", "r1")])[0, 1]
    assert together > 0.3  # an image's i2t hit and its captions' t2i hits share its difficulty
    rsum = sum(reps[(d, f"r{k}")] for d in ("i2t", "t2i") for k in (1, 5, 10))
    np.testing.assert_allclose(reps[("both", "rsum")], rsum)


def test_point_figures_are_the_figures_of_every_image_once():
    queries = _queries(np.random.default_rng(5), 23)
    figures = bootstrap.point_figures(queries)["all"]
    rank = queries["t2i"]["rank"]
    assert figures[("t2i", "r10")] == pytest.approx(100 * np.mean(rank < 10))
    assert figures[("t2i", "medr")] == np.floor(np.median(rank)) + 1
    assert figures[("i2t", "pmrp")] == pytest.approx(pmrp_figure(queries["i2t"]["pmrp"]))


def test_coco_1k_resamples_images_within_folds_and_averages_them():
    rng = np.random.default_rng(7)
    folds = [_queries(rng, 10, fold=k, first_image=10 * k) for k in range(5)]
    joined = {d: {f: np.concatenate([fold[d][f] for fold in folds]) for f in folds[0][d]} for d in ("i2t", "t2i")}
    reps = bootstrap.replicates(joined, bootstrap.Settings(resamples=200))
    assert set(reps.figures) == {"mean", "0", "1", "2", "3", "4"} and reps.images["mean"] == 50
    for key, mean in reps.figures["mean"].items():
        np.testing.assert_allclose(mean, np.mean([reps.figures[str(k)][key] for k in range(5)], axis=0))
    # fold 2 draws its 10 images from its own (seed, fold) stream; each brings its five captions
    drawn = bootstrap.resample_indices(np.random.default_rng([bootstrap.SEED, 2]), 10, 200)
    t2i_rank = folds[2]["t2i"]["rank"]
    by_hand = [100 * np.mean(t2i_rank[(5 * row[:, None] + np.arange(5)).ravel()] < 1) for row in drawn]
    np.testing.assert_allclose(reps.figures["2"][("t2i", "r1")], by_hand)


def test_a_t2i_query_of_an_image_outside_its_fold_is_refused():
    queries = _queries(np.random.default_rng(1), 10)
    queries["t2i"]["index"] = queries["t2i"]["index"] + 5
    with pytest.raises(bootstrap.BenchError, match="inconsistent"):
        bootstrap.replicates(queries, bootstrap.Settings(resamples=10))


@pytest.mark.parametrize("percent", [0.0, 100.0])
def test_a_recall_at_the_boundary_gets_a_clopper_pearson_interval(percent):
    rng = np.random.default_rng(3)
    queries = _queries(rng, 5)
    queries["t2i"]["rank"] = np.full(25, 0 if percent == 100.0 else 50)
    found = bootstrap.intervals(bootstrap.replicates(queries, bootstrap.Settings(resamples=200)))["all"]
    low, high = found[("t2i", "r1")]
    exact = stats.binomtest(5 if percent == 100.0 else 0, 5).proportion_ci(0.95, method="exact")
    assert (low, high) == pytest.approx((100 * exact.low, 100 * exact.high))
    assert high - low > 50  # 5 images say little, whatever 25 captions seem to say
    rsum_low, rsum_high = found[("both", "rsum")]
    assert rsum_high - rsum_low >= high - low


def _long_tailed_rank_sums(rng, n_images, captions, samples, gallery=1000):
    """(images, samples) sums of each image's ranks: lognormal-like, an image's captions sharing its
    difficulty, capped at the gallery size (as real image-to-text and text-to-image ranks are)."""
    image = rng.normal(0.0, 1.2, (n_images, 1, samples))
    query = rng.normal(0.0, 0.8, (n_images, captions, samples))
    return np.minimum(np.floor(np.exp(1.0 + image + query)), gallery - 1).sum(axis=1)


def _mean_and_error(sums, queries, counts):
    """Per replicate (rows of `counts`): the mean rank and its standard error, images as clusters."""
    totals = counts @ queries
    means = counts @ sums / totals[:, None]
    squares = (counts @ sums**2 - 2 * means * (counts @ (sums * queries[:, None]))
               + means**2 * (counts @ queries**2)[:, None])
    drawn = counts.sum(axis=1)[:, None]
    return means, np.sqrt(drawn / (drawn - 1) * squares) / totals[:, None]


def test_no_bootstrap_interval_of_meanr_reaches_its_coverage_on_long_tailed_ranks():
    """Why meanr has no interval: on 2,000 samples of 100 images with long-tailed i2t ranks (one query
    per image), the percentile interval of the mean rank and a studentized (bootstrap-t) one both cover
    the true mean less than 93% of the time (vectorised: one set of 1,000 image draws serves every
    sample). docs/statistics.md gives the figures, t2i's and other sizes'."""
    captions = 1
    rng = np.random.default_rng(5)
    truth = _long_tailed_rank_sums(np.random.default_rng(6), 200_000, captions, 1).sum() / (200_000 * captions)
    n_images, samples = 100, 2000
    sums = _long_tailed_rank_sums(rng, n_images, captions, samples)
    queries = np.full(n_images, float(captions))
    counts = bootstrap.counts_of(bootstrap.resample_indices(rng, n_images, bootstrap.RESAMPLES), n_images)
    means, errors = _mean_and_error(sums, queries, counts)
    point, error = _mean_and_error(sums, queries, np.ones((1, n_images)))
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    percentile = np.mean((low <= truth) & (truth <= high))
    t_low, t_high = np.percentile((means - point) / errors, [2.5, 97.5], axis=0)
    studentized = np.mean((point - t_high * error <= truth) & (truth <= point - t_low * error))
    assert percentile < 0.93 and studentized < 0.93, (percentile, studentized)
    reps = bootstrap.replicates(_queries(rng, 30))
    assert all(metric not in bootstrap.NO_INTERVAL for group in bootstrap.intervals(reps).values()
               for _, metric in group) and ("i2t", "meanr") in reps.figures["all"]


@pytest.mark.parametrize("hits", [0, 1, 5])
def test_a_group_of_one_image_gets_exact_recall_intervals_over_its_queries_and_no_others(hits):
    """One image, its t2i R@1 = 20 (1 of 5 captions): no resampling can say anything, so no [20, 20]:
    recalls get the exact binomial interval over the queries (scipy's as the reference), others none.
    In coco-1k layout a one-image fold is treated so, beside folds that are resampled."""
    rng = np.random.default_rng(4)
    single = _queries(rng, 1, fold=1, first_image=10)
    single["t2i"]["rank"] = np.array([0] * hits + [7] * (5 - hits))
    single["i2t"]["rank"] = np.array([3])
    other = _queries(rng, 10, fold=0)
    queries = {d: {k: np.concatenate([other[d][k], single[d][k]]) for k in single[d]} for d in single}
    found = bootstrap.intervals(bootstrap.replicates(queries, bootstrap.Settings(resamples=200)))
    exact = stats.binomtest(hits, 5).proportion_ci(0.95, method="exact")
    assert found["1"][("t2i", "r1")] == pytest.approx((100 * exact.low, 100 * exact.high))
    exact_i2t = stats.binomtest(0, 1).proportion_ci(0.95, method="exact")
    assert found["1"][("i2t", "r1")] == pytest.approx((100 * exact_i2t.low, 100 * exact_i2t.high))
    assert set(found["1"]) == {(d, r) for d in ("i2t", "t2i") for r in bootstrap.RECALLS}
    assert ("i2t", "asp") in found["0"] and ("both", "rsum") in found["mean"]  # the others are resampled
