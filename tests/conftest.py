"""Shared fixtures: the vendored golden outputs and generated SCAN-format data/checkpoints."""

import os
from pathlib import Path

import numpy as np
import pytest

from bench.data import synthetic
from bench.model import random_weights

GOLDEN = Path(__file__).parent / "fixtures" / "golden"

# Plain progress lines appear every 30 s off a terminal; on a loaded machine a slow step would add
# lines to the stderr that tests count. Tests that want progress lines set a short interval.
os.environ.setdefault("BENCH_PROGRESS_INTERVAL", "1e9")


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN


@pytest.fixture(scope="session")
def golden_expected():
    return np.load(GOLDEN / "expected.npz")


@pytest.fixture
def data_root(tmp_path) -> Path:
    """A data root with a generated coco_precomp/testall (30 images) and f30k_precomp/test (20)."""
    root = tmp_path / "data"
    vocab = synthetic.write_vocab(root / "vocab" / "coco_precomp_vocab.json")
    synthetic.write_vocab(root / "vocab" / "f30k_precomp_vocab.json")
    synthetic.write_split(root / "coco_precomp", "testall", 30, seed=1)
    synthetic.write_split(root / "f30k_precomp", "test", 20, seed=2)
    root.joinpath("vocab_size").write_text(str(vocab["idx"]))
    return root


def vocab_size(root: Path) -> int:
    return int(root.joinpath("vocab_size").read_text())


@pytest.fixture
def make_checkpoint(tmp_path):
    """Factory: a published-layout checkpoint with random weights for a generated data root."""

    def make(module_name="SGR", data_name="coco_precomp", vocab=len(synthetic.vocabulary_words()),
             seed=0, ddp_prefix=True, **dims):
        config = random_weights.small_config(module_name, data_name, vocab, **dims)
        path = tmp_path / f"{data_name}_{module_name}_{seed}.pth.tar"
        return random_weights.write_checkpoint(path, config, seed=seed, ddp_prefix=ddp_prefix)

    return make


@pytest.fixture
def daa_pair_runs(tmp_path, golden_dir) -> Path:
    """coco-5k runs of one golden SGR checkpoint, recorded once as baseline and once as +DAA
    (the same queries and scores: every paired gain is exactly 0)."""
    import json

    from bench.cli.main import main

    folder = tmp_path / "pair"
    for daa in (False, True):
        path = folder / f"coco-5k-{daa}.json"
        assert main(["eval", "--protocol", "coco-5k", "--data-root", str(golden_dir), "--device", "cpu",
                     "--checkpoint", str(golden_dir / "coco_sgr.pth.tar"), "--json", str(path)]) == 0
        document = json.loads(path.read_text())
        document["provenance"]["daa"] = daa
        path.write_text(json.dumps(document))
    return folder
