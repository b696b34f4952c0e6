"""sha256 of every downloaded or prepared file, recorded the first time it is seen (trust on first use).

No hash of SCAN's features or the DAA checkpoints is published. The manifest beside the files
(`<root>/download-manifest.json`) remembers what was verified; later runs compare size and
mtime and re-hash only a file that changed (or with --rehash), so an up-to-date tree is checked
in seconds, not the half hour 34 GB of hashing takes.
"""

import contextlib
import datetime
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from bench.common.atomic import write_json
from bench.common.errors import BenchError
from bench.common.replace_rule import Kind
from bench.model.checkpoint import sha256_of

MANIFEST_NAME = "download-manifest.json"
MANIFEST = Kind.json_with("a download manifest", ("version", "files"))


@dataclass
class Manifest:
    """Entries keyed by path relative to `root` (absolute for files outside it, e.g. --from)."""

    root: Path

    @property
    def path(self) -> Path:
        return self.root / MANIFEST_NAME

    def key(self, path: Path) -> str:
        path = Path(path).absolute()
        try:
            return str(path.relative_to(self.root.absolute()))
        except ValueError:
            return str(path)

    def entries(self) -> dict:
        if not self.path.is_file():
            return {}
        try:
            files = json.loads(self.path.read_text(encoding="utf-8"))["files"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
            files = None
        if not (isinstance(files, dict) and all(map(_well_formed, files.values()))):
            raise BenchError(f"{self.path}: malformed download manifest; move it aside to start afresh")
        return files

    def entry(self, path: Path) -> dict | None:
        return self.entries().get(self.key(path))

    def is_current(self, path: Path) -> bool:
        """The file is recorded and its size and mtime are those recorded: no need to re-hash."""
        entry = self.entry(path)
        if entry is None or not path.is_file():
            return False
        stat = path.stat()
        return entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns

    def verify_or_record(self, path: Path, item: str, sha256: str | None = None, origin: str = "") -> str:
        """Check `path` against its recorded sha256, or record it if it was never seen."""
        digest = sha256 or sha256_of(path)
        recorded = self.entry(path)
        if recorded is not None and recorded["sha256"] != digest:
            raise BenchError(
                f"{path}: sha256 {digest[:12]}... differs from {recorded['sha256'][:12]}... recorded in "
                f"{self.path} when it was first verified; the file is corrupt or the source changed: delete "
                f"it and download again, or remove its entry from the manifest to trust the new file"
            )
        self.record(path, item, digest, origin or (recorded or {}).get("origin", ""))
        return digest

    def record(self, path: Path, item: str, sha256: str, origin: str = "") -> None:
        stat = path.stat()
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        entry = {"item": item, "sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                 "origin": origin, "verified": now}
        self._update(lambda files: files.__setitem__(self.key(path), entry))

    def forget(self, path: Path) -> None:
        self._update(lambda files: files.pop(self.key(path), None))

    def _update(self, change) -> None:
        """Read-modify-write under a lock: parallel `make` targets share one manifest. One left
        without entries (a failed run forgot what it recorded) is removed: it says nothing."""
        self.root.mkdir(parents=True, exist_ok=True)
        with directory_lock(self.root):
            files = self.entries()
            change(files)
            if files:
                write_json(self.path, {"version": 1, "files": dict(sorted(files.items()))}, MANIFEST)
            else:
                remove_quietly(self.path)


def _well_formed(entry) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
            and all(isinstance(entry.get(k), int) and not isinstance(entry.get(k), bool) for k in ("size", "mtime_ns")))


@contextlib.contextmanager
def directory_lock(directory: Path):
    """An exclusive advisory lock on a folder itself, held for the block.

    Locking the folder (Linux and macOS allow flock on a directory) leaves no `.lock` file
    behind, and the lock is released if the process dies.
    """
    directory.mkdir(parents=True, exist_ok=True)
    handle = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
