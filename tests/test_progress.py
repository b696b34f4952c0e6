"""Progress in every setting: plain lines with rate and ETA when stderr is not a terminal."""

import pytest
import torch

from bench.common import progress
from bench.eval.scoring import announce_expected_time
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


def test_quiet_silences_everything(plain, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_QUIET", "1")
    with progress.progress_bar("x", 2) as advance:
        advance(2)
    progress.note("hello")
    assert capsys.readouterr().err == ""


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
