"""PMRP: a hand-built case, a plain per-query implementation, and the original's outputs."""

import json

import numpy as np
import pytest

from bench.common.errors import BenchError
from bench.eval.pmrp import load_instance_vectors, pmrp, pmrp_figure, protocol_pmrp


def multi_hot(*categories):
    vector = np.zeros(90, dtype=np.uint8)
    vector[[c - 1 for c in categories]] = 1
    return vector


def direct_pmrp(sims, image_ids, vectors, thresholds=(0, 1, 2)):
    """The definition, one query at a time: unannotated images out, ties by index."""
    keep = [i for i, image in enumerate(image_ids) if image in vectors]
    result = {}
    for direction in ("i2t", "t2i"):
        queries = keep if direction == "i2t" else [c for i in keep for c in range(5 * i, 5 * i + 5)]
        gallery = [c for i in keep for c in range(5 * i, 5 * i + 5)] if direction == "i2t" else keep
        owner_q = (lambda q: q) if direction == "i2t" else (lambda q: q // 5)
        owner_g = (lambda g: g // 5) if direction == "i2t" else (lambda g: g)
        score = (lambda q, g: sims[q, g]) if direction == "i2t" else (lambda q, g: sims[g, q])
        per_threshold = []
        for th in thresholds:
            precisions = []
            for q in queries:
                query_vector = vectors[image_ids[owner_q(q)]].astype(int)
                plausible = {g for g in gallery
                             if np.abs(vectors[image_ids[owner_g(g)]] - query_vector).sum() <= th}
                ranked = sorted(gallery, key=lambda g: (-score(q, g), g))
                if plausible:
                    precisions.append(len(plausible & set(ranked[:len(plausible)])) / len(plausible))
            per_threshold.append(np.mean(precisions))
        result[direction] = 100 * np.mean(per_threshold)
    return result


def hand_built():
    """Images A, B, C (instances {1}, {1,2}, {3,4}) and D (none); captions 5 per image.

    Image A ranks D's captions first (they must not count), then 3 of its own, 2 of C's, B's
    five, its last two: R-precision 3/5 at th 0 (R = 5) and 8/10 at th 1 and 2 (B is 1 away).
    B and C rank their own captions first, then A's: R-precision 1 everywhere.
    """
    ids = [11, 12, 13, 14]
    vectors = {11: multi_hot(1), 12: multi_hot(1, 2), 13: multi_hot(3, 4)}
    sims = np.full((4, 20), -5.0)
    sims[0, [15, 16, 17, 18, 19, 0, 1, 2, 10, 11, 5, 6, 7, 8, 9, 3, 4]] = np.arange(17, 0, -1)
    sims[1, list(range(5, 10)) + list(range(0, 5))] = np.arange(10, 0, -1)
    sims[2, list(range(10, 15)) + list(range(0, 5))] = np.arange(10, 0, -1)
    return sims, ids, vectors


@pytest.mark.parametrize("threshold, expected", [(0, (0.6 + 1 + 1) / 3), (1, (0.8 + 1 + 1) / 3),
                                                 (2, (0.8 + 1 + 1) / 3)])
def test_hand_built_r_precision_per_threshold(threshold, expected):
    sims, ids, vectors = hand_built()
    assert pmrp(sims, ids, vectors, thresholds=(threshold,))["i2t"] == pytest.approx(100 * expected)


def test_hand_built_matches_direct_both_directions():
    sims, ids, vectors = hand_built()
    ours, direct = pmrp(sims, ids, vectors), direct_pmrp(sims, ids, vectors)
    assert ours["i2t"] == pytest.approx(100 * (0.6 + 0.8 + 0.8 + 6) / 9)
    assert ours == pytest.approx(direct)


@pytest.mark.parametrize("seed, tied", [(0, False), (1, True)])
def test_random_matrix_matches_direct(seed, tied):
    rng = np.random.default_rng(seed)
    n = 12
    ids = list(rng.choice(10_000, size=n, replace=False))
    vectors = {i: multi_hot(*rng.choice(np.arange(1, 8), size=rng.integers(1, 4), replace=False))
               for i in ids[:-2]}  # two images without instances
    sims = rng.standard_normal((n, 5 * n)).astype(np.float32)
    if tied:
        sims = np.round(sims)  # many equal scores: ties must go to the lower index
    assert pmrp(sims, ids, vectors) == pytest.approx(direct_pmrp(sims, ids, vectors), abs=1e-9)


def golden_sims(expected, model):
    if model == "sgraf":
        return (expected["coco_sgr/sims"] + expected["coco_saf/sims"]) / 2
    return expected[f"coco_{model}/sims"]


@pytest.mark.parametrize("model", ["sgr", "saf", "sgraf"])
def test_matches_original_implementation(golden_dir, golden_expected, model):
    pmrp_expected = np.load(golden_dir / "expected_pmrp.npz")
    rows = (golden_dir / "coco_precomp" / "testall_ids.txt").read_text().split()
    ids = [int(i) for i in rows[::5]]
    vectors = load_instance_vectors(golden_dir / "coco_annotations")
    assert len(vectors) < len(ids)  # the fixture has images without instances
    sims = golden_sims(golden_expected, model)
    five_k = protocol_pmrp("coco-5k", sims, ids, vectors)
    one_k = protocol_pmrp("coco-1k", sims, ids, vectors)
    assert [five_k["i2t"], five_k["t2i"]] == pytest.approx(pmrp_expected[f"coco_{model}/pmrp_5k"], abs=1e-6)
    assert [one_k["i2t"], one_k["t2i"]] == pytest.approx(pmrp_expected[f"coco_{model}/pmrp_1k"], abs=1e-6)
    folds = [[f["i2t"] for f in one_k["folds"]], [f["t2i"] for f in one_k["folds"]]]
    np.testing.assert_allclose(folds, pmrp_expected[f"coco_{model}/pmrp_1k_folds"], atol=1e-6)
    assert "folds" not in five_k


def test_stacked_fold_blocks_equal_full_matrix(golden_dir, golden_expected):
    ids = [int(i) for i in (golden_dir / "coco_precomp" / "testall_ids.txt").read_text().split()[::5]]
    vectors = load_instance_vectors(golden_dir / "coco_annotations")
    sims = golden_sims(golden_expected, "sgr")
    stacked = np.stack([sims[6 * k:6 * k + 6, 30 * k:30 * k + 30] for k in range(5)])
    from_blocks = protocol_pmrp("coco-1k", stacked, ids, vectors)
    from_full = protocol_pmrp("coco-1k", sims, ids, vectors)
    for direction in ("i2t", "t2i"):
        np.testing.assert_array_equal(from_blocks["per_query"].pop(direction), from_full["per_query"].pop(direction))
    assert from_blocks == from_full


def test_per_query_r_precisions_give_the_figure_and_mark_unannotated_queries(golden_dir, golden_expected):
    ids = [int(i) for i in (golden_dir / "coco_precomp" / "testall_ids.txt").read_text().split()[::5]]
    vectors = load_instance_vectors(golden_dir / "coco_annotations")
    result = protocol_pmrp("coco-5k", golden_sims(golden_expected, "sgr"), ids, vectors)
    i2t = result["per_query"]["i2t"]
    assert i2t.shape == (len(ids), 3) and result["per_query"]["t2i"].shape == (5 * len(ids), 3)
    unannotated = np.array([i not in vectors for i in ids])
    assert np.isnan(i2t[unannotated]).all() and not np.isnan(i2t[~unannotated]).all()
    assert pmrp_figure(i2t) == pytest.approx(result["i2t"])


def test_missing_annotations_name_the_file(tmp_path):
    with pytest.raises(BenchError, match="instances_val2014.json"):
        load_instance_vectors(tmp_path)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a COCO annotations file"),
    (json.dumps({"images": []}), "not a COCO annotations file"),
    (json.dumps({"annotations": [{"image_id": 1, "category_id": 91}]}), "outside 1..90"),
])
def test_bad_annotations(tmp_path, content, message):
    (tmp_path / "instances_val2014.json").write_text(content)
    with pytest.raises(BenchError, match=message):
        load_instance_vectors(tmp_path)


def test_bad_inputs():
    sims, ids, vectors = hand_built()
    with pytest.raises(BenchError, match="does not fit"):
        pmrp(sims[:, :15], ids, vectors)
    with pytest.raises(BenchError, match="none of the matrix's COCO image ids"):
        pmrp(sims, [1, 2, 3, 4], vectors)
    with pytest.raises(BenchError, match="not COCO"):
        protocol_pmrp("f30k-1k", sims, ids, vectors)
    sims[0, 0] = np.nan
    with pytest.raises(BenchError, match="NaN"):
        pmrp(sims, ids, vectors)
