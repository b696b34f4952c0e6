"""Per-query results: what evaluate keeps, the .npz round trip, and what eval writes beside its JSON."""

import csv
import hashlib
import json

import numpy as np
import pytest

from bench.cli.main import main
from bench.common.errors import BenchError
from bench.eval.metrics import i2t_ranks, t2i_ranks
from bench.eval.per_query import add_coco_ids, load_queries, to_npz_bytes, top_items
from bench.eval.protocol_metrics import protocol_metrics
from bench.eval.protocols import PROTOCOLS

TEXTS = [f"a {w} dog on grass ." for w in ("red", "blue", "big", "small", "old")] * 10


def test_top_items_are_best_first_with_ties_to_the_lower_index():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.2], [3.0, 2.0, 1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(top_items(scores), [[1, 3, 2], [0, 1, 4]])


def test_evaluate_keeps_the_per_query_values_of_its_figures():
    sims = np.random.default_rng(0).random((10, 50)).astype(np.float32)
    result = protocol_metrics(PROTOCOLS["f30k-1k"], sims, TEXTS)
    queries = result["queries"]
    np.testing.assert_array_equal(queries["i2t"]["rank"], i2t_ranks(sims))
    np.testing.assert_array_equal(queries["t2i"]["rank"], t2i_ranks(sims))
    assert 100 * queries["t2i"]["asp"].mean() == pytest.approx(result["metrics"]["t2i"]["asp"])
    np.testing.assert_array_equal(queries["i2t"]["top"][:, 0], sims.argmax(axis=1))
    np.testing.assert_array_equal(queries["t2i"]["top"][:, 0], sims.argmax(axis=0))


def test_coco_1k_queries_carry_their_fold_and_split_wide_indices():
    sims = np.random.default_rng(1).random((10, 50)).astype(np.float32)
    queries = protocol_metrics(PROTOCOLS["coco-1k"], sims, TEXTS)["queries"]
    np.testing.assert_array_equal(queries["t2i"]["index"], np.arange(50))
    np.testing.assert_array_equal(queries["t2i"]["fold"], np.arange(50) // 10)
    fold_of_top = queries["t2i"]["top"] // 2  # images of fold k are 2k, 2k + 1
    np.testing.assert_array_equal(fold_of_top, np.repeat(queries["t2i"]["fold"][:, None], 2, axis=1))
    add_coco_ids(queries, np.arange(100, 110))
    np.testing.assert_array_equal(queries["t2i"]["coco_id"], 100 + np.arange(50) // 5)


def test_npz_round_trip(tmp_path):
    sims = np.random.default_rng(2).random((10, 50)).astype(np.float32)
    queries = protocol_metrics(PROTOCOLS["coco-5k"], sims, TEXTS)["queries"]
    queries["t2i"]["pmrp"] = np.where(np.arange(150).reshape(50, 3) % 7 == 0, np.nan, 0.5)
    path = tmp_path / "run.queries.npz"
    path.write_bytes(to_npz_bytes(queries, "coco-5k", TEXTS))
    loaded = load_queries(path)
    assert loaded["protocol"] == "coco-5k" and loaded["captions"] == TEXTS
    for direction in ("i2t", "t2i"):
        assert set(loaded[direction]) == set(queries[direction])
        for field, values in queries[direction].items():
            np.testing.assert_array_equal(loaded[direction][field], values)


def test_a_file_that_is_not_per_query_results_is_one_clear_error(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(BenchError, match="not a daa-bench per-query file"):
        load_queries(path)


def test_eval_writes_the_queries_file_and_intervals(tmp_path, golden_dir):
    args = ["eval", "--protocol", "coco-1k", "--data-root", str(golden_dir), "--device", "cpu",
            "--checkpoint", str(golden_dir / "coco_sgr.pth.tar"),
            "--json", str(tmp_path / "run.json"), "--csv", str(tmp_path / "run.csv")]
    assert main(args) == 0
    result = json.loads((tmp_path / "run.json").read_text())
    npz = tmp_path / "run.queries.npz"
    assert result["queries"]["file"] == npz.name
    assert result["queries"]["sha256"] == hashlib.sha256(npz.read_bytes()).hexdigest()
    assert result["bootstrap"]["resamples"] == 1000 and "seed" in result["bootstrap"]
    assert result["bootstrap"]["resample"] == "image"
    queries = load_queries(npz)
    assert len(queries["i2t"]["rank"]) == 30 and len(queries["t2i"]["rank"]) == 150
    assert "pmrp" in queries["i2t"] and "coco_id" in queries["t2i"]
    with open(tmp_path / "run.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    headline = {(r["direction"], r["metric"]): r for r in rows if r["fold"] == "mean"}
    for key in (("i2t", "r1"), ("t2i", "medr"), ("i2t", "asp"), ("t2i", "pmrp"), ("both", "rsum")):
        row = headline[key]
        assert float(row["ci_low"]) <= float(row["ci_high"])
        assert result["intervals"]["mean"][key[0]][key[1]] == [float(row["ci_low"]), float(row["ci_high"])]
    assert all(r["ci_low"] != "" for r in rows if r["fold"] == "2" and r["metric"] == "r5")
