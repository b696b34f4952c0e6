"""Output paths checked before any work: no output may overwrite an input or another output, nor
an existing file of another kind (bench.common.replace_rule).

    check_outputs({"--json": args.json, "--csv": args.csv},
                  kinds={"--json": RESULT_JSON, "--csv": RESULTS_CSV},
                  inputs={"checkpoint": args.checkpoint, "vocabulary": vocab_path})

Paths are compared resolved (symbolic links, `..`, hard links of existing files), so
`--json ckpt.pth.tar` or `--csv x --json ./x` is refused instead of destroying data. An output
that exists and is not a regular file is refused unless it is a character device (written
through, bench.common.atomic).
"""

import argparse
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from bench.common.atomic import writes_through
from bench.common.errors import BenchError
from bench.common.replace_rule import Kind, check_replaceable

PathLike = str | os.PathLike


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return os.path.samefile(a, b)
    except (OSError, RuntimeError):  # one does not exist yet, or is a symbolic link loop (read: refused later)
        return False


def output_name_problem(name: str) -> str | None:
    """Why `name` cannot name an output file (empty, a folder by its trailing slash, `.`), or None."""
    if not name:
        return "an empty name; give a file name"
    if name.endswith(("/", os.sep)) or Path(name).name in ("", ".", ".."):
        return "names a folder; give a file name"
    return None


def output_path(text: str) -> Path:
    """argparse type of an output flag: the check that Path() would lose (`x.json/` becomes `x.json`)."""
    problem = output_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return Path(text)


def _check_writable_place(flag: str, path: Path) -> None:
    """A directory, or a path under an existing file, cannot receive the output."""
    if path.is_dir():
        raise BenchError(f"{flag} {path}: is a directory; give a file name")
    try:
        writes_through(path)
    except BenchError as err:
        raise BenchError(f"{flag} {err}") from None
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BenchError(f"{flag} {path}: {parent} is not a directory")
            return


def _flatten(inputs: Mapping[str, PathLike | Iterable[PathLike] | None]) -> list[tuple[str, Path]]:
    named = []
    for what, value in inputs.items():
        if value is None:
            continue
        values = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        named += [(what, Path(v)) for v in values if v is not None]
    return named


def check_outputs(outputs: Mapping[str, PathLike | None], kinds: Mapping[str, Kind],
                  inputs: Mapping[str, PathLike | Iterable[PathLike] | None] | None = None) -> None:
    """Refuse outputs that are directories, coincide with each other, name any input, or would
    replace a file of another kind than `kinds` gives for their flag.

    `outputs` maps the flag that names each output ("--json") to its path (None: not asked);
    `inputs` maps what each input is ("checkpoint") to one path or several.
    """
    for flag, path in outputs.items():
        problem = None if path is None else output_name_problem(os.fspath(path))
        if problem:
            raise BenchError(f"{flag} {os.fspath(path)!r}: {problem}")
    given = [(flag, Path(path)) for flag, path in outputs.items() if path is not None]
    for index, (flag, path) in enumerate(given):
        _check_writable_place(flag, path)
        for other_flag, other in given[:index]:
            if _same_file(path, other) and not writes_through(path):  # /dev/null may take several
                raise BenchError(f"{other_flag} and {flag} both name {path}; give each output its own file")
        for what, source in _flatten(inputs or {}):
            if _same_file(path, source):
                raise BenchError(f"{flag} {path}: is an input of this run (the {what}); "
                                 "writing there would destroy it")
    for flag, path in given:
        if not writes_through(path):
            check_replaceable(path, kinds[flag], flag)
