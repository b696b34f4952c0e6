"""Progress in every setting: plain lines with rate and ETA when stderr is not a terminal."""

import pytest
import torch

from bench.common import progress
from bench.eval.scoring import announce_expected_time, score_matrix
from bench.model.random_weights import random_model, small_config


@pytest.fixture
def plain(monkeypatch):
    """stderr captured by pytest is not a terminal: the plain form, a line on every update."""
    monkeypatch.setenv(progress.INTERVAL_ENV, "0")
    monkeypatch.delenv("BENCH_QUIET", raising=False)


def test_items_report_done_total_rate_and_eta(plain, capsys):
    with progress.progress_bar("scoring", 4, unit="images") as advance:
        advance(1)
        advance(3)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("scoring: 1/4 images (25%), ") and "images/s" in lines[0] and "ETA" in lines[0]
    assert lines[1].startswith("scoring: 4/4 images (100%)")
    assert lines[-1].startswith("scoring: done, 4 images in ")


def test_bytes_learn_their_total_late(plain, capsys):
    with progress.byte_progress("data.zip", None) as update:
        update(500_000)
        update(2_000_000, 4_000_000)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("data.zip: 500.0 KB, ") and "ETA" not in lines[0]
    assert lines[1].startswith("data.zip: 2.0 MB/4.0 MB (50%), ") and "B/s, ETA" in lines[1]


def test_lines_are_spaced_by_the_interval(monkeypatch, capsys):
    monkeypatch.setenv(progress.INTERVAL_ENV, "3600")
    with progress.progress_bar("epoch 1", 100, unit="steps") as advance:
        for _ in range(100):
            advance()
    assert capsys.readouterr().err == ""  # a step shorter than the interval says nothing


@pytest.mark.parametrize("variable,value", [("BENCH_QUIET", "1"), ("RANK", "1")])  # torchrun: rank 0 speaks
def test_quiet_and_other_ranks_print_nothing(plain, monkeypatch, capsys, variable, value):
    monkeypatch.setenv(variable, value)
    with progress.progress_bar("x", 2) as advance:
        advance(2)
    progress.note("hello")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", ["0", "false", "No", ""])
def test_bench_quiet_0_means_not_quiet(plain, monkeypatch, capsys, value):
    monkeypatch.setenv("BENCH_QUIET", value)
    progress.note("hello")
    assert "hello" in capsys.readouterr().err


@pytest.mark.parametrize("seconds,text", [(5, "5 s"), (245, "4 min 05 s"), (23_400, "6.5 h")])
def test_durations_read_naturally(seconds, text):
    assert progress.human_duration(seconds) == text


def test_expected_time_is_announced_before_scoring(plain, capsys):
    model = random_model(small_config("SGR", "coco_precomp", 50), seed=1)
    img = torch.randn(10, 36, 32)
    cap, lens = torch.randn(20, 9, 32), torch.full((20,), 9)
    seconds = announce_expected_time(model, img, cap, lens, 125_000_000, "scoring SGR on testall", min_seconds=0)
    line = capsys.readouterr().err.strip()
    assert seconds > 0 and line.startswith("scoring SGR on testall: 125.0M pairs, about ") and "on this CPU" in line
    assert announce_expected_time(model, img, cap, lens, 200, "tiny") == 0 and capsys.readouterr().err == ""


def test_metric_stage_is_announced_on_real_sized_matrices_only(plain, monkeypatch, capsys):
    from pathlib import Path

    from bench.eval import pipeline

    golden = Path(__file__).parent / "fixtures" / "golden"
    args = dict(data_root=golden, device="cpu")
    pipeline.run_protocol([golden / "f30k_sgr.pth.tar"], "f30k-1k", **args)
    assert "metrics on" not in capsys.readouterr().err  # the fixture's matrix is small
    monkeypatch.setattr(pipeline, "LARGE_MATRIX", 1)
    pipeline.run_protocol([golden / "f30k_sgr.pth.tar"], "f30k-1k", **args)
    assert "f30k-1k: metrics on " in capsys.readouterr().err


def test_slow_steps_show_time_per_step_never_zero_per_second():
    slow = progress.PlainProgress("epoch 0", 1133, "steps")
    assert slow._rate(1 / 45) == "45 s per step"
    assert slow._rate(0.0) == "no steps done yet"
    assert slow._rate(2.5) == "2.5 steps/s"


def _lines(capsys, start: str) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith(start)]


def test_a_line_comes_per_caption_chunk_within_one_shard(plain, capsys):
    """One shard holding every image must still report along the way (a real shard takes minutes)."""
    model = random_model(small_config("SGR", "coco_precomp", 50), seed=1)
    img, cap = torch.randn(6, 36, 32), torch.randn(10, 9, 32)
    lens = torch.tensor([9, 9, 9, 9, 9, 4, 4, 4, 2, 2])
    score_matrix(model, img, cap, lens, image_shard=6, caption_chunk=2)
    lines = _lines(capsys, "scoring: ")
    assert len([line for line in lines if "pairs (" in line]) == 3 + 2 + 1  # chunks of lengths 9, 4, 2
    assert lines[0].startswith("scoring: 12/60 pairs (20%)") and lines[-1].startswith("scoring: done, 60 pairs")


def test_progress_and_eta_are_the_whole_runs_over_every_fold(plain, capsys, data_root):
    from bench.data.splits import load_split
    from bench.data.vocab import Vocabulary
    from bench.eval.score_split import ScoringRequest, score_model

    vocab = Vocabulary.load(data_root / "vocab" / "coco_precomp_vocab.json")
    model = random_model(small_config("SAF", "coco_precomp", len(vocab)), seed=1)
    folds = [(slice(10 * f, 10 * f + 10), slice(50 * f, 50 * f + 50)) for f in range(3)]
    request = ScoringRequest(load_split(data_root, "coco_precomp", "testall"), vocab, torch.device("cpu"),
                             blocks=folds, what="scoring SAF on testall")
    sims = score_model(model, request).matrix
    lines = _lines(capsys, "scoring SAF on testall")
    assert sims.shape == (3, 10, 50)
    assert lines[0].startswith("scoring SAF on testall, fold 1/3: ") and "/1,500 pairs (" in lines[0]
    assert "fold 3/3: 1,500/1,500 pairs (100%)" in lines[-2] and "ETA" in lines[-2]
    assert lines[-1].startswith("scoring SAF on testall: done, 1,500 pairs")


def test_the_second_model_of_an_ensemble_continues_the_count(plain, capsys):
    with progress.progress_bar("scoring SAF", 10, unit="pairs", completed=5) as advance:
        advance(1)
    assert _lines(capsys, "scoring SAF")[0].startswith("scoring SAF: 6/10 pairs (60%)")


def test_the_probe_times_the_real_shard_and_chunk_after_a_warm_up(plain, monkeypatch):
    from bench.eval import scoring

    model = random_model(small_config("SGR", "coco_precomp", 50), seed=1)
    img, cap, lens = torch.randn(10, 36, 32), torch.randn(20, 9, 32), torch.randint(2, 10, (20,))
    calls, real = [], scoring.pair_scores

    def recording(sim_enc, images, words, word_lens, **kwargs):
        calls.append((images.shape[0], words.shape[0], kwargs["caption_chunk"], len(set(word_lens.tolist()))))
        return real(sim_enc, images, words, word_lens, **kwargs)

    monkeypatch.setattr(scoring, "pair_scores", recording)
    announce_expected_time(model, img, cap, lens, 125_000_000, "x", min_seconds=0, image_shard=4)
    assert calls == [(4, 8, 8, 1)] * 2  # the shard, one full CPU chunk of one length: warm-up, then timed


def test_the_expected_time_is_shared_by_the_processes(plain, monkeypatch):
    from bench.common.distributed import WorldInfo
    from bench.eval import scoring

    model = random_model(small_config("SGR", "coco_precomp", 50), seed=1)
    img, cap, lens = torch.randn(10, 36, 32), torch.randn(20, 9, 32), torch.full((20,), 9)
    monkeypatch.setattr(scoring, "_probe_seconds", lambda *args: 1.0)
    alone = announce_expected_time(model, img, cap, lens, 8_000_000, "x", min_seconds=0, image_shard=10)
    monkeypatch.setattr(scoring, "active_world", lambda: WorldInfo(0, 0, 4, launched=True))
    assert alone == 8_000_000 / (10 * 8)
    assert announce_expected_time(model, img, cap, lens, 8_000_000, "x", min_seconds=0, image_shard=10) == alone / 4


def test_a_whole_run_counts_its_steps_bars_and_silences_the_others(plain, capsys):
    with progress.whole_run("demo", 7, unit="steps") as advance:
        advance(1, stage="1/2 generating")
        with progress.progress_bar("epoch 0", 4, unit="steps") as step:
            for _ in range(4):
                step(1)
        with progress.progress_bar("scoring", 50, unit="pairs") as pairs:
            pairs(50)
        advance(2, stage="2/2 scoring")
    lines = capsys.readouterr().err.splitlines()
    assert not any(line.startswith(("epoch 0", "scoring")) for line in lines)
    counts = [line.split(": ")[1].split(" ")[0] for line in lines if "steps (" in line]
    assert counts == ["1/7", "2/7", "3/7", "4/7", "5/7", "7/7"]
    assert lines[-2].startswith("demo, 2/2 scoring: 7/7 steps (100%)") and lines[-1].startswith("demo: done, 7 steps")
