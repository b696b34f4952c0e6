"""The arithmetic switches behind `--precision`: TF32 on or off in every float32 kernel, and bf16 autocast.

PyTorch has two APIs for TF32: the legacy one (`set_float32_matmul_precision`, `allow_tf32`) and the
per-backend `fp32_precision` attributes (torch 2.9+). Once a user has set the new one, the legacy
getters raise, so where torch has the new API only the new API is read and written here, and exactly
the values found are put back. The switches cover CUDA matmuls, cuDNN convolutions and RNNs (the
GRU: cuDNN uses TF32 there by default) and oneDNN's CPU matmuls (kept IEEE: tf32 is a CUDA mode).
"""

import contextlib

import torch

from bench.common.errors import BenchError
from bench.eval.tolerances import PRECISIONS


def _new_api_switches() -> list:
    """The backends with an `fp32_precision` switch (empty on a torch without the new API)."""
    backends = torch.backends
    if not hasattr(backends.cuda.matmul, "fp32_precision"):
        return []  # before the candidates are named: an older torch has no cudnn.conv or mkldnn.matmul
    candidates = (backends.cuda.matmul, backends.cudnn.conv, backends.cudnn.rnn, backends.mkldnn.matmul)
    return [switch for switch in candidates if hasattr(switch, "fp32_precision")]


@contextlib.contextmanager
def tf32_switches(allow_tf32: bool):
    """TF32 allowed (True) or IEEE float32 (False) in CUDA matmuls and cuDNN, for the block; then restored.

    Holds for forward and backward alike: autograd runs the backward kernels under the switches in
    force when `backward()` is called, so training calls it inside this block.
    """
    switches = _new_api_switches()
    if switches:
        previous = [switch.fp32_precision for switch in switches]
        for switch in switches:
            cpu_matmul = switch is torch.backends.mkldnn.matmul
            switch.fp32_precision = "tf32" if allow_tf32 and not cpu_matmul else "ieee"
        try:
            yield
        finally:
            for switch, value in zip(switches, previous):
                switch.fp32_precision = value
        return
    previous = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high" if allow_tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = allow_tf32
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous[0])
        torch.backends.cudnn.allow_tf32 = previous[1]


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise BenchError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")


def autocast_for(precision: str, device: torch.device):
    """bf16: autocast to bfloat16 (the forward pass only: PyTorch advises against backward under
    autocast); otherwise a no-op context."""
    check_precision(precision)
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def precision_context(precision: str, device: torch.device):
    """fp32: IEEE matmuls everywhere; tf32: TF32 tensor cores on CUDA; bf16: autocast to bfloat16 (with
    IEEE float32 for what autocast leaves in float32)."""
    check_precision(precision)
    with tf32_switches(precision == "tf32"), autocast_for(precision, device):
        yield
