"""The --precision switches: TF32 on or off in every kernel, through PyTorch's current API, restored after."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.eval.precision import precision_context

REPO = Path(__file__).resolve().parents[1]
SWITCHES = ("cuda.matmul", "cudnn.conv", "cudnn.rnn", "mkldnn.matmul")
# The per-backend `fp32_precision` switches arrived in torch 2.9; bench uses the legacy API before that.
needs_fp32_precision = pytest.mark.skipif(not hasattr(torch.backends.cuda.matmul, "fp32_precision"),
                                          reason=f"torch {torch.__version__} has no fp32_precision switches "
                                                 "(torch 2.9+); bench falls back to the legacy TF32 API")


def _values() -> dict:
    return {name: getattr(getattr(torch.backends, name.split(".")[0]), name.split(".")[1]).fp32_precision
            for name in SWITCHES}


@needs_fp32_precision
@pytest.mark.parametrize("precision,gpu_value", [("fp32", "ieee"), ("tf32", "tf32"), ("bf16", "ieee")])
def test_every_float32_kernel_follows_the_precision_then_is_restored(precision, gpu_value):
    """cuDNN's GRU uses TF32 by default on recent GPUs: fp32 must switch that off too; CPU matmuls stay IEEE."""
    before = _values()
    with precision_context(precision, torch.device("cpu")):
        inside = _values()
        assert torch.is_autocast_enabled("cpu") is (precision == "bf16")
    assert inside == {"cuda.matmul": gpu_value, "cudnn.conv": gpu_value, "cudnn.rnn": gpu_value,
                      "mkldnn.matmul": "ieee"}
    assert _values() == before


NEW_API_THEN_EVALUATE = """
import sys, torch, bench
torch.backends.cuda.matmul.fp32_precision = "tf32"
torch.backends.cudnn.rnn.fp32_precision = "ieee"
before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
          torch.backends.cudnn.rnn.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision)
result = bench.evaluate(sys.argv[2], "coco-5k", data_root=sys.argv[1], device="cpu", run_id="run")
after = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
         torch.backends.cudnn.rnn.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision)
assert after == before, (before, after)
print("rsum", result.metrics["rsum"])
"""


@needs_fp32_precision
def test_evaluate_works_after_the_user_set_the_new_tf32_api(golden_dir):
    """PyTorch's CUDA notes now recommend `fp32_precision`; the legacy getters then raise ("mix of the
    legacy and new APIs"), so the library must read and restore the new switches only."""
    env = dict(os.environ, PYTHONPATH=str(REPO), BENCH_QUIET="1")
    result = subprocess.run([sys.executable, "-c", NEW_API_THEN_EVALUATE, str(golden_dir),
                             str(golden_dir / "coco_sgr.pth.tar")], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("rsum")


def test_legacy_getters_still_work_after_the_switches_when_the_user_used_neither():
    """Restoring puts back the values found, so a program on the legacy API keeps working."""
    code = ("import torch\nfrom bench.eval.precision import tf32_switches\n"
            "torch.set_float32_matmul_precision('high')\n"
            "with tf32_switches(False):\n    pass\n"
            "print(torch.get_float32_matmul_precision())\n")
    result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "high", result.stderr[-2000:]


LEGACY_TORCH = """
import torch
from bench.eval import precision
precision._new_api_switches = lambda: []  # a torch before 2.9, which has only the legacy API
state = lambda: (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
before = state()
with precision.tf32_switches(True):
    allowed = state()
with precision.tf32_switches(False):
    ieee = state()
print(allowed, ieee, state() == before)
"""


def test_a_torch_with_only_the_legacy_api_gets_the_same_switches():
    result = subprocess.run([sys.executable, "-c", LEGACY_TORCH], env=dict(os.environ, PYTHONPATH=str(REPO)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["('high',", "True)", "('highest',", "False)", "True"]
