"""What the CPU is and what it can do: its name and the instruction-set features speed depends on.

Whether bf16 pays off on a CPU depends on native bf16 matmuls (AVX512-BF16, AMX); a benchmark's
figures hold for the host they were measured on, so they are printed and recorded with it.
"""

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# Features that change the speed of fp32 / bf16 matrix products, in the order they are listed.
SPEED_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16",
                  "amx_int8")


def _cpuinfo_field(names: tuple[str, ...]) -> str | None:
    """The first `name : value` line of /proc/cpuinfo whose name is one of `names` (Linux only)."""
    try:
        for line in CPUINFO.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(names) and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo), else what platform knows."""
    return _cpuinfo_field(("model name", "hardware")) or platform.processor() or platform.machine()


def cpu_features() -> list[str] | None:
    """The speed-relevant features the CPU reports, in SPEED_FEATURES order; None where unknown."""
    flags = _cpuinfo_field(("flags", "features"))
    if flags is None:
        return None
    present = set(flags.split())
    return [name for name in SPEED_FEATURES if name in present]


def features_text() -> str:
    """`avx2 fma avx512f avx512_bf16 (no amx_tile, amx_bf16, ...)`, or why it is unknown."""
    features = cpu_features()
    if features is None:
        return f"unknown on {platform.system()} (no {CPUINFO})"
    missing = [name for name in SPEED_FEATURES if name not in features]
    return " ".join(features) + (f" (not: {', '.join(missing)})" if missing else "")
