"""Ranks and recalls: hand-computed cases, a brute-force sort, and the original's golden values."""

import numpy as np
import pytest

from bench.common.errors import BenchError
from bench.eval import metrics
from bench.eval.metrics import i2t_ranks, rank_summary, recall_metrics, t2i_ranks


def sorted_ranks(sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: sort every row/column (stable, highest first) and find the ground truth."""
    n_images, n_captions = sims.shape
    i2t = [min(np.flatnonzero(np.argsort(-sims[i], kind="stable") == c)[0]
               for c in range(5 * i, 5 * i + 5)) for i in range(n_images)]
    t2i = [np.flatnonzero(np.argsort(-sims[:, j], kind="stable") == j // 5)[0]
           for j in range(n_captions)]
    return np.array(i2t), np.array(t2i)


def test_best_of_five_captions_counts():
    sims = np.zeros((2, 10))
    sims[0] = [0.1, 0.9, 0.2, 0.3, 0.4, 0.95, 0.0, 0.0, 0.0, 0.0]  # own best 0.9, one caption above
    sims[1] = [0.5, 0.6, 0.7, 0.8, 0.9, 0.1, 0.2, 0.3, 0.4, 0.05]  # own best 0.4, five above
    assert i2t_ranks(sims).tolist() == [1, 5]
    # each caption: is the other image's score above its own image's?
    assert t2i_ranks(sims).tolist() == [1, 0, 1, 1, 1, 1, 0, 0, 0, 0]


def test_ties_go_to_the_lower_index():
    sims = np.ones((3, 15))
    assert i2t_ranks(sims).tolist() == [0, 5, 10]
    assert t2i_ranks(sims).tolist() == [0] * 5 + [1] * 5 + [2] * 5


@pytest.mark.parametrize("block", [1, 2, 512])
def test_ranks_match_a_full_sort_with_ties(monkeypatch, block):
    monkeypatch.setattr(metrics, "ROW_BLOCK", block)
    sims = np.round(np.random.default_rng(0).random((7, 35)), 1)  # many exact ties
    i2t, t2i = sorted_ranks(sims)
    np.testing.assert_array_equal(i2t_ranks(sims), i2t)
    np.testing.assert_array_equal(t2i_ranks(sims), t2i)


def test_summary_rounding():
    summary = rank_summary(np.array([0, 1, 2, 3]))
    assert summary == {"r1": 25.0, "r5": 100.0, "r10": 100.0, "medr": 2.0, "meanr": 2.5}
    assert rank_summary(np.array([0, 4, 9, 12, 30]))["medr"] == 10.0
    assert rank_summary(np.array([4, 9, 12, 30]))["medr"] == 11.0  # floor(10.5) + 1


def test_rsum_is_six_recalls_not_the_originals_label():
    result = recall_metrics(np.eye(4).repeat(5, axis=1))
    assert result["i2t"]["r1"] == result["t2i"]["r1"] == 100.0
    assert result["rsum"] == 600.0


def test_layout_mismatch_is_a_clear_error():
    with pytest.raises(BenchError, match="caption j belonging to image j // 5"):
        i2t_ranks(np.zeros((3, 14)))


@pytest.mark.parametrize("name", ["f30k_sgr", "f30k_saf", "coco_sgr", "coco_saf"])
def test_recalls_equal_the_original(golden_expected, name):
    result = recall_metrics(golden_expected[f"{name}/sims"])
    ours = [result[d][m] for d in ("i2t", "t2i") for m in ("r1", "r5", "r10", "medr", "meanr")]
    expected = golden_expected[f"{name}/full"][[0, 1, 2, 3, 4, 6, 7, 8, 9, 10]]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)
