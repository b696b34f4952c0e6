"""Temporaries beside an output, and durable renames (bench.common.atomic writes through these).

A temporary is named `.<name>.partial-h<host>-<pid>-<random><suffix>`: `<host>` identifies the machine
and its pid namespace (hostname and /proc/self/ns/pid), so a sweep removes the temporaries this host's
dead processes left, and those of other hosts or namespaces (a results folder on NFS, a container)
only once they are STALE_SECONDS old, since their pid means nothing here.

durable_replace syncs the file before the rename and its folder after it: after a power cut a file
under its final name is whole.
"""

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

PARTIAL_MARK = ".partial-"
_PARTIAL_NAME = re.compile(r"^\..+" + re.escape(PARTIAL_MARK) + r"(h[0-9a-f]{8})-(\d+)-[0-9a-f]+")
STALE_SECONDS = 2 * 24 * 3600  # a temporary of another host or pid namespace is swept after two days


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OverflowError:  # not a pid at all
        return False
    return True


def host_id() -> str:
    """This machine and pid namespace, as 'h' and 8 hex digits: pids are only compared within it."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:  # no /proc (not Linux): the hostname alone
        namespace = ""
    return "h" + hashlib.sha256(f"{socket.gethostname()}\0{namespace}".encode()).hexdigest()[:8]


_HOST = host_id()


def partial_name(final_name: str, suffix: str, pid: int | None = None, host: str | None = None) -> str:
    """The name of a temporary for `final_name` (this process and host unless given)."""
    pid = os.getpid() if pid is None else pid
    return f".{final_name}{PARTIAL_MARK}{host or _HOST}-{pid}-{secrets.token_hex(4)}{suffix}"


def _abandoned(path: Path) -> bool:
    """Whether `path` is one of our temporaries whose writer is gone: this host's dead process, or
    another host's (or namespace's) temporary older than STALE_SECONDS."""
    match = _PARTIAL_NAME.match(path.name)
    if not match:
        return False
    host, pid = match.group(1), int(match.group(2))
    if host == _HOST:
        return pid != os.getpid() and not _process_alive(pid)
    try:
        return time.time() - path.lstat().st_mtime > STALE_SECONDS
    except OSError:
        return False


def sweep_partials(final: str | os.PathLike) -> list[Path]:
    """Remove the temporaries in `final`'s folder (of any output name) that no live writer owns;
    returns them. A temporary folder (a Drive folder's fetch, bench.download.family_drive) goes whole."""
    folder = Path(final).parent
    removed = []
    if not folder.is_dir():
        return removed
    for candidate in folder.glob(f".*{PARTIAL_MARK}*"):
        if _abandoned(candidate) and candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
        elif _abandoned(candidate) and candidate.is_file():
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's bytes to the disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_folder(path: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename into it) to the disk; a file system that cannot is let be."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # EINVAL: folders of this file system cannot be synced
        pass
    finally:
        os.close(handle)


def durable_replace(source: str | os.PathLike, final: str | os.PathLike) -> None:
    """os.replace that survives a power cut: the file is synced before the rename, its folder after."""
    fsync_file(source)
    os.replace(source, final)
    fsync_folder(Path(final).parent)
