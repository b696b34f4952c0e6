"""Structural checks of downloads and of the files they yield; each failure is one clear line.

What a download is, is told by its content, never by its name: an HTML error page, a torch
checkpoint (a zip with a `<name>/data.pkl` member, or a legacy pickle), a zip or tar archive.
"""

import functools
import importlib.resources
import json
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from bench.common.errors import BenchError
from bench.common.progress import byte_progress
from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.download.convert import read_npy_header
from bench.model.checkpoint import read_checkpoint
from bench.model.layouts import strip_prefix

HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<?xml")
PICKLE_PROTOCOL_2 = b"\x80\x02"


def sniff(path: Path) -> str:
    """'html', 'torch', 'zip', 'tar', 'torch-legacy' or 'unknown', from the bytes."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.lstrip().lower().startswith(HTML_MARKERS):
        return "html"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return "unknown"
        return "torch" if any(_is_torch_pickle(name) for name in names) else "zip"
    if head.startswith(PICKLE_PROTOCOL_2):
        return "torch-legacy"
    return "tar" if _is_nonempty_tar(path) else "unknown"


def _is_nonempty_tar(path: Path) -> bool:
    """Any block of zeros is an empty tar to tarfile.is_tarfile: ask for a first member."""
    try:
        with tarfile.open(path) as archive:
            return archive.next() is not None
    except (tarfile.TarError, EOFError, OSError):
        return False


def _is_torch_pickle(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and parts[1] == "data.pkl"


def refuse_html(path: Path, origin: str) -> None:
    if sniff(path) == "html":
        raise BenchError(
            f"{origin} sent an HTML page instead of {path.name} (an error, sign-in or quota page); "
            f"fetch the file in a browser and pass it with --from PATH"
        )


def check_zip(path: Path, suffixes: tuple[str, ...] = (), full_crc: bool = True, limit: int | None = None) -> None:
    """The zip opens, holds a member ending with each suffix, no member declares more than `limit`
    bytes (nothing is read before that), and (full_crc) every CRC matches."""
    try:
        with zipfile.ZipFile(path) as archive:
            find_members(archive.namelist(), suffixes, path)
            for info in archive.infolist():
                if limit is not None and info.file_size > limit:
                    raise BenchError(f"{path}: member {info.filename} declares {info.file_size / 2**20:.0f} MiB, "
                                     f"more than any such file can be (at most {limit / 2**20:.0f}); "
                                     "not the expected archive")
            if full_crc:
                _read_every_member(archive, path)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise BenchError(f"{path}: not a complete zip archive ({err}): truncated or corrupt") from None


def check_tar(path: Path, suffixes: tuple[str, ...] = (), limit: int | None = None) -> None:
    """The tar opens and lists, holds a member ending with each suffix, and none declares more than `limit`
    (a tar has no checksums of its data: the extracted files' own checks follow)."""
    try:
        with tarfile.open(path) as archive:
            members = [m for m in archive.getmembers() if m.isfile()]
    except (tarfile.TarError, EOFError, OSError) as err:
        raise BenchError(f"{path}: not a complete tar archive ({err}): truncated or corrupt") from None
    find_members([m.name for m in members], suffixes, path)
    for member in members:
        if limit is not None and member.size > limit:
            raise BenchError(f"{path}: member {member.name} declares {member.size / 2**20:.0f} MiB, more than "
                             f"any such file can be (at most {limit / 2**20:.0f}); not the expected archive")


def _read_every_member(archive: zipfile.ZipFile, path: Path) -> None:
    """zipfile compares each member's CRC once it has read it to the end (testzip, with progress)."""
    members = [info for info in archive.infolist() if not info.is_dir()]
    with byte_progress(f"check {path.name}", sum(info.file_size for info in members)) as update:
        done = 0
        for info in members:
            try:
                with archive.open(info) as member:
                    while block := member.read(8 << 20):
                        done += len(block)
                        update(done)
            except (zipfile.BadZipFile, zlib.error) as err:
                raise BenchError(f"{path}: CRC error in member {info.filename} ({err}): "
                                 f"the archive is corrupt") from None


def find_members(names: list[str], suffixes: tuple[str, ...], archive: Path,
                 optional: tuple[str, ...] = ()) -> dict[str, str]:
    """Map each wanted suffix to the one member path that ends with it (any leading folder).

    Suffixes in `optional` may be absent (left out of the result); any other is an error.
    """
    found = {}
    for suffix in suffixes:
        hits = [n for n in names if n == suffix or n.endswith("/" + suffix)]
        if hits:
            found[suffix] = min(hits, key=len)
        elif suffix not in optional:
            raise BenchError(f"{archive}: has no member {suffix!r}; is it the right file?")
    return found


@functools.lru_cache(maxsize=1)
def packaged_schema() -> dict:
    text = importlib.resources.files("bench").joinpath("reference/checkpoint-schema.json").read_text()
    return json.loads(text)


def check_checkpoint(path: Path, dataset: str, module: str, schema: dict | None = None, layout: bool = True) -> None:
    """Safe load; `opt` names the expected dataset and module; weights are finite; with `layout`,
    keys, shapes and dtypes match the published checkpoints' schema."""
    checkpoint = read_checkpoint(path)
    found = (checkpoint.config.data_name, checkpoint.config.module_name)
    if found != (dataset, module):
        raise BenchError(f"{path}: is a {found[0]} {found[1]} checkpoint, expected {dataset} {module}")
    check_finite_weights(path, checkpoint.state_dicts)
    if layout:
        check_published_layout(path, checkpoint, dataset, module, schema)


def check_published_layout(path: Path, checkpoint, dataset: str, module: str, schema: dict | None) -> None:
    expected = (schema or packaged_schema()).get(f"{dataset}/{module}")
    if expected is None:
        raise BenchError(f"checkpoint schema has no entry {dataset}/{module}")
    for part, (state, wanted) in enumerate(zip(checkpoint.state_dicts, expected)):
        wanted = strip_prefix(wanted)
        if set(state) != set(wanted):
            odd = sorted(set(state) ^ set(wanted))
            raise BenchError(f"{path}: part {part} keys differ from the published layout ({', '.join(odd[:3])} ...)")
        for key, (shape, dtype) in wanted.items():
            got = (list(state[key].shape), str(state[key].dtype).removeprefix("torch."))
            if got != (shape, dtype):
                raise BenchError(f"{path}: {key} is {got[1]}{tuple(got[0])}, "
                                 f"the published layout has {dtype}{tuple(shape)}")


def check_finite_weights(path: Path, state_dicts) -> None:
    """Structure is not enough: a checkpoint of NaN weights has the published layout too."""
    for state in state_dicts:
        for key, tensor in state.items():
            if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
                raise BenchError(f"{path}: {key} holds NaN or infinite values; the checkpoint is unusable")


def npy_shape(path: Path) -> tuple[int, ...]:
    """The float32 array's shape from the .npy header alone (no data is read)."""
    with open(path, "rb") as handle:
        return npy_stream_shape(handle, path)


def npy_stream_shape(handle, where: str | Path) -> tuple[int, ...]:
    """The same from an open stream (a file, or a member read inside an archive)."""
    shape, _, dtype = read_npy_header(handle, where)
    if dtype != np.float32:
        raise BenchError(f"{where}: dtype {dtype}, expected float32")
    return shape


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return count_stream_lines(handle)


def count_stream_lines(handle) -> int:
    return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 22), b""))


def check_scan_split(directory: Path, split: str, feature_shape: tuple[int, int] | None, rows: int | None) -> None:
    """`{split}_ims.npy` is (rows, regions, dim) with one row per image or per caption, ids per row
    (where the ids file exists: evaluation of Flickr30K does not need it), and sampled rows are finite."""
    where = directory / f"{split}_ims.npy"
    shape = npy_shape(where)
    ids_path = directory / f"{split}_ids.txt"
    ids = count_lines(ids_path) if ids_path.is_file() else None
    check_scan_counts(str(where), shape, count_lines(directory / f"{split}_caps.txt"), ids, feature_shape, rows)
    check_feature_sample(where)


def check_scan_counts(where: str, shape: tuple[int, ...], captions: int, ids: int | None,
                      feature_shape: tuple[int, int] | None, rows: int | None) -> None:
    """The facts a split's files must agree on; cheap enough to check inside the archive first."""
    if len(shape) != 3 or (feature_shape is not None and tuple(shape[1:]) != tuple(feature_shape)):
        expected = f"{feature_shape[0]}, {feature_shape[1]}" if feature_shape else "regions, dim"
        raise BenchError(f"{where}: shape {shape}, expected (rows, {expected})")
    if captions not in (shape[0], CAPTIONS_PER_IMAGE * shape[0]):
        raise BenchError(f"{where}: {shape[0]} rows but {captions} captions; expected one row per caption or per image")
    if ids is not None and ids != shape[0]:
        raise BenchError(f"{where}: {ids} ids for {shape[0]} feature rows")
    if rows is not None and shape[0] != rows:
        raise BenchError(f"{where}: {shape[0]} rows, SCAN's release has {rows}")


SAMPLED_ROWS = 32


def check_feature_sample(path: Path) -> None:
    """Rows spread over the file must be finite: a NaN-filled file has the right shape too."""
    features = np.load(path, mmap_mode="r")
    picks = np.unique(np.linspace(0, features.shape[0] - 1, min(SAMPLED_ROWS, features.shape[0])).astype(int))
    if len(picks) and not np.isfinite(features[picks]).all():
        raise BenchError(f"{path}: holds NaN or infinite feature values (sampled rows); the file is unusable")


def check_vocab(path: Path, size: int | None) -> None:
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
        entries = len(vocab["word2idx"])
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise BenchError(f"{path}: not a SCAN vocabulary (JSON with word2idx)") from None
    if size is not None and entries != size:
        raise BenchError(f"{path}: {entries} words, SCAN's release has {size}")


def check_json_head(path: Path) -> None:
    """Annotation files are large: check that one starts like a JSON object, not more."""
    with open(path, "rb") as handle:
        if not handle.read(64).lstrip().startswith(b"{"):
            raise BenchError(f"{path}: not a JSON object")


def check_punkt(nltk_dir: Path) -> None:
    """NLTK's own loader reads `<nltk_dir>/tokenizers/punkt_tab/english`.

    NLTK refuses to read outside its search path, so the folder joins `nltk.data.path` for the
    check; if it is not there by default, word_tokenize will only find it through $NLTK_DATA.
    """
    import nltk.data
    from nltk.tokenize.punkt import load_punkt_params

    added = str(nltk_dir.resolve()) not in nltk.data.path
    if added:
        nltk.data.path.append(str(nltk_dir.resolve()))
    try:
        load_punkt_params(nltk.data.FileSystemPathPointer(str(nltk_dir / "tokenizers/punkt_tab/english")))
    except (OSError, ValueError, LookupError, UnicodeDecodeError) as err:
        raise BenchError(f"{nltk_dir}: no usable punkt_tab model ({err})") from None
    finally:
        if added:
            nltk.data.path.remove(str(nltk_dir.resolve()))


def nltk_searches(nltk_dir: Path) -> bool:
    """Whether NLTK looks in `nltk_dir` without help (else the user must set $NLTK_DATA)."""
    import nltk.data

    return any(Path(p).resolve() == nltk_dir.resolve() for p in nltk.data.path)
