"""Atomic file writes: a result, checkpoint or download appears under its final name only when complete.

Work in progress lives beside the final file in a temporary that names its host and process
(bench.common.temporaries), so one left by a killed run is recognisable and swept by the next
write into the folder; each is synced before its rename and the folder after it. Temporaries are
created with the umask's permissions (not mkstemp's 0600), so a renamed result is as readable as
any file the user writes.

Each output names the kind it writes (bench.common.replace_rule): an existing file of another kind
is refused, and an output that is a symbolic link is written through to its target.

An output that already exists and is a character device (`--csv /dev/null`) is written through,
never replaced by a regular file; a FIFO, socket or block device is refused (writing to a FIFO
blocks without a reader, and the others are never results).
"""

import contextlib
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from bench.common.errors import BenchError
from bench.common.replace_rule import Kind, check_replaceable, write_target
from bench.common.temporaries import (  # noqa: F401  (PARTIAL_MARK, STALE_SECONDS, host_id: the names users see)
    _HOST,
    PARTIAL_MARK,
    STALE_SECONDS,
    durable_replace,
    host_id,
    partial_name,
    sweep_partials,
)

_DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM}

COMMITTED: list[Path] = []  # every final file this process wrote, in order (the CLI's interrupt line names them)


def writes_through(final: str | os.PathLike) -> bool:
    """Whether `final` is an existing character device, which receives the bytes instead of being
    replaced; other existing non-regular files are refused (BenchError naming the file)."""
    try:
        mode = os.stat(final).st_mode
    except FileNotFoundError:
        return False
    except OSError as err:  # a symlink loop, a path under a file: the caller's error line names it
        raise BenchError(f"{final}: cannot be written ({err.strerror or err})") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):  # a directory is refused by check_outputs with its flag
        return False
    if stat.S_ISCHR(mode):
        return True
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a block device"
    raise BenchError(f"{final}: is {kind}, not a regular file; give a file name")


def _temporary_name(final: Path, suffix: str) -> Path:
    return final.parent / partial_name(final.name, suffix)


def _new_temporary(final: Path, suffix: str) -> Path:
    """Create an empty temporary beside `final`; os.open applies the umask to 0666."""
    while True:
        tmp = _temporary_name(final, suffix)
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def _prepare(final: Path, suffix: str | None) -> Path:
    suffix = final.suffix if suffix is None else suffix
    if writes_through(final):  # nothing may be created beside a device (/dev): stage it in the temp folder
        handle, name = tempfile.mkstemp(prefix=f".{final.name}{PARTIAL_MARK}{_HOST}-{os.getpid()}-", suffix=suffix)
        os.close(handle)
        return Path(name)
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_partials(final)
    return _new_temporary(final, suffix)


def _backup(final: Path) -> Path | None:
    """A hard link to the file `final` replaces, so a failed commit can put it back (None: none there)."""
    if not final.is_file() or final.is_symlink():
        return None
    while True:
        backup = _temporary_name(final, ".backup")
        try:
            os.link(final, backup)
            return backup
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: a copy does the same job
            shutil.copy2(final, backup)
            return backup



def _put_in_place(tmp: Path, final: Path) -> None:
    if writes_through(final):
        with open(tmp, "rb") as source, open(final, "wb") as sink:
            shutil.copyfileobj(source, sink)
    else:
        durable_replace(tmp, final)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM received inside the block take effect when it ends (main thread only:
    elsewhere Python delivers no signal anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda number, frame: received.append(number))
                for signum in _DEFERRED_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(received):
            if callable(previous[signum]):
                previous[signum](signum, None)
            elif previous[signum] == signal.SIG_DFL:
                signal.raise_signal(signum)


def _commit(pairs: list[tuple[Path, Path]]) -> None:
    """Rename every temporary into place, or none: a rename that fails puts back the files
    already replaced."""
    backups: list[Path] = []
    done: list[tuple[Path, Path | None]] = []
    try:
        for tmp, final in pairs:
            backup = _backup(final)
            backups += [backup] if backup else []
            with _naming(final):  # /dev/full: ENOSPC names the output
                _put_in_place(tmp, final)
            done.append((final, backup))
        COMMITTED.extend(final for _, final in pairs)
    except BaseException:
        for final, backup in done:
            if backup is not None:
                os.replace(backup, final)
            elif not writes_through(final):
                final.unlink(missing_ok=True)
        raise
    finally:
        for backup in backups:
            backup.unlink(missing_ok=True)


def _target(final: str | os.PathLike | None, kind: Kind) -> Path | None:
    """Where the output's bytes go (a link's target), once the replace rule allows it."""
    if final is None:
        return None
    if writes_through(final):
        return Path(final)
    check_replaceable(final, kind)
    return write_target(final)


@contextlib.contextmanager
def atomic_paths(finals: Sequence[str | os.PathLike | None], kinds: Sequence[Kind],
                 suffixes: Sequence[str | None] | None = None) -> Iterator[list[Path | None]]:
    """Temporaries for several outputs; all are renamed into place only if the block succeeds.

    A None in `finals` yields None (an output not asked for). `kinds` says what each output is: an
    existing file of another kind is refused before anything is written. On any failure every
    temporary is removed and no final file is touched. Each temporary keeps its final name's suffix
    (or the one `suffixes` gives), so writers that choose a format by suffix (matplotlib, h5py)
    behave the same.
    """
    suffixes = list(suffixes) if suffixes is not None else [None] * len(finals)
    targets = [_target(final, kind) for final, kind in zip(finals, kinds, strict=True)]
    temporaries: list[Path | None] = []
    try:
        for final, suffix in zip(targets, suffixes):
            temporaries.append(None if final is None else _prepare(final, suffix))
        yield list(temporaries)
        with _signals_deferred():
            _commit([(tmp, final) for final, tmp in zip(targets, temporaries) if tmp is not None])
    finally:
        for tmp in temporaries:
            if tmp is not None and tmp.exists():
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, kind: Kind, suffix: str | None = None) -> Iterator[Path]:
    """One temporary beside `final` (suffix: the final name's unless given), renamed into place
    only if the block succeeds; `kind` is what the output is (bench.common.replace_rule)."""
    with atomic_paths([final], [kind], [suffix]) as (tmp,), _naming(final):
        yield tmp


@contextlib.contextmanager
def _naming(final: str | os.PathLike) -> Iterator[None]:
    """An OSError without a file name (a full disk on write) names the output it was writing."""
    try:
        yield
    except OSError as err:
        if err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror, os.fspath(final)) from None
        raise


def umask_mode() -> int:
    """The permissions a new file gets here: 0666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def move_into_place(source: str | os.PathLike, final: str | os.PathLike) -> None:
    """Rename a finished file (a download another tool wrote with mkstemp's 0600) into place
    with the umask's permissions, like every file written here, durably."""
    os.chmod(source, umask_mode())
    durable_replace(source, final)


def write_all(writers: Mapping[str | os.PathLike | None, tuple[Kind, Callable[[Path], object]]]) -> None:
    """Call each writer with a temporary for its output; rename them all only if every one succeeded.

        write_all({args.json: (RESULT_JSON, to_json), args.csv: (Kind.text("results CSV", csv), to_csv)})

    A None key is an output not asked for, and its writer is not called.
    """
    wanted = [(final, kind, writer) for final, (kind, writer) in writers.items() if final is not None]
    with atomic_paths([final for final, _, _ in wanted], [kind for _, kind, _ in wanted]) as temporaries:
        for (final, _, writer), tmp in zip(wanted, temporaries):
            with _naming(final):
                writer(tmp)


def write_text(final: str | os.PathLike, text: str, kind: Kind | None = None) -> None:
    """Write `text` atomically; `kind` defaults to a text file with the same first line (CSV columns)."""
    with atomic_path(final, kind or Kind.text("a text file with the same first line (CSV: columns)", text)) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(final: str | os.PathLike, obj, kind: Kind) -> None:
    write_text(final, json.dumps(obj, indent=2, sort_keys=False) + "\n", kind)
