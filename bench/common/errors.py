"""One exception type for every input problem a user can fix.

The CLI prints its message as a single line and exits non-zero, so the message must name
the file or value at fault and, where possible, what to do about it.
"""


class BenchError(Exception):
    """A user-facing failure: bad input, missing file, mismatch. Never a bug."""
