"""ASP, TF-IDF relevance, folds and whole protocols, against direct computations and the original."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from bench.common.errors import BenchError
from bench.data.semantics import split_relevance
from bench.eval.asp import asp, descending_ranks
from bench.eval.protocol_metrics import protocol_metrics, relevance_rows
from bench.eval.protocols import PROTOCOLS, fold_bounds, saved_matrix

WORDS = "dog cat the of on red bus man a tree sits runs".split()
COCO_1K, COCO_5K, F30K = PROTOCOLS["coco-1k"], PROTOCOLS["coco-5k"], PROTOCOLS["f30k-1k"]


def captions(n_images: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 7)))) for _ in range(5 * n_images)]


def dense_relevance(texts: list[str]) -> np.ndarray:
    """scikit-learn's dense TF-IDF cosine, averaged over each image's five captions."""
    tfidf = TfidfVectorizer().fit_transform(texts).toarray()
    return tfidf.reshape(len(texts) // 5, 5, -1).mean(axis=1) @ tfidf.T


def direct_asp(scores: np.ndarray, relevance: np.ndarray) -> float:
    """Per row: ranks by a double stable argsort, mean of min/max rank ratios."""
    per_row = []
    for x, m in zip(scores, relevance):
        rank_x = np.argsort(np.argsort(-x, kind="stable"), kind="stable") + 1
        rank_m = np.argsort(np.argsort(-m, kind="stable"), kind="stable") + 1
        per_row.append(np.mean(np.minimum(rank_x, rank_m) / np.maximum(rank_x, rank_m)))
    return 100 * float(np.mean(per_row))


def test_descending_ranks_break_ties_by_index_in_both_paths():
    row = np.array([[0.5, -0.0, 0.0, 0.5, -1.0, 3.0, -1.0]])
    expected = [[2, 4, 5, 3, 6, 1, 7]]
    np.testing.assert_array_equal(descending_ranks(row.astype(np.float32)), expected)
    np.testing.assert_array_equal(descending_ranks(row), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_asp_equals_a_direct_double_argsort(dtype):
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=(23, 41)), 1).astype(dtype)  # ties in the scores too
    relevance = np.where(rng.random((23, 41)) < 0.4, 0.0, rng.random((23, 41))).astype(np.float32)
    expected = direct_asp(scores, relevance)
    assert asp(scores, relevance) == pytest.approx(expected, abs=1e-5)  # float32 ratios
    by_block = asp(scores, lambda rows: relevance[rows], block_rows=4, workers=2)
    assert by_block == pytest.approx(expected, abs=1e-5)


def test_asp_of_identical_rankings_is_100():
    scores = np.random.default_rng(2).random((5, 9))
    assert asp(scores, scores * 3) == pytest.approx(100.0)


def test_asp_rejects_a_relevance_of_another_shape():
    with pytest.raises(BenchError, match="relevance"):
        asp(np.zeros((3, 4)), np.zeros((3, 5)))


def test_relevance_rows_equal_scikit_learns_dense_result():
    texts = captions(6)
    texts[10:15] = ["zebra giraffe"] * 5  # image 2 shares no word with any other caption
    profiles, tfidf = split_relevance(texts)
    expected = dense_relevance(texts)
    i2t, t2i = relevance_rows(profiles, tfidf)(slice(1, 4)), relevance_rows(tfidf, profiles)(slice(7, 20))
    np.testing.assert_allclose(i2t, expected[1:4], atol=1e-6)  # float32
    np.testing.assert_allclose(t2i, expected[:, 7:20].T, atol=1e-6)
    assert np.array_equal(i2t == 0, expected[1:4] == 0) and (i2t == 0).sum() == 35  # exact zeros


def test_fold_bounds():
    assert fold_bounds(COCO_1K, 30)[2] == (slice(12, 18), slice(60, 90))
    assert fold_bounds(COCO_5K, 30) == [(slice(0, 30), slice(0, 150))]
    with pytest.raises(BenchError, match="divisible by 5"):
        fold_bounds(COCO_1K, 12)


def test_coco_1k_averages_the_five_diagonal_blocks():
    perfect = np.eye(2).repeat(5, axis=1)
    sims = np.full((10, 50), 1e9)  # off-diagonal blocks must be ignored
    for k, (images, caps) in enumerate(fold_bounds(COCO_1K, 10)):
        sims[images, caps] = perfect if k % 2 == 0 else 1 - perfect
    result = protocol_metrics(COCO_1K, sims, captions(10))
    assert len(result["folds"]) == 5
    assert result["folds"][1]["i2t"]["r10"] == 100.0 and result["folds"][1]["i2t"]["medr"] == 6.0
    mean = result["metrics"]
    assert {k: mean["i2t"][k] for k in ("r1", "r5", "r10", "medr", "meanr")} == pytest.approx(
        {"r1": 60.0, "r5": 60.0, "r10": 100.0, "medr": 3.0, "meanr": 3.0})
    assert {k: mean["t2i"][k] for k in ("r1", "r5", "r10", "medr", "meanr")} == pytest.approx(
        {"r1": 60.0, "r5": 100.0, "r10": 100.0, "medr": 1.4, "meanr": 1.4})
    assert mean["rsum"] == pytest.approx(480.0)


def test_fold_asp_uses_tfidf_fitted_on_the_whole_split():
    texts = captions(10, seed=3)
    sims = np.random.default_rng(3).random((10, 50))
    relevance = dense_relevance(texts)
    result = protocol_metrics(COCO_1K, sims, texts)
    images, caps = fold_bounds(COCO_1K, 10)[3]
    assert result["folds"][3]["i2t"]["asp"] == pytest.approx(
        direct_asp(sims[images, caps], relevance[images, caps]), abs=1e-6)
    assert result["folds"][3]["t2i"]["asp"] == pytest.approx(
        direct_asp(sims[images, caps].T, relevance[images, caps].T), abs=1e-6)


def test_stacked_fold_blocks_give_the_same_result():
    texts, sims = captions(10), np.random.default_rng(4).random((10, 50)).astype(np.float32)
    stacked = saved_matrix(COCO_1K, sims)
    assert stacked.shape == (5, 2, 10) and stacked.dtype == np.float32
    from_blocks, from_full = protocol_metrics(COCO_1K, stacked, texts), protocol_metrics(COCO_1K, sims, texts)
    queries_blocks, queries_full = from_blocks.pop("queries"), from_full.pop("queries")
    for direction in ("i2t", "t2i"):
        for field, values in queries_full[direction].items():
            np.testing.assert_array_equal(queries_blocks[direction][field], values)
    assert from_blocks == from_full
    assert saved_matrix(COCO_5K, sims).shape == (10, 50)


@pytest.mark.parametrize("sims, texts, message", [
    (np.zeros((4, 20)), ["a b"] * 19, "19 captions for 4 images"),
    (np.full((4, 20), np.nan), ["a b"] * 20, "NaN"),
])
def test_bad_inputs_are_clear_errors(sims, texts, message):
    with pytest.raises(BenchError, match=message):
        protocol_metrics(F30K, sims, texts)


def golden_texts(golden_dir, dataset: str) -> list[str]:
    name = {"coco": "coco_precomp/testall", "f30k": "f30k_precomp/test"}[dataset]
    return (golden_dir / f"{name}_caps.txt").read_text(encoding="utf-8").splitlines()


def as_vector(metrics: dict) -> np.ndarray:
    return np.array([metrics[d][m] for d in ("i2t", "t2i")
                     for m in ("r1", "r5", "r10", "medr", "meanr", "asp")])


def assert_matches_original(ours: np.ndarray, original: np.ndarray) -> None:
    """Recalls and ranks exactly; ASP to 0.05 (the original broke relevance ties arbitrarily)."""
    exact = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    np.testing.assert_allclose(ours[..., exact], original[..., exact], atol=1e-9)
    np.testing.assert_allclose(ours[..., [5, 11]], original[..., [5, 11]], atol=0.05)


@pytest.mark.parametrize("dataset, model", [(d, m) for d in ("coco", "f30k")
                                            for m in ("sgr", "saf", "sgraf")])
def test_whole_matrix_protocols_match_the_original(golden_dir, golden_expected, dataset, model):
    if model == "sgraf":
        sims = (golden_expected[f"{dataset}_sgr/sims"] + golden_expected[f"{dataset}_saf/sims"]) / 2
    else:
        sims = golden_expected[f"{dataset}_{model}/sims"]
    protocol = COCO_5K if dataset == "coco" else F30K
    result = protocol_metrics(protocol, sims, golden_texts(golden_dir, dataset))
    assert_matches_original(as_vector(result["metrics"]), golden_expected[f"{dataset}_{model}/full"])


@pytest.mark.parametrize("model", ["sgr", "saf"])
def test_coco_1k_folds_match_the_original(golden_dir, golden_expected, model):
    result = protocol_metrics(COCO_1K, golden_expected[f"coco_{model}/sims"], golden_texts(golden_dir, "coco"))
    original = golden_expected[f"coco_{model}/fold5"]
    assert_matches_original(np.stack([as_vector(f) for f in result["folds"]]), original)
    assert_matches_original(as_vector(result["metrics"]), original.mean(axis=0))


def test_captions_without_words_are_a_clear_error():
    with pytest.raises(BenchError, match="cannot fit TF-IDF"):
        protocol_metrics(F30K, np.zeros((2, 10)), ["a ."] * 10)
