"""Shared fixtures: the vendored golden outputs and generated SCAN-format data/checkpoints."""

from pathlib import Path

import numpy as np
import pytest

from bench.data import synthetic

from bench.model import random_weights

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


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
