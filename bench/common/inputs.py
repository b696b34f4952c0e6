"""Every input file is checked the same way before it is opened: it must be a regular, readable file.

    path = require_file(args.scores, "score file")

A FIFO would block the read for ever (`plot` on a FIFO hung), a device never ends, a directory or an
unreadable file is an error the user can fix: each is refused with one line that says which it is,
instead of "not found" or a hang.
"""

import os
import stat
from pathlib import Path

from bench.common.errors import BenchError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_problem(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be read as a file (missing, a directory, a FIFO, unreadable...), or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "is a symbolic link that leads to no file" if os.path.islink(path) else "not found"
    except OSError as err:  # a loop of links, a path under a file, no permission on a folder
        return f"cannot be read ({err.strerror or err})"
    for test, words in _KINDS:
        if test(mode):
            return f"is {words}, not a regular file"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def require_file(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    """`path` as a Path when it is a readable regular file; else BenchError naming it and `what` it is."""
    problem = file_problem(path)
    if problem:
        raise BenchError(f"{path}: {what} {problem}{hint if problem == 'not found' else ''}")
    return Path(path)
