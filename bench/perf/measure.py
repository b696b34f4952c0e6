"""Timers, matmul peak and peak-memory probes shared by the benchmarks."""

import ctypes
import time
from pathlib import Path

import torch


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, warmup: bool = True, repeats: int = 1):
    """(result, seconds): the fastest of `repeats` calls, after one warm-up call when asked.

    The fastest run is the one least disturbed by other work on a shared machine.
    """
    if warmup:
        fn()
    best = float("inf")
    for _ in range(repeats):
        synchronise(device)
        started = time.perf_counter()
        result = fn()
        synchronise(device)
        best = min(best, time.perf_counter() - started)
    return result, best


def matmul_work(device: torch.device, dtype: torch.dtype, size: int = 2048):
    """(run, flops): three size^3 products, the yardstick of a path's FLOP rate; timed by the
    caller between the paths it is compared with, so that it sees the same machine they do."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    return (lambda: [a @ b for _ in range(3)]), 3 * 2 * size**3


def reset_peak_memory(device: torch.device, hand_back: bool = False) -> None:
    """Start a new high-water mark (Linux: writing 5 to clear_refs resets VmHWM).

    `hand_back` first returns the memory glibc keeps from freed blocks to the system (malloc_trim), so
    that a path measured after another does not start from the first one's peak (a training step's SAF
    read SGR's 7.4 GB). Not before a timed run: the run would then pay to fault that memory in again.
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    clear = Path("/proc/self/clear_refs")
    if clear.exists():
        if hand_back:
            _hand_back_freed_memory()
        clear.write_text("5")


def _hand_back_freed_memory() -> None:
    """glibc's malloc_trim(0); a no-op where the C library has none (musl, macOS)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory_mb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None
