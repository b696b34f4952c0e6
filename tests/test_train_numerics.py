"""Training's numerics switches: precision in the backward and validation, --deterministic, --threads."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.cli.main import main as bench_main
from bench.common.errors import BenchError
from bench.training import loop
from bench.training.loop import backward_batch, train
from tests.test_precision import needs_fp32_precision
from tests.test_train import one_thread, scorer_and_batch, tiny_root, tiny_settings  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]


def _switches() -> tuple[str, str]:
    return torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.rnn.fp32_precision


class SwitchSpy(torch.nn.Module):
    """The scorer, noting the TF32 switches in force when autograd reaches its output (the backward)."""

    def __init__(self, scorer):
        super().__init__()
        self.scorer, self.seen = scorer, []

    def forward(self, *inputs):
        scores = self.scorer(*inputs)
        scores.register_hook(lambda grad: self.seen.append(_switches()))
        return scores


@needs_fp32_precision
@pytest.mark.parametrize("precision,expected", [("fp32", "ieee"), ("tf32", "tf32"), ("bf16", "ieee")])
def test_the_backward_runs_under_the_precision_switches(tiny_root, precision, expected):
    """tf32 must reach the backward matmuls; fp32 must keep cuDNN's GRU backward off TF32."""
    settings = tiny_settings(tiny_root, tiny_root / "unused", precision=precision)
    scorer, batch = scorer_and_batch(tiny_root, settings)
    spy = SwitchSpy(scorer)
    before = _switches()
    backward_batch(spy, batch, settings, torch.device("cpu"))
    assert spy.seen == [(expected, expected)]
    assert _switches() == before


def test_deterministic_training_records_its_switches_and_restores_them(tiny_root, tmp_path, monkeypatch):
    settings = tiny_settings(tiny_root, tmp_path / "run", num_epochs=1, deterministic=True, threads=1,
                             precision="bf16")
    seen, real = [], loop._train

    def noting(*args):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic))
        return real(*args)

    monkeypatch.setattr(loop, "_train", noting)
    train(settings)
    assert seen == [(True, True)]
    record = torch.load(settings.out_dir / "checkpoint_0.pth.tar", weights_only=False)["train_settings"]
    assert record["deterministic"] is True and record["threads"] == 1 and record["threads_used"] == 1
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic


def test_threads_below_one_are_refused(tiny_root, tmp_path):
    with pytest.raises(BenchError, match="--threads 0"):
        train(replace(tiny_settings(tiny_root, tmp_path / "run"), threads=0))
    assert not (tmp_path / "run").exists()


def test_eval_threads_are_used_and_recorded(golden_dir, tmp_path, capsys):
    out = tmp_path / "run.json"
    command = ["eval", "--protocol", "coco-5k", "--data-root", str(golden_dir), "--device", "cpu",
               "--checkpoint", str(golden_dir / "coco_sgr.pth.tar"), "--threads"]
    env = dict(os.environ, PYTHONPATH=str(REPO), BENCH_QUIET="1")
    done = subprocess.run([sys.executable, "-m", "bench", *command, "1", "--json", str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    provenance = json.loads(out.read_text())["provenance"]
    assert provenance["threads"] == 1 and provenance["device_name"].endswith("(1 threads)")
    assert bench_main([*command, "0"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "--threads 0: expected a whole number of at least 1" in line
