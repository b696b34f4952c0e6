"""`--threads N`: how many CPU threads torch uses for its kernels (eval and train).

torch's default is one per core, which on a shared machine can be slower than fewer (two threads
on a busy two-core host ran slower than one); the count in force is recorded in results. More
threads than the CPUs this process may use only add contention (a million would start threads
until memory ran out), so the count is bounded by usable_cpus().
"""

import os

from bench.common.errors import BenchError


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which a scheduler or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def check_threads(threads, flag: str = "--threads") -> None:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise BenchError(f"{flag} {threads}: expected a whole number of at least 1")
    if threads > usable_cpus():
        raise BenchError(f"{flag} {threads}: at most {usable_cpus()} (the CPUs this process may use)")


def set_threads(threads: int | None) -> None:
    """Use `threads` CPU threads from now on; None keeps torch's choice."""
    if threads is None:
        return
    check_threads(threads)
    import torch

    torch.set_num_threads(threads)
