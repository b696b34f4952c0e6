"""Bootstrap intervals over queries: against scipy on the same resamples, coverage, pairing, folds."""

import numpy as np
import pytest
from scipy import stats

from bench.eval import bootstrap
from bench.eval.pmrp import pmrp_figure


def _draws(seed: int, n_resamples: int, chunk: int = 0):
    """An `indices_of` drawing from one seeded generator, optionally in chunks (same stream)."""
    def indices_of(n):
        rng = np.random.default_rng(seed)
        sizes = [chunk, n_resamples - chunk] if chunk else [n_resamples]
        for size in sizes:
            yield bootstrap.resample_indices(rng, n, size)
    return indices_of


def _queries(rng, n, fold=0):
    pmrp = rng.random((n, 3))
    pmrp[rng.random((n, 3)) < 0.2] = np.nan
    return {"rank": rng.integers(0, 30, n), "asp": rng.random(n), "pmrp": pmrp,
            "fold": np.full(n, fold, dtype=np.int16)}


@pytest.mark.parametrize("metric,statistic,column", [
    ("r5", lambda x, axis=-1: 100 * np.mean(x < 5, axis=axis), "rank"),
    ("medr", lambda x, axis=-1: np.floor(np.median(x, axis=axis)) + 1, "rank"),
    ("meanr", lambda x, axis=-1: np.mean(x, axis=axis) + 1, "rank"),
    ("asp", lambda x, axis=-1: 100 * np.mean(x, axis=axis), "asp"),
])
def test_interval_equals_scipy_bootstrap_on_the_same_resamples(metric, statistic, column):
    values = _queries(np.random.default_rng(3), 57)
    reps = bootstrap.direction_replicates(values, _draws(5, 1000, chunk=400))
    expected = stats.bootstrap((values[column],), statistic, n_resamples=1000, method="percentile",
                               random_state=np.random.default_rng(5), vectorized=True).confidence_interval
    assert bootstrap.percentile_interval(reps[metric]) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_pmrp_replicates_equal_the_figure_of_each_resample():
    values = _queries(np.random.default_rng(4), 40)
    reps = bootstrap.direction_replicates(values, _draws(6, 50))
    indices = bootstrap.resample_indices(np.random.default_rng(6), 40, 50)
    by_hand = [pmrp_figure(values["pmrp"][row]) for row in indices]
    np.testing.assert_allclose(reps["pmrp"], by_hand, rtol=1e-12)


def test_no_resampling_gives_the_point_figures():
    values = _queries(np.random.default_rng(5), 23)
    figures = bootstrap.direction_replicates(values, lambda n: iter([np.arange(n)[None]]))
    rank = values["rank"]
    assert figures["r10"][0] == pytest.approx(100 * np.mean(rank < 10))
    assert figures["medr"][0] == np.floor(np.median(rank)) + 1
    assert figures["pmrp"][0] == pytest.approx(pmrp_figure(values["pmrp"]))


def test_95_percent_intervals_cover_a_known_recall_about_95_times_in_100():
    true_recall, n_queries = 0.3, 500
    rng = np.random.default_rng(2022)
    covered = 0
    for sample in range(100):
        rank = np.where(rng.random(n_queries) < true_recall, 0, 7)
        reps = bootstrap.direction_replicates({"rank": rank}, _draws(sample, 1000))
        low, high = bootstrap.percentile_interval(reps["r1"])
        covered += low <= 100 * true_recall <= high
    assert 88 <= covered <= 99


def test_paired_gain_of_a_run_with_itself_is_exactly_zero():
    rng = np.random.default_rng(1)
    queries = {"i2t": _queries(rng, 20), "t2i": _queries(rng, 100)}
    first, second = bootstrap.replicates(queries), bootstrap.replicates(queries)
    for key, values in first["all"].items():
        gain = bootstrap.paired_gain(values, second["all"][key], 1.0, 1.0)
        assert gain == {"gain": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_no_gain": 1.0}


def test_paired_gain_sees_a_consistent_improvement():
    rng = np.random.default_rng(2)
    base = {"i2t": _queries(rng, 200), "t2i": _queries(rng, 1000)}
    better = {d: dict(v, rank=np.maximum(v["rank"] - 3, 0)) for d, v in base.items()}
    reps_a, reps_b = bootstrap.replicates(base)["all"], bootstrap.replicates(better)["all"]
    gain = bootstrap.paired_gain(reps_a[("t2i", "r5")], reps_b[("t2i", "r5")], 0.0, 1.0)
    assert gain["ci_low"] > 0 and gain["p_no_gain"] == 0.0


def test_coco_1k_resamples_within_folds_and_averages_them():
    rng = np.random.default_rng(7)
    folds = [{"i2t": _queries(rng, 10, fold=k), "t2i": _queries(rng, 50, fold=k)} for k in range(5)]
    joined = {d: {f: np.concatenate([fold[d][f] for fold in folds]) for f in folds[0][d]} for d in ("i2t", "t2i")}
    reps = bootstrap.replicates(joined, bootstrap.Settings(resamples=200))
    assert set(reps) == {"mean", "0", "1", "2", "3", "4"}
    for key, mean in reps["mean"].items():
        np.testing.assert_allclose(mean, np.mean([reps[str(k)][key] for k in range(5)], axis=0))
    # fold 2 alone, drawn from its own (seed, fold, direction) stream, gives the same replicates
    alone = bootstrap.direction_replicates(
        {f: v for f, v in folds[2]["t2i"].items() if f != "fold"},
        lambda n: iter([bootstrap.resample_indices(np.random.default_rng([bootstrap.SEED, 2, 1]), n, 200)]))
    np.testing.assert_array_equal(alone["r1"], reps["2"][("t2i", "r1")])
    rsum = sum(reps["mean"][(d, f"r{k}")] for d in ("i2t", "t2i") for k in (1, 5, 10))
    np.testing.assert_allclose(reps["mean"][("both", "rsum")], rsum)
