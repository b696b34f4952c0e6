"""`--threads N`: how many CPU threads torch uses for its kernels (eval and train).

torch's default is one per core, which on a shared machine can be slower than fewer (two threads
on a busy two-core host ran slower than one); the count in force is recorded in results.
"""

from bench.common.errors import BenchError


def set_threads(threads: int | None) -> None:
    """Use `threads` CPU threads from now on; None keeps torch's choice."""
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise BenchError(f"--threads {threads}: expected a whole number of at least 1")
    import torch

    torch.set_num_threads(threads)
