"""`bench demo` end to end on a tiny plan: files written, table printed, chance level right."""

import csv
import json

import pytest
import torch

from bench.cli import main as cli
from bench.demo import DemoPlan, chance_rsum, run_demo

TINY = DemoPlan(train_images=30, dev_images=5, test_images=10, regions=4, num_epochs=2)


def test_chance_rsum_by_hand():
    # 10 images, 50 captions: i2t R@1 = 5/50; t2i R@K = K/10 (R@10 = 1)
    i2t_r5 = 1 - (45 * 44 * 43 * 42 * 41) / (50 * 49 * 48 * 47 * 46)
    i2t_r10 = 1 - float(torch.prod(torch.arange(36, 46, dtype=torch.float64) / torch.arange(41, 51)))
    expected = 100 * (0.1 + i2t_r5 + i2t_r10 + 0.1 + 0.5 + 1.0)
    assert chance_rsum(10) == pytest.approx(expected)


def test_demo_trains_both_models_and_writes_results(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        metrics = run_demo(tmp_path / "data", tmp_path / "models", tmp_path / "results", TINY)
    finally:
        torch.set_num_threads(threads)
    assert set(metrics) == {"SGR", "SAF", "SGRAF"}
    for label in ("sgr", "saf", "sgraf"):
        rows = list(csv.DictReader(open(tmp_path / "results" / f"demo-{label}.csv")))
        assert {row["status"] for row in rows} == {"no-reference"}
        rsum = [row for row in rows if row["metric"] == "rsum"]
        assert len(rsum) == 1 and float(rsum[0]["value"]) == pytest.approx(metrics[label.upper()]["rsum"], abs=1e-3)
        document = json.loads((tmp_path / "results" / f"demo-{label}.json").read_text())
        assert document["protocol"] == "f30k-1k" and document["provenance"]["checkpoints"]
    assert (tmp_path / "models" / "sgr" / "model_best.pth.tar").is_file()
    assert "SGRAF" in capsys.readouterr().out


def test_demo_command_is_registered():
    args = cli.build_parser().parse_args(["demo", "--results", "r"])
    assert str(args.results) == "r" and args.func is not None
