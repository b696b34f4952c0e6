"""CC152K (NCR's layout, one caption per image) as the cc152k-1k protocol."""

import csv
import json

import numpy as np
import pytest
import torch

from bench.cli.main import main
from bench.data import synthetic
from bench.data.cc152k import read_tsv_captions
from bench.eval.protocols import get_protocol, protocol_split
from bench.eval.score_split import score_split
from bench.model.random_weights import small_config, write_checkpoint, write_pair_checkpoint

N = 12
VOCAB = len(synthetic.vocabulary_words())


@pytest.fixture
def cc_root(tmp_path):
    root = tmp_path / "data"
    synthetic.write_tsv_split(root / "cc152k_precomp", "test", N, seed=5)
    synthetic.write_vocab(root / "vocab" / "cc152k_precomp_vocab.json")
    return root


def _direct_recalls(sims: np.ndarray) -> dict:
    """R@K both ways, written out the way the original loops compute them (one caption per image)."""
    i2t = np.array([np.where(np.argsort(-sims[i], kind="stable") == i)[0][0] for i in range(len(sims))])
    t2i = np.array([np.where(np.argsort(-sims[:, j], kind="stable") == j)[0][0] for j in range(len(sims))])
    return {d: {f"r{k}": 100.0 * np.mean(r < k) for k in (1, 5, 10)} for d, r in (("i2t", i2t), ("t2i", t2i))}


def test_tsv_is_read_as_csv_reader_reads_it(cc_root):
    path = cc_root / "cc152k_precomp" / "test_caps.tsv"
    ids, captions = read_tsv_captions(path)
    with open(path) as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert ids == [row[0] for row in rows] and [c.decode() for c in captions] == [row[1].strip() for row in rows]
    assert len(captions) == N and all(b"\r" not in c for c in captions)


def test_cc152k_recalls_equal_a_direct_computation(tmp_path, cc_root):
    config = small_config("SGR", "cc152k_precomp", VOCAB)
    ckpt = write_pair_checkpoint(tmp_path / "ncr_cc.pth.tar", config, seeds=(1, 2))
    protocol = get_protocol("cc152k-1k")
    split = protocol_split(protocol, cc_root)
    sims = score_split([ckpt], split, cc_root, None, torch.device("cpu"), "fp32", data_name="cc152k_precomp").sims
    assert sims.shape == (N, N)
    out = tmp_path / "run.json"
    assert main(["eval", "--protocol", "cc152k-1k", "--data-root", str(cc_root), "--device", "cpu",
                 "--checkpoint", str(ckpt), "--json", str(out), "--save-sims", str(tmp_path / "s.npy")]) == 0
    document = json.loads(out.read_text())
    expected = _direct_recalls(np.load(tmp_path / "s.npy"))
    for direction in ("i2t", "t2i"):
        for k in ("r1", "r5", "r10"):
            assert document["metrics"][direction][k] == pytest.approx(expected[direction][k], abs=1e-9)
        assert "asp" not in document["metrics"][direction]
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), sims)
    assert "five captions" in json.dumps(document).lower() or "one caption" in json.dumps(document).lower()
    assert document["provenance"]["checkpoints"][0]["layout"] == "pair"


def test_eval_scores_and_order_work_on_cc152k(tmp_path, cc_root):
    order = tmp_path / "order.csv"
    assert main(["order", "--protocol", "cc152k-1k", "--data-root", str(cc_root), "--out", str(order)]) == 0
    rows = list(csv.DictReader(order.open()))
    assert len(rows) == 2 * N and rows[N]["image_index"] == "0" and rows[N + 5]["image_index"] == "5"
    scores = np.eye(N, dtype=np.float32)
    np.save(tmp_path / "scores.npy", scores)
    out = tmp_path / "scores.json"
    assert main(["eval", "--protocol", "cc152k-1k", "--data-root", str(cc_root), "--scores",
                 str(tmp_path / "scores.npy"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"]["rsum"] == pytest.approx(600.0)


def test_cc152k_single_layout_checkpoint_scores_too(tmp_path, cc_root):
    ckpt = write_checkpoint(tmp_path / "c.pth.tar", small_config("SAF", "cc152k_precomp", VOCAB), seed=3)
    assert main(["eval", "--protocol", "cc152k-1k", "--data-root", str(cc_root), "--device", "cpu",
                 "--checkpoint", str(ckpt), "--json", str(tmp_path / "r.json")]) == 0
