"""Which existing files an output may replace: only one of the kind its writer writes.

Every writer names the kind it writes (bench.common.atomic takes it with each output):

    write_text(path, csv, kind=Kind.text("order CSV", csv))      # replaces a CSV of the same columns only

A file already at the output's place is replaced only when the kind recognises it (a CSV with the
same columns, a Markdown file with the same title, a PNG, the same run's own files); a checkpoint,
a score matrix, features, captions, a vocabulary, another run's files or anything unrecognised is
refused with one line naming it and what it is. `--overwrite` (Python: `with replacing_anything():`)
replaces it on purpose; inputs of the run are never replaced, whatever the flag.

An output that is a symbolic link is written through to its target, as a shell's `>` does: the
link stays, the target receives the bytes, and the rule applies to the target.
"""

import contextlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common.errors import BenchError

OVERWRITE_FLAG = "--overwrite"
_SNIFF_BYTES = 4096
_JSON_LIMIT = 64 << 20  # a JSON output of ours is far smaller; a bigger file is not one
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\x93NUMPY", "a NumPy array (a score matrix or features)"),
          (b"\x89HDF\r\n\x1a\n", "an HDF5 file (features)"))
_ALLOWED: list[bool] = []  # non-empty inside replacing_anything()


@contextlib.contextmanager
def replacing_anything() -> Iterator[None]:
    """Inside the block any existing file (not an input) may be replaced: `--overwrite`."""
    _ALLOWED.append(True)
    try:
        yield
    finally:
        _ALLOWED.pop()


def _head(path: Path) -> bytes:
    """The file's first bytes; nothing from a device or FIFO (/dev/zero never ends, a FIFO blocks)."""
    try:
        if not path.is_file():
            return b""
        with open(path, "rb") as handle:
            return handle.read(_SNIFF_BYTES)
    except OSError:
        return b""


def first_line(path: Path) -> str:
    """The file's first line without its line end or a byte-order mark ('' if unreadable)."""
    return _head(path).split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace").lstrip("\ufeff")


def json_object(path: Path) -> dict | None:
    """The JSON object `path` holds, or None (not JSON, not an object, unreadable, too big)."""
    try:
        if not path.is_file() or path.stat().st_size > _JSON_LIMIT:
            return None
        with path.open(encoding="utf-8") as handle:
            document = json.loads(handle.read(_JSON_LIMIT + 1))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def is_result_json(path: Path) -> bool:
    document = json_object(path)
    return document is not None and "protocol" in document and "metrics" in document


def _zip_names(path: Path) -> list[str]:
    try:
        if not path.is_file():
            return []
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return []


def is_checkpoint(path: Path) -> bool:
    """A torch.save file: a zip with a data.pkl member (or the legacy pickle format)."""
    head = _head(path)
    return head.startswith(b"\x80\x02\x8a\x0a") or any(n.endswith("/data.pkl") for n in _zip_names(path))


def describe(path: Path) -> str:
    """What an existing file is, in a few words, for the refusal's line."""
    head = _head(path)
    for magic, words in _MAGIC:
        if head.startswith(magic):
            return words
    name = path.name
    if is_checkpoint(path):
        return "a checkpoint"
    if name.endswith(".queries.npz"):
        return "the per-query file of a run"
    if name.endswith("_caps.txt"):
        return "a caption file"
    if name.endswith("_ids.txt"):
        return "an image id file"
    if path.suffix == ".json":
        document = json_object(path)
        if document is not None and "protocol" in document:
            return "the result JSON of a run"
        if document and all(isinstance(v, int) for v in document.values()):
            return "a vocabulary"
    line = first_line(path)
    if path.suffix == ".csv" and line:
        return f"a CSV with other columns ({line[:60]}{'...' if len(line) > 60 else ''})"
    return "a file of another kind" if head else "an empty or unreadable file"


@dataclass(frozen=True)
class Kind:
    """What a writer writes: `name` for messages, `recognises` tells an existing file it may replace."""

    name: str
    recognises: Callable[[Path], bool]

    @classmethod
    def text(cls, name: str, text: str) -> "Kind":
        """A text output (CSV, Markdown): replaces a file whose first line is the same (columns, title)."""
        line = text.split("\n", 1)[0].rstrip("\r")
        return cls(name, lambda path: bool(line) and first_line(path) == line)

    @classmethod
    def json_with(cls, name: str, keys: tuple[str, ...]) -> "Kind":
        """A JSON object output: replaces a JSON object holding the same top-level `keys`."""
        return cls(name, lambda path: (document := json_object(path)) is not None and set(keys) <= set(document))


PNG = Kind("a PNG image", lambda path: _head(path).startswith(_MAGIC[0][0]))
CHECKPOINT = Kind("a checkpoint", is_checkpoint)
RESULT_JSON = Kind("the result JSON of a run", is_result_json)
DOWNLOAD = Kind("a file of this download", lambda path: True)  # its own place in the data tree, by the registry


def write_target(final: str | os.PathLike) -> Path:
    """Where bytes for `final` land: the file a symbolic link points to (through every link), else `final`."""
    final = Path(final)
    return Path(os.path.realpath(final)) if final.is_symlink() else final


def check_replaceable(final: str | os.PathLike, kind: Kind, label: str | None = None) -> None:
    """Refuse (BenchError) when an existing regular file at `final` (or its link's target) is not of
    `kind`; `label` is the flag or parameter that named the output."""
    target = write_target(final)
    if _ALLOWED or not target.is_file() or kind.recognises(target):
        return
    where = f"{label} {final}" if label else f"{final}"
    if target != Path(final):
        where += f" (a link to {target})"
    raise BenchError(f"{where}: is {describe(target)}, not {kind.name}; refusing to replace it "
                     f"(give another name, or {OVERWRITE_FLAG} to replace it on purpose)")
