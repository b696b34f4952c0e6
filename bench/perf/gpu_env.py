"""What gpu-check's processes share: where this source tree is, the environment a child runs in, and
how a child's output or error is cut down to one row's detail."""

import os
from pathlib import Path

from bench.common.replace_rule import Kind

REPO = Path(__file__).resolve().parents[2]


def source_env(**extra: str) -> dict:
    """The environment for a child process of the check: this source tree first on PYTHONPATH, so the
    child runs the same bench as the check, plus `extra`."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, **extra, PYTHONPATH=path)


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}"[:300]


def last_line(output: str) -> str:
    """A child's last non-blank output line, cut to fit a row's detail."""
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1][:240] if lines else "(no output)"


# A part's rows (a JSON list) in the check's own temporary folder, rewritten as rows are measured.
PART_ROWS = Kind("a gpu-check part's rows", lambda path: path.name.endswith(".rows.json"))
