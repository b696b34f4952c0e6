"""`--deterministic`: training that repeats bit for bit on CUDA too, at some speed cost.

On a CPU, training already repeats exactly (resume included). On CUDA, `index_add` (the engine's
per-caption sums) and the backward of `index_select` accumulate with atomics in whatever order the
threads arrive, and cuBLAS and cuDNN may pick non-deterministic algorithms; this switches all of
them to deterministic implementations for the run, then restores what was there.
"""

import contextlib
import os

import torch

CUBLAS_WORKSPACE = ":4096:8"  # what cuBLAS needs to be deterministic (CUDA >= 10.2), read at its first use


@contextlib.contextmanager
def deterministic_kernels(enabled: bool):
    if not enabled:
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    cudnn = torch.backends.cudnn
    previous = torch.are_deterministic_algorithms_enabled(), cudnn.deterministic, cudnn.benchmark
    torch.use_deterministic_algorithms(True)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        cudnn.deterministic, cudnn.benchmark = previous[1], previous[2]
