"""Fetch one item's file: sources in order, resumable, retried with back-off, never half-visible.

gdown does the transfer for Google Drive ids and plain http(s) URLs alike: it keeps the bytes
received so far in `<staging>/<name>XXXXXXXX.part`, resumes them with a Range request, retries
transient failures with randomised exponential back-off, and renames the part file to
`<staging>/<name>` only when the transfer is complete. The caller verifies that file before
it moves anywhere a reader would look. Sources are mirrors of one file, so a part file left
by one source is resumed from the next; the checks after the transfer catch any mismatch.

Failures that retrying cannot heal end a source at once: a host name that does not resolve
or a port where nothing listens (checked before gdown starts, and remembered for the run, so
an offline machine fails every item in seconds), and HTTP 403/404. Each failure is one
short reason; the caller prints one line per item.
"""

import hashlib
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.common.errors import BenchError
from bench.common.progress import byte_progress
from bench.download.registry import Item, Source
from bench.download.verify import sniff
from bench.model.checkpoint import sha256_of

DISK_MARGIN = 256 << 20
DRIVE_HOST = ("drive.google.com", 443)
_unreachable: dict[tuple[str, int], str] = {}  # (host, port) -> why, for the rest of the run


@dataclass(frozen=True)
class FetchOptions:
    retries: int = 5
    timeout: tuple[float, float] = (30.0, 120.0)  # (connect, between bytes), seconds


def sources_for(item: Item, mirror: str | None) -> tuple[Source, ...]:
    """`--mirror URL` (or BENCH_MIRROR) replaces every public source by `<URL>/<file name>`."""
    if mirror:
        return (Source("url", f"{mirror.rstrip('/')}/{item.filename}"),)
    return item.sources


def partial_files(target: Path) -> list[Path]:
    """gdown's part files for `target` (name + 8 random characters + .part)."""
    if not target.parent.is_dir():
        return []
    return [p for p in target.parent.iterdir()
            if p.name.startswith(target.name) and p.name.endswith(".part")
            and len(p.name) == len(target.name) + 8 + len(".part")]


def check_disk_space(directory: Path, needed: int, what: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if needed > 0 and free < needed + DISK_MARGIN:
        raise BenchError(f"{what} needs about {needed / 2**30:.1f} GiB free in {directory}, "
                         f"only {free / 2**30:.1f} GiB left; free some space or choose another root")


def fetch(item: Item, staging: Path, sources: tuple[Source, ...], options: FetchOptions) -> tuple[Path, str, str]:
    """Download into `staging/<filename>`; return (path, sha256, origin). Tries sources in order."""
    target = staging / item.filename
    resumed = sum(p.stat().st_size for p in partial_files(target))
    if not target.is_file():  # an unknown size (the registry's bound) is not held against the free space
        check_disk_space(staging, item.approx_bytes - resumed if item.size_known else 0, f"downloading {item.filename}")
    failures = []
    for source in sources:
        try:
            reachable(source, options.timeout[0])
            digest = _fetch_from(source, target, item.filename, options)
        except BenchError as err:
            failures.append(str(err))
            continue
        if sniff(target) == "html":
            target.unlink()
            failures.append(f"{host_of(source)[0]} sent an HTML page (error, sign-in or quota page), not the file")
            continue
        return target, digest, source.describe()
    raise BenchError(f"{item.filename} not downloaded: {'; '.join(dict.fromkeys(failures))}")


def host_of(source: Source) -> tuple[str, int]:
    if source.kind != "url":
        return DRIVE_HOST
    parts = urlsplit(source.ref)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def reachable(source: Source, connect_timeout: float) -> None:
    """Fail at once, and for the rest of the run, where a host does not resolve or refuses connections."""
    host, port = host_of(source)
    if (host, port) not in _unreachable:
        try:
            socket.create_connection((host, port), timeout=connect_timeout).close()
        except socket.gaierror:
            _unreachable[host, port] = f"{host}: name does not resolve (offline?)"
        except OSError as err:
            _unreachable[host, port] = f"{host}:{port}: {err.strerror or type(err).__name__}"
        else:
            return
    raise BenchError(_unreachable[host, port])


class _RangeIgnored(Exception):
    """The server answered a resume with the whole file (200, not 206): the part file is useless."""


def _fetch_from(source: Source, target: Path, filename: str, options: FetchOptions) -> str:
    """One source; a part file is resumed only where the server honours Range (206), else the
    transfer restarts from zero (like `python -m http.server`, many servers ignore Range)."""
    for _ in range(2):  # the second time from zero; should that break off too, keep nothing
        try:
            return _transfer(source, target, filename, options)
        except _RangeIgnored:
            for part in partial_files(target):
                part.unlink()
    raise BenchError(f"{host_of(source)[0]}: transfer interrupted, and the server cannot resume it "
                     "(it ignores Range requests); run the same command again")


def _transfer(source: Source, target: Path, filename: str, options: FetchOptions) -> str:
    """One transfer; returns the sha256 of the complete file, fed as the bytes arrive."""
    import gdown  # here, not at the top: evaluation and `make gpu-check` run without gdown installed

    hasher = hashlib.sha256()
    already_complete = target.is_file()
    where = {"id": source.ref} if source.kind == "drive" else {"url": source.ref}
    try:
        if source.kind == "drive-folder":
            where = {"id": _file_in_folder(source.ref, filename)}
        with byte_progress(f"{filename}", None) as update:
            gdown.download(**where, output=str(target), quiet=True, resume=True, retries=options.retries,
                           timeout=options.timeout, hasher=hasher, progress=update)
    except gdown.exceptions.FileURLRetrievalError:
        raise BenchError(f"Google Drive refused (quota or not shared): open {source.describe()} in a browser, "
                         f"save the file and pass it with --from PATH") from None
    except gdown.exceptions.DownloadError as err:
        if "requested byte range" in str(err):  # gdown's words for a resume answered without 206
            raise _RangeIgnored() from None
        kept = "; the bytes received are kept: run the same command again to resume" if partial_files(target) else ""
        raise BenchError(f"{host_of(source)[0]}: transfer interrupted ({options.retries} retries){kept}") from None
    except requests.HTTPError as err:
        status = err.response.status_code if err.response is not None else "error"
        raise BenchError(f"{host_of(source)[0]}: HTTP {status}") from None
    except requests.RequestException as err:
        raise BenchError(f"{host_of(source)[0]}: {type(err).__name__}") from None
    # gdown skips a finished transfer left by an earlier run: hash that one ourselves.
    return sha256_of(target) if already_complete else hasher.hexdigest()


def _file_in_folder(folder_id: str, filename: str) -> str:
    """The Drive id of `filename` inside a shared folder (listing only, nothing downloaded)."""
    import gdown

    listing = gdown.download_folder(id=folder_id, skip_download=True, quiet=True) or []
    for entry in listing:
        if Path(entry.path).name == filename:
            return entry.id
    raise BenchError(f"the Drive folder lists no {filename}")
