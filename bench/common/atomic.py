"""Atomic file writes: a result, checkpoint or download appears under its final name only when complete.

Work in progress lives beside the final file as `.<name>.partial-<pid>-<random><suffix>`, so a
temporary left by a killed run is recognisable; the next write of the same file removes those
whose process is gone. Temporaries are created with the umask's permissions (not mkstemp's 0600),
so a renamed result is as readable as any file the user writes.
"""

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

PARTIAL_MARK = ".partial-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _partial_pid(path: Path, final_name: str) -> int | None:
    """The writer's pid encoded in a temporary of `final_name`, or None if `path` is not one."""
    prefix = f".{final_name}{PARTIAL_MARK}"
    if not path.name.startswith(prefix):
        return None
    pid = path.name[len(prefix):].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def sweep_partials(final: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of `final` left by processes that no longer run; returns them."""
    final = Path(final)
    removed = []
    if not final.parent.is_dir():
        return removed
    for candidate in final.parent.glob(f".{final.name}{PARTIAL_MARK}*"):
        pid = _partial_pid(candidate, final.name)
        if pid is not None and pid != os.getpid() and not _process_alive(pid) and candidate.is_file():
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def _new_temporary(final: Path, suffix: str) -> Path:
    """Create an empty temporary beside `final`; os.open applies the umask to 0666."""
    while True:
        tmp = final.parent / f".{final.name}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def _prepare(final: Path, suffix: str | None) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_partials(final)
    return _new_temporary(final, final.suffix if suffix is None else suffix)


@contextlib.contextmanager
def atomic_paths(finals: Sequence[str | os.PathLike | None]) -> Iterator[list[Path | None]]:
    """Temporaries for several outputs; all are renamed into place only if the block succeeds.

    A None in `finals` yields None (an output not asked for). On any failure every temporary
    is removed and no final file is touched. Each temporary keeps its final name's suffix,
    so writers that choose a format by suffix (numpy, matplotlib, h5py) behave the same.
    """
    temporaries: list[Path | None] = []
    try:
        for final in finals:
            temporaries.append(None if final is None else _prepare(Path(final), None))
        yield list(temporaries)
        for final, tmp in zip(finals, temporaries):
            if tmp is not None:
                os.replace(tmp, final)
    finally:
        for tmp in temporaries:
            if tmp is not None and tmp.exists():
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """One temporary beside `final` (suffix: the final name's unless given), renamed into place
    only if the block succeeds."""
    tmp = _prepare(Path(final), suffix)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def umask_mode() -> int:
    """The permissions a new file gets here: 0666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def move_into_place(source: str | os.PathLike, final: str | os.PathLike) -> None:
    """Rename a finished file (a download another tool wrote with mkstemp's 0600) into place
    with the umask's permissions, like every file written here."""
    os.chmod(source, umask_mode())
    os.replace(source, final)


def write_all(writers: Mapping[str | os.PathLike | None, Callable[[Path], object]]) -> None:
    """Call each writer with a temporary for its output; rename them all only if every one succeeded.

        write_all({args.save_sims: save_sims, args.json: to_json, args.csv: to_csv})

    A None key is an output not asked for, and its writer is not called.
    """
    wanted = [(final, writer) for final, writer in writers.items() if final is not None]
    with atomic_paths([final for final, _ in wanted]) as temporaries:
        for (_, writer), tmp in zip(wanted, temporaries):
            writer(tmp)


def write_text(final: str | os.PathLike, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(final: str | os.PathLike, obj) -> None:
    write_text(final, json.dumps(obj, indent=2, sort_keys=False) + "\n")
