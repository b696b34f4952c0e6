"""A command's own peak resident memory, for the benchmarks that bound what a command may use.

The peak is the child's own (wait4), not RUSAGE_CHILDREN's maximum over every child this process
ever waited for (under pytest, that includes unrelated CUDA-torch subprocesses).
"""

import os
import subprocess
import time


def run_measured(command: list[str], **popen) -> tuple[int, float, int]:
    """(exit code, seconds, peak RSS bytes) of `command`, run to its end in a fresh child process."""
    started = time.perf_counter()
    child = subprocess.Popen(command, **popen)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    return child.returncode, time.perf_counter() - started, usage.ru_maxrss * 1024  # Linux reports KiB
