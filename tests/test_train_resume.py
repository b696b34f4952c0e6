"""Stopping and resuming: --max-steps, --save-every-steps, a kill mid-epoch, --resume with workers > 0.

A resumed run must be bit-identical to the uninterrupted one: same batches, same random streams.
"""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.cli import main as cli
from bench.common.distributed import WorldInfo
from bench.data.splits import load_split
from bench.data.vocab import Vocabulary
from bench.demo import DATA_NAME, DemoPlan, write_demo_data
from bench.model.checkpoint import read_checkpoint
from bench.training import loop
from bench.training.batches import CaptionSamples, EpochBatches
from bench.training.logs import read_step_log
from bench.training.settings import TrainSettings

TINY = DemoPlan(train_images=24, dev_images=6, test_images=10, regions=4)  # 120 captions: 8 batches of 16


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Before the module's runs: thread counts change float rounding, and the runs are compared bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume_data")
    write_demo_data(root, TINY)
    return root


def settings(root: Path, out_dir: Path, **changes) -> TrainSettings:
    base = TrainSettings(data_name=DATA_NAME, module_name="SAF", out_dir=out_dir, data_root=root, num_epochs=2,
                         learning_rate=0.002, lr_update=1, daa_weight=2.0, batch_size=16, embed_size=16, word_dim=8,
                         sim_dim=8, workers=2, device="cpu", quiet=True, save_every_steps=3)
    return replace(base, **changes)


@pytest.fixture(scope="module")
def straight(root, tmp_path_factory) -> Path:
    """The uninterrupted run (2 epochs, 2 data-loader workers, dropout on)."""
    out = tmp_path_factory.mktemp("straight")
    loop.train(settings(root, out))
    return out


def assert_same_run(expected_dir: Path, got_dir: Path) -> None:
    expected, got = (read_checkpoint(d / "checkpoint_1.pth.tar") for d in (expected_dir, got_dir))
    for theirs, ours in zip(expected.state_dicts, got.state_dicts):
        assert theirs.keys() == ours.keys()
        for key in theirs:
            assert torch.equal(theirs[key], ours[key]), key
    assert read_step_log(expected_dir) == read_step_log(got_dir)
    strip_seconds = lambda d: [line.rsplit(",", 1)[0] for line in (d / "log.csv").read_text().splitlines()]  # noqa
    assert strip_seconds(expected_dir) == strip_seconds(got_dir)


def test_max_steps_stops_mid_epoch_and_resume_continues_exactly(root, straight, tmp_path):
    first = settings(root, tmp_path / "run", max_steps=5)
    best = loop.train(first)
    assert best.is_file() and (first.out_dir / "checkpoint_0_step5.pth.tar").is_file()
    assert not (first.out_dir / "checkpoint_0_step3.pth.tar").exists()  # superseded
    assert [row["step"] for row in read_step_log(first.out_dir)] == [1, 2, 3, 4, 5]
    loop.train(replace(first, max_steps=None, resume=True))
    assert_same_run(straight, first.out_dir)


def test_a_kill_mid_epoch_resumes_from_the_last_saved_step(root, straight, tmp_path, monkeypatch):
    real_step, calls = loop._step, []

    def dies_at_step_5(run, batch):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(run, batch)

    run = settings(root, tmp_path / "run")
    monkeypatch.setattr(loop, "_step", dies_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        loop.train(run)
    monkeypatch.setattr(loop, "_step", real_step)
    assert sorted(p.name for p in run.out_dir.glob("*.pth.tar")) == ["checkpoint_0_step3.pth.tar"]
    loop.train(replace(run, resume=True))
    assert_same_run(straight, run.out_dir)


def test_resume_after_an_epoch_with_workers(root, straight, tmp_path):
    run = settings(root, tmp_path / "run", num_epochs=1)
    loop.train(run)
    loop.train(replace(run, num_epochs=2, resume=True))
    assert_same_run(straight, run.out_dir)


def test_cli_resume_finds_the_run_and_restores_its_settings(root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default folder: models/trained/f30k_precomp_saf
    common = ["train", "--data-name", DATA_NAME, "--module-name", "SAF", "--data-root", str(root), "--device", "cpu"]
    assert cli.main([*common, "--learning-rate", "0.002", "--lr-update", "1", "--daa-weight", "2", "--batch-size",
                     "16", "--embed-size", "16", "--word-dim", "8", "--sim-dim", "8", "--num-epochs", "1",
                     "--workers", "0", "--max-steps", "2"]) == 0
    run_dir = Path("models/trained/f30k_precomp_saf")
    assert (run_dir / "checkpoint_0_step2.pth.tar").is_file()
    capsys.readouterr()
    assert cli.main([*common, "--resume", "--learning-rate", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--learning-rate 0.1" in err and "learning_rate=0.002" in err
    assert cli.main([*common, "--resume", "--max-steps", "4"]) == 0
    resumed = read_checkpoint(run_dir / "checkpoint_0_step4.pth.tar")
    assert resumed.opt.learning_rate == 0.002 and resumed.config.embed_size == 16 and resumed.extra["step"] == 4
    assert resumed.extra["train_settings"]["batch_size"] == 16


def test_a_last_batch_of_one_caption_is_merged(root, tmp_path):
    split = load_split(root, DATA_NAME, "train")
    samples = CaptionSamples(split, Vocabulary.load(root / "vocab" / f"{DATA_NAME}_vocab.json"))
    batches = EpochBatches(torch.utils.data.Subset(samples, range(25)), WorldInfo(), batch_size=12, seed=0)
    assert [len(b) for b in batches.epoch_batches()] == [12, 13] and len(batches) == batches.per_epoch() == 2
    batches.set_epoch(0, skip=1)
    assert [len(b) for b in batches] == [13] and len(batches) == 1
    run = settings(root, tmp_path / "run", num_epochs=1, train_captions=25, batch_size=12, workers=0)
    loop.train(run)  # SAF's batch norms never see a batch of one caption
    assert [row["step"] for row in read_step_log(run.out_dir)] == [1, 2]
