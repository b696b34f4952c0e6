"""Is bf16 faster than fp32 on this CPU? Measured in a fraction of a second, not guessed from CPU features.

CPUs with native bf16 (AVX512-BF16, AMX) are not always faster in bf16 for this engine: on one
Xeon with AVX512-BF16 the engine ran at 0.67x of its fp32 speed (docs/performance.md). So when bf16
is asked for on a CPU, the engine's two main matrix-product shapes are timed in both precisions,
interleaved, and a slower bf16 is said in one line. fp32 stays the default everywhere.
"""

import sys
import time

import torch

# (rows, inner, outer) of the alignment Linear (E -> S) and of an SGR step (S -> 2S), at a shard's rows
PROBE_SHAPES = ((2048, 1024, 256), (2048, 256, 512))


def _seconds(operands: list, dtype: torch.dtype) -> float:
    started = time.perf_counter()
    for a, b in operands:
        torch.mm(a.to(dtype), b.to(dtype))
    return time.perf_counter() - started


def bf16_over_fp32(repeats: int = 3, seed: int = 0) -> float:
    """fp32 time over bf16 time of PROBE_SHAPES on this CPU (above 1: bf16 is faster), best of
    `repeats` interleaved rounds after a warm-up; the casts count, as autocast pays them too."""
    generator = torch.Generator().manual_seed(seed)
    operands = [(torch.randn(rows, inner, generator=generator), torch.randn(inner, outer, generator=generator))
                for rows, inner, outer in PROBE_SHAPES]
    best = {torch.float32: float("inf"), torch.bfloat16: float("inf")}
    for round_index in range(repeats + 1):
        for dtype in best:
            seconds = _seconds(operands, dtype)
            if round_index:  # round 0 warms up (first-call set-up of the bf16 kernels)
                best[dtype] = min(best[dtype], seconds)
    return best[torch.float32] / best[torch.bfloat16]


def note_slow_bf16(precision: str, device: torch.device) -> float | None:
    """For --precision bf16 on a CPU: measure, and say in one line on stderr when bf16 is slower here.
    Returns the measured ratio (None when nothing was measured)."""
    if precision != "bf16" or device.type != "cpu":
        return None
    ratio = bf16_over_fp32()
    if ratio < 1:
        print(f"daa-bench: note: bf16 is slower than fp32 on this CPU (its matrix products ran at {ratio:.2f}x "
              "of fp32 speed just now); --precision fp32 is faster here", file=sys.stderr)
    return ratio
