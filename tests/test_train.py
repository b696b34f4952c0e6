"""The training loop: loss goes down, resume repeats the uninterrupted run, checkpoints load in eval."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.common.distributed import WorldInfo
from bench.common.errors import BenchError
from bench.data.splits import load_split
from bench.data.vocab import Vocabulary
from bench.demo import DATA_NAME, DemoPlan, write_demo_data
from bench.model.checkpoint import build_model, read_checkpoint
from bench.model.encode import encode_captions, encode_images
from bench.model.reference_loop import reference_scores
from bench.training.batches import TrainingData, TrainingSemantics
from bench.training.loop import BatchScorer, backward_batch, learning_rate_at, train
from bench.training.settings import TrainSettings, model_dims
from bench.training.start import fresh_model

TINY = DemoPlan(train_images=24, dev_images=6, test_images=10, regions=4)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second OpenMP thread only spins on a shared 2-core machine (40x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_data")
    write_demo_data(root, TINY)
    return root


def tiny_settings(root: Path, out_dir: Path, **changes) -> TrainSettings:
    settings = TrainSettings(data_name=DATA_NAME, module_name="SAF", out_dir=out_dir, data_root=root,
                             num_epochs=2, learning_rate=0.002, lr_update=1, daa_weight=2.0, batch_size=16,
                             embed_size=16, word_dim=8, sim_dim=8, workers=0, device="cpu", quiet=True)
    return replace(settings, **changes)


def scorer_and_batch(root: Path, settings: TrainSettings):
    """A freshly initialised model and the first training batch of the tiny data."""
    vocab = Vocabulary.load(root / "vocab" / f"{DATA_NAME}_vocab.json")
    split = load_split(root, DATA_NAME, "train")
    data = TrainingData(split, vocab, TrainingSemantics(split.texts), WorldInfo(), batch_size=16, workers=0, seed=0)
    model = fresh_model(settings, model_dims(settings), vocab, split.features.shape)
    return BatchScorer(model).train(), next(iter(data.loader(0)))


@pytest.mark.parametrize("module_name", ["SGR", "SAF"])
def test_a_few_steps_decrease_the_loss(tiny_root, module_name):
    settings = tiny_settings(tiny_root, tiny_root / "unused", module_name=module_name, max_violation=False)
    scorer, batch = scorer_and_batch(tiny_root, settings)
    optimizer = torch.optim.Adam(scorer.parameters(), lr=0.02)
    losses = []
    for _ in range(12):
        optimizer.zero_grad()
        losses.append(backward_batch(scorer, batch, settings, torch.device("cpu"))["loss"])
        optimizer.step()
    assert losses[-1] < 0.9 * losses[0], losses


def test_learning_rate_scales_with_processes_and_decays():
    settings = TrainSettings(data_name=DATA_NAME, module_name="SGR", num_epochs=30, learning_rate=0.0002,
                             lr_update=15, daa_weight=10)
    assert learning_rate_at(settings, 4, 0) == pytest.approx(0.0008)
    assert learning_rate_at(settings, 1, 14) == pytest.approx(0.0002)
    assert learning_rate_at(settings, 1, 15) == pytest.approx(0.00002)
    assert learning_rate_at(settings, 1, 30) == pytest.approx(0.000002)


def _weights(path: Path) -> dict:
    model = build_model(read_checkpoint(path))
    return model.state_dict()


def test_resume_repeats_the_uninterrupted_run(tiny_root, tmp_path):
    straight = tiny_settings(tiny_root, tmp_path / "straight")
    train(straight)
    interrupted = tiny_settings(tiny_root, tmp_path / "resumed", num_epochs=1)
    train(interrupted)
    with pytest.raises(BenchError, match="--resume"):
        train(replace(interrupted, num_epochs=2))
    train(replace(interrupted, num_epochs=2, resume=True))
    expected = _weights(straight.out_dir / "checkpoint_1.pth.tar")
    got = _weights(interrupted.out_dir / "checkpoint_1.pth.tar")
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    log_straight = (straight.out_dir / "log.csv").read_text().splitlines()
    log_resumed = (interrupted.out_dir / "log.csv").read_text().splitlines()
    strip_time = lambda lines: [line.rsplit(",", 1)[0] for line in lines]  # noqa: E731
    assert strip_time(log_resumed) == strip_time(log_straight) and len(log_straight) == 3


def test_checkpoint_has_published_layout_and_resume_state(tiny_root, tmp_path):
    settings = tiny_settings(tiny_root, tmp_path / "run", num_epochs=1, module_name="SGR")
    best = train(settings)
    raw = torch.load(settings.out_dir / "checkpoint_0.pth.tar", weights_only=False)
    assert {"epoch", "model", "best_rsum", "opt", "Eiters", "optimizer", "step", "rng_states", "position",
            "train_settings"} <= raw.keys()
    assert all(key.startswith("module.") for part in raw["model"] for key in part)
    assert raw["opt"].daa_weight == 2.0 and raw["opt"].daa_form == "released" and raw["opt"].module_name == "SGR"
    assert raw["opt"].vocab_path.endswith(f"vocab/{DATA_NAME}_vocab.json") and raw["opt"].dropout == 0.4
    assert raw["Eiters"] == raw["step"] == 8  # 120 captions / 16 per batch
    assert "optimizer" not in torch.load(best, weights_only=False)


def test_trained_checkpoint_round_trips_through_eval(tiny_root, tmp_path):
    settings = tiny_settings(tiny_root, tmp_path / "run", num_epochs=1)
    best = train(settings)
    out, sims_path = tmp_path / "eval.json", tmp_path / "sims.npy"
    result = subprocess.run([sys.executable, "-m", "bench", "eval", "--checkpoint", str(best), "--protocol",
                             "f30k-1k", "--data-root", str(tiny_root), "--device", "cpu", "--json", str(out),
                             "--save-sims", str(sims_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    metrics, recorded = document["metrics"], document["provenance"]["checkpoints"][0]
    assert (recorded["path"], recorded["module_name"]) == (str(best), settings.module_name)
    # the matrix eval scored is the trained model's (the per-caption reference loop on the saved weights) ...
    model = build_model(read_checkpoint(best))
    split = load_split(tiny_root, DATA_NAME, "test")
    vocab = Vocabulary.load(tiny_root / "vocab" / f"{DATA_NAME}_vocab.json")
    with torch.no_grad():
        words, lens = encode_captions(model, vocab, split.captions, torch.device("cpu"))
        expected = reference_scores(model.sim_enc, encode_images(model, split, torch.device("cpu")), words, lens)
    sims = np.load(sims_path)
    assert np.abs(sims - expected.numpy()).max() < 1e-5
    # ... and its recalls are those of that matrix, counted here by hand
    by_hand = _recalls_by_hand(sims)
    for key, value in by_hand.items():
        assert metrics[key[0]][key[1]] == pytest.approx(value)
    assert metrics["rsum"] == pytest.approx(sum(by_hand.values()))


def _recalls_by_hand(sims: np.ndarray) -> dict:
    """R@1/5/10 both ways: image i owns captions 5i..5i+4; rank of its best caption / of the image."""
    n = sims.shape[0]
    best_caption = [int(np.flatnonzero(np.argsort(-sims[i], kind="stable") // 5 == i)[0]) for i in range(n)]
    image_rank = [int(np.flatnonzero(np.argsort(-sims[:, j], kind="stable") == j // 5)[0]) for j in range(5 * n)]
    return {(d, f"r{k}"): 100.0 * float(np.mean(np.array(ranks) < k))
            for d, ranks in (("i2t", best_caption), ("t2i", image_rank)) for k in (1, 5, 10)}


def test_missing_training_data_is_one_clear_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench", "train", "--data-name", "f30k_precomp", "--module-name",
                             "SGR", "--data-root", str(tmp_path), "--out-dir", str(tmp_path / "out")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "vocab" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_bf16_step_follows_the_fp32_step(tiny_root):
    """The same model and batch (no dropout) under bf16 autocast: the loss terms and the gradient
    stay close to fp32's; a step that broke precision handling would drift or vanish."""
    steps = {}
    for precision in ("fp32", "bf16"):
        settings = tiny_settings(tiny_root, tiny_root / "unused", precision=precision, dropout=0.0)
        scorer, batch = scorer_and_batch(tiny_root, settings)
        terms = backward_batch(scorer, batch, settings, torch.device("cpu"))
        gradient = torch.cat([p.grad.flatten() for p in scorer.parameters() if p.grad is not None])
        steps[precision] = (terms, gradient)
    (fp32_terms, fp32_grad), (bf16_terms, bf16_grad) = steps["fp32"], steps["bf16"]
    assert bf16_terms.keys() == fp32_terms.keys()
    for name, value in fp32_terms.items():
        assert float(bf16_terms[name]) == pytest.approx(float(value), rel=0.05, abs=1e-3), name
    assert torch.isfinite(bf16_grad).all() and bf16_grad.shape == fp32_grad.shape
    assert float(torch.nn.functional.cosine_similarity(bf16_grad, fp32_grad, dim=0)) > 0.95
    assert float(bf16_grad.norm()) == pytest.approx(float(fp32_grad.norm()), rel=0.1)
