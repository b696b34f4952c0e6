"""Five training steps equal the original implementation's (tests/fixtures/golden_train, its README).

Driven through the public training code (`bench.training.loop.train`, and `python -m bench train`),
from the golden initial weights written as a published-layout checkpoint (--init-from), in float64
with dropout off. Given the golden relevance matrices (the `relevance` hook of TrainSettings) every
loss term agrees within 1e-9 and every final parameter and buffer within 1e-8; with our own TF-IDF
relevance (float32, about 6e-8 from the original's, amplified by the DAA temperature) within 1e-5.

BENCH_TEST_DEVICE=cuda runs the same checks on a GPU (make gpu-check does, in fp64).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.common.distributed import WorldInfo
from bench.data.splits import load_split
from bench.data.vocab import Vocabulary
from bench.model.checkpoint import read_checkpoint
from bench.model.config import ModelConfig
from bench.training.batches import TrainingData, TrainingSemantics
from bench.training.logs import read_step_log
from bench.training.loop import train
from bench.training.settings import TrainSettings

GOLDEN = Path(__file__).parent / "fixtures" / "golden_train"
REPO = Path(__file__).resolve().parents[1]
DEVICE = os.environ.get("BENCH_TEST_DEVICE", "cpu")
MODULES = ["SGR", "SAF"]
TERMS = {"con": "contrastive", "i2t": "i2t", "t2i": "t2i"}  # golden name -> steps.csv column


def golden(module_name: str) -> dict:
    return torch.load(GOLDEN / f"{module_name.lower()}_steps.pth", weights_only=True)


def write_init(reference: dict, path: Path) -> Path:
    """The golden initial weights as a published-layout checkpoint (`opt` from the golden settings)."""
    s = reference["settings"]
    config = ModelConfig(data_name="f30k_precomp", vocab_size=s["vocab_size"], img_dim=s["img_dim"],
                         word_dim=s["word_dim"], embed_size=s["embed_size"], sim_dim=s["sim_dim"],
                         num_layers=s["num_layers"], bi_gru=s["bi_gru"], no_imgnorm=s["no_imgnorm"],
                         no_txtnorm=s["no_txtnorm"], module_name=s["module_name"], sgr_step=s["sgr_step"])
    parts = [{f"module.{key}": value for key, value in part.items()} for part in reference["init"]]
    torch.save({"epoch": 0, "model": parts, "best_rsum": 0.0, "opt": config.to_opt(), "Eiters": 0}, path)
    return path


class GoldenRelevance:
    """The relevance provider hook: the original's matrix of each golden batch (in collate order)."""

    def __init__(self, reference: dict):
        self.by_order = {tuple(order): sems for order, sems in zip(reference["batch_order"], reference["sems"])}

    def block(self, caption_indices: np.ndarray) -> np.ndarray:
        return np.asarray(self.by_order[tuple(int(k) for k in caption_indices)])


def assert_trajectory(out_dir: Path, reference: dict, term_tol: float, weight_tol: float) -> None:
    """steps.csv against the golden loss terms; the saved checkpoint against the golden final weights."""
    steps = read_step_log(out_dir)
    assert [row["step"] for row in steps] == [1, 2, 3, 4, 5]
    for row, expected in zip(steps, reference["steps"]):
        for golden_name, ours in TERMS.items():
            assert row[ours] == pytest.approx(expected[golden_name], abs=term_tol, rel=0), (row["step"], ours)
        # the gradient norm (about 100) is not a loss term: compared relatively
        assert row["grad_norm"] == pytest.approx(expected["gn"], rel=term_tol), row["step"]
        assert row["loss"] == pytest.approx(expected["loss"], rel=1e-6)  # the original keeps it in float32
    saved = read_checkpoint(out_dir / "checkpoint_0.pth.tar")
    assert saved.extra["step"] == 5
    for ours, theirs in zip(saved.state_dicts, reference["final"]):
        assert ours.keys() == theirs.keys()
        for key, expected in theirs.items():
            got = ours[key]
            assert got.dtype == expected.dtype, key
            if expected.is_floating_point():
                assert (got - expected).abs().max().item() <= weight_tol, key
            else:
                assert torch.equal(got, expected), key


@pytest.mark.parametrize("module_name", MODULES)
def test_golden_relevance_reproduces_the_original_steps(tmp_path, module_name):
    reference = golden(module_name)
    settings = TrainSettings(
        data_name="f30k_precomp", module_name=module_name, num_epochs=1, learning_rate=0.0002, lr_update=100,
        daa_weight=25, out_dir=tmp_path / "run", data_root=GOLDEN, init_from=write_init(reference, tmp_path / "i.tar"),
        max_steps=5, batch_size=12, dropout=0.0, precision="fp64", workers=0, device=DEVICE, quiet=True,
        relevance=GoldenRelevance(reference))
    train(settings)
    assert_trajectory(settings.out_dir, reference, term_tol=1e-9, weight_tol=1e-8)


@pytest.mark.parametrize("module_name", MODULES)
def test_cli_run_with_our_relevance_stays_within_1e5(tmp_path, module_name):
    reference = golden(module_name)
    init = write_init(reference, tmp_path / "init.pth.tar")
    out = tmp_path / "run"
    command = [sys.executable, "-m", "bench", "train", "--data-root", str(GOLDEN), "--data-name", "f30k_precomp",
               "--module-name", module_name, "--init-from", str(init), "--max-steps", "5", "--num-epochs", "1",
               "--batch-size", "12", "--learning-rate", "0.0002", "--lr-update", "100", "--daa-weight", "25",
               "--dropout", "0", "--precision", "fp64", "--workers", "0", "--embed-size", "48", "--word-dim", "32",
               "--sim-dim", "16", "--out-dir", str(out), "--device", DEVICE]
    env = dict(os.environ, OMP_NUM_THREADS="1", BENCH_QUIET="1")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_trajectory(out, reference, term_tol=1e-5, weight_tol=1e-5)


def test_sampler_and_collate_order_equal_the_originals():
    """Seed 0, one process: DistributedSampler's epoch-0 order; collate sorts by length, ties kept."""
    reference = golden("SGR")
    split = load_split(GOLDEN, "f30k_precomp", "train")
    vocab = Vocabulary.load(GOLDEN / "vocab" / "f30k_precomp_vocab.json")
    data = TrainingData(split, vocab, TrainingSemantics(split.texts), WorldInfo(), batch_size=12, workers=0, seed=0)
    loader = data.loader(0)
    assert data.batches.epoch_batches() == [list(batch) for batch in reference["batches"]]
    for batch, order, tokens, sems in zip(loader, reference["batch_order"], reference["tokens"], reference["sems"]):
        assert batch.indices.tolist() == list(order)
        assert torch.equal(batch.tokens, torch.as_tensor(tokens))
        np.testing.assert_allclose(batch.sems.numpy(), np.asarray(sems), atol=1e-7)


def test_contradicting_dimension_flag_is_refused(tmp_path):
    init = write_init(golden("SGR"), tmp_path / "init.pth.tar")
    command = [sys.executable, "-m", "bench", "train", "--data-root", str(GOLDEN), "--data-name", "f30k_precomp",
               "--module-name", "SGR", "--init-from", str(init), "--embed-size", "64", "--out-dir", str(tmp_path / "o"),
               "--device", "cpu", "--workers", "0"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--embed-size 64" in result.stderr and "embed_size=48" in result.stderr
    assert not (tmp_path / "o").exists()
