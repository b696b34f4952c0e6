"""The three steps of docs/other-models.md with a model that is not SGRAF, compared with an SGRAF run."""

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import bench
from bench.cli.main import main
from bench.data import synthetic
from bench.demo import chance_rsum

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mean_pool_model.py"
TEST_IMAGES = 30


def _example():
    spec = importlib.util.spec_from_file_location("mean_pool_model", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo_like_root(tmp_path):
    """Generated Flickr30K-style data: a train split for the other model, a test split to rank."""
    root = tmp_path / "data"
    synthetic.write_vocab(root / "vocab" / "f30k_precomp_vocab.json")
    synthetic.write_split(root / "f30k_precomp", "train", 300, rows_per_caption=False, seed=1)
    synthetic.write_split(root / "f30k_precomp", "test", TEST_IMAGES, seed=3)
    return root


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_order_lists_images_then_captions_in_matrix_order(golden_dir, tmp_path):
    ids = np.arange(150, dtype=np.int64) * 3 + 7
    np.save(tmp_path / "caption_ids.npy", ids)
    assert main(["order", "--protocol", "coco-1k", "--data-root", str(golden_dir), "--caption-ids",
                 str(tmp_path / "caption_ids.npy"), "--out", str(tmp_path / "order.csv")]) == 0
    rows = _rows(tmp_path / "order.csv")
    images, captions = rows[:30], rows[30:]
    split = bench.load_split(golden_dir, "coco_precomp", "testall")
    assert [r["kind"] for r in images] == ["image"] * 30 and len(captions) == 150
    assert [r["image_id"] for r in images] == split.image_ids
    assert [r["caption"] for r in captions] == split.texts
    assert [int(r["image_index"]) for r in captions] == [j // 5 for j in range(150)]
    assert [int(r["caption_id"]) for r in captions] == ids.tolist()
    assert [int(r["fold"]) for r in images] == [i // 6 for i in range(30)]  # coco-1k: 5 folds of 6 images


def test_order_without_ids_uses_positions(golden_dir, tmp_path, capsys):
    assert main(["order", "--protocol", "f30k-1k", "--data-root", str(golden_dir), "--out",
                 str(tmp_path / "order.csv")]) == 0
    rows = _rows(tmp_path / "order.csv")
    assert [r["image_id"] for r in rows if r["kind"] == "image"] == [str(i) for i in range(25)]
    assert {r["caption_id"] for r in rows} == {""} and "25 x 125" in capsys.readouterr().out


def test_a_mean_pool_model_beside_sgraf_on_the_same_queries(demo_like_root, make_checkpoint, tmp_path, capsys):
    root, example = demo_like_root, _example()
    # 1. export the order; 2. score in that order with the other model; 3. eval --scores
    assert main(["order", "--protocol", "f30k-1k", "--data-root", str(root), "--out", str(tmp_path / "order.csv")]) == 0
    model = example.train(bench.load_split(root, "f30k_precomp", "train"), steps=150)
    scores = example.score(model, bench.load_split(root, "f30k_precomp", "test"), tmp_path / "order.csv")
    np.save(tmp_path / "meanpool.npy", scores)
    assert main(["eval", "--scores", str(tmp_path / "meanpool.npy"), "--model-name", "MeanPool", "--protocol",
                 "f30k-1k", "--data-root", str(root), "--json", str(tmp_path / "meanpool.json")]) == 0
    sgr, saf = make_checkpoint("SGR", "f30k_precomp", seed=1), make_checkpoint("SAF", "f30k_precomp", seed=2)
    assert main(["eval", "--checkpoint", str(sgr), "--checkpoint", str(saf), "--protocol", "f30k-1k",
                 "--data-root", str(root), "--json", str(tmp_path / "sgraf.json")]) == 0
    assert main(["compare", str(tmp_path / "sgraf.json"), str(tmp_path / "meanpool.json"),
                 "--csv", str(tmp_path / "gains.csv")]) == 0
    other = json.loads((tmp_path / "meanpool.json").read_text())
    assert other["figures"][0]["model"] == "MeanPool" and other["metrics"]["rsum"] > 2 * chance_rsum(TEST_IMAGES)
    gains = {(r["direction"], r["metric"]): r for r in _rows(tmp_path / "gains.csv") if r["fold"] == "all"}
    assert {"asp", "r1", "rsum"} <= {metric for _, metric in gains}
    rsum = gains[("both", "rsum")]  # an untrained SGRAF is near chance: the trained toy model is clearly ahead
    assert float(rsum["gain"]) > 0 and float(rsum["ci_low"]) > 0
