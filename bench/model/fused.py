"""Opt-in: the engine's per-chunk evaluation step compiled by torch.compile, on CPU or CUDA alike.

One caption chunk against an image shard (alignment nodes, then the SGR or SAF head, then the score)
is a chain of matrix products and element-wise passes over (images x captions x words x E) tensors;
Inductor fuses the element-wise passes into the products' neighbours (C++/OpenMP on a CPU, Triton on
a GPU). Compiling costs time once per process and caption-length shape family (dynamic shapes), so
it pays only for long runs: `BENCH_COMPILE=1` turns it on; nothing requires it, and without it
the plain path runs (docs/performance.md has the measured compile time and speed on each host).
"""

import contextlib
import functools
import os

import torch

COMPILE_ENV = "BENCH_COMPILE"


BACKENDS = ("inductor", "aot_eager", "eager")  # eager / aot_eager: graph capture only, for wiring checks


def requested_backend() -> str | None:
    """BENCH_COMPILE=1 (or true/yes): inductor; =eager or =aot_eager: that backend; else None."""
    value = os.environ.get(COMPILE_ENV, "").strip().lower()
    if value in ("1", "true", "yes"):
        return "inductor"
    return value if value in BACKENDS else None


@functools.cache
def compiled(step, backend: str = "inductor"):
    """`step` under torch.compile (one compiled function per step and backend, kept for the process)."""
    return torch.compile(step, backend=backend, dynamic=True)


@contextlib.contextmanager
def compile_enabled(backend: str = "inductor"):
    """BENCH_COMPILE=<backend> for the block (gpu-check's compiled rows go through eval's own path)."""
    before = os.environ.get(COMPILE_ENV)
    os.environ[COMPILE_ENV] = backend
    try:
        yield
    finally:
        if before is None:
            del os.environ[COMPILE_ENV]
        else:
            os.environ[COMPILE_ENV] = before
