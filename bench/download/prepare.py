"""Turn a verified download into the layout the rest of daa-bench reads (docs/data.md).

Only what was asked is extracted (one dataset, one split); checkpoints are found inside an
archive by what their `opt` says, not by their file names, which the releases do not document.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.common.atomic import move_into_place
from bench.common.errors import BenchError
from bench.download import verify
from bench.download.archive import Archive, copy_file
from bench.download.fetch import check_disk_space
from bench.download.manifest import Manifest, remove_quietly
from bench.download.registry import Item, release_sizes_checked, split_of
from bench.model.checkpoint import read_checkpoint, sha256_of

CHECKPOINT_SUFFIXES = (".pth.tar", ".pth", ".pt", ".tar", ".ckpt")


def check_outputs(item: Item, root: Path) -> None:
    """The structural check of everything `item` yields; cheap enough to run every time."""
    sized = release_sizes_checked()
    if item.kind == "checkpoint":
        for output, dataset, module in item.checkpoints:
            verify.check_checkpoint(root / output, dataset, module, layout=sized and item.published_layout)
    elif item.check == "scan":
        feature_shape, rows = scan_expectations(item)
        for directory, split in sorted({(Path(d).parent, split_of(d)) for _, d in item.members}):
            verify.check_scan_split(root / directory, split, feature_shape, rows.get(split))
    elif item.check == "vocab":
        sizes = dict(item.vocab_sizes) if sized else {}
        for _, dest in item.members:
            verify.check_vocab(root / dest, sizes.get(dest))
    elif item.check == "json":
        for _, dest in item.members:
            verify.check_json_head(root / dest)
    elif item.check == "punkt":
        verify.check_punkt(root)


def scan_expectations(item: Item) -> tuple[tuple[int, int] | None, dict[str, int]]:
    """(feature shape, rows per split) the released files have; neither is held to stand-in data."""
    if not release_sizes_checked():
        return None, {}
    return item.feature_shape, dict(item.expected_rows)


def extract_members(item: Item, archive_path: Path, root: Path, manifest: Manifest) -> None:
    """Extract the item's members (CRC-checked) and check them; on failure none of them remain.

    The archive itself is never removed here: it may be 34 GB that cannot be fetched again.
    Cheap facts (row counts in the .npy headers, caption and id counts) are checked inside the
    archive first, so a wrong archive is refused before anything is written.
    """
    with Archive(archive_path) as archive:
        found = verify.find_members(archive.names(), tuple(s for s, _ in item.members), archive_path, item.optional)
        todo = [(found[suffix], root / dest) for suffix, dest in item.members if suffix in found]
        for name, _ in todo:
            archive.check_size(name, item.member_limit, archive.size(name))
        if item.check == "scan":
            precheck_scan(item, archive, found)
        check_disk_space(root, sum(archive.size(name) for name, _ in todo), f"extracting {item.name}")
        written = []
        try:
            for name, dest in todo:
                digest = archive.extract(name, dest, item.member_limit)
                written.append(dest)
                manifest.record(dest, item.name, digest, origin=f"{archive_path.name}:{name}")
            check_outputs(item, root)
        except BenchError as err:
            _remove(written, manifest)
            raise BenchError(f"{err} (extracted files removed; {archive_path} is kept)") from None
        except BaseException:
            _remove(written, manifest)
            raise


def _remove(written: list[Path], manifest: Manifest) -> None:
    for dest in written:
        remove_quietly(dest)
        manifest.forget(dest)


def precheck_scan(item: Item, archive: Archive, found: dict[str, str]) -> None:
    """Each split's shape (from the .npy header), caption and id counts, read inside the archive."""
    feature_shape, rows = scan_expectations(item)
    by_split: dict[tuple[str, str], dict[str, str]] = {}
    for suffix, dest in item.members:
        if suffix in found:
            part = dest.rsplit("_", 1)[1]
            by_split.setdefault((str(Path(dest).parent), split_of(dest)), {})[part] = found[suffix]
    for (_, split), parts in sorted(by_split.items()):
        member = parts["ims.npy"]
        where = f"{archive.path}: member {member}"
        with archive.open(member) as handle:
            shape = verify.npy_stream_shape(handle, where)
        captions = _count_member_lines(archive, parts["caps.txt"])
        ids = _count_member_lines(archive, parts["ids.txt"]) if "ids.txt" in parts else None
        verify.check_scan_counts(where, shape, captions, ids, feature_shape, rows.get(split))


def _count_member_lines(archive: Archive, name: str) -> int:
    with archive.open(name) as handle:
        return verify.count_stream_lines(handle)


@dataclass
class Candidate:
    path: Path
    member: str
    dataset: str
    module: str
    best_rsum: float


def place_checkpoints(item: Item, download: Path, root: Path, manifest: Manifest, *, move: bool) -> None:
    """Find each wanted (dataset, module) checkpoint in a checked `download`; verify; put in place."""
    kind = verify.sniff(download)
    with tempfile.TemporaryDirectory(dir=_staging(root)) as scratch:
        if kind in ("torch", "torch-legacy"):
            candidates = [_candidate(download, download.name, strict=True)]
        elif kind in ("zip", "tar"):
            candidates = _unpack_candidates(download, Path(scratch), item.member_limit)
        else:
            raise BenchError(f"{download}: neither a checkpoint nor a zip/tar archive; unpack it by hand "
                             f"and pass the .pth.tar with --from PATH")
        for output, dataset, module in item.checkpoints:
            chosen = _choose(candidates, dataset, module, download)
            verify.check_checkpoint(chosen.path, dataset, module,
                                    layout=release_sizes_checked() and item.published_layout)
            dest = root / output
            dest.parent.mkdir(parents=True, exist_ok=True)  # the family's go to family/<method>/
            if move and chosen.path == download:
                move_into_place(download, dest)
            else:
                copy_file(chosen.path, dest)
            manifest.record(dest, item.name, sha256_of(dest), origin=f"{download.name}:{chosen.member}")


def _staging(root: Path) -> Path:
    path = root / "downloads" / ".partial"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _candidate(path: Path, member: str, strict: bool = False) -> Candidate | None:
    try:
        ckpt = read_checkpoint(path)
    except BenchError:
        if strict:
            raise
        return None  # in an archive: logs, optimizer states, anything not a published-layout checkpoint
    return Candidate(path, member, ckpt.config.data_name, ckpt.config.module_name, ckpt.best_rsum)


def _unpack_candidates(download: Path, scratch: Path, limit: int) -> list[Candidate]:
    candidates = []
    with Archive(download) as archive:
        for index, name in enumerate(archive.names()):
            if name.lower().endswith(CHECKPOINT_SUFFIXES):
                candidates.append(_candidate_from(archive, name, scratch / f"{index}.pth.tar", limit))
    return [c for c in candidates if c is not None]


def _candidate_from(archive: Archive, name: str, dest: Path, limit: int) -> Candidate | None:
    archive.extract(name, dest, limit)
    return _candidate(dest, name)


def _choose(candidates: list[Candidate], dataset: str, module: str, download: Path) -> Candidate:
    """Prefer `model_best*` (what SGRAF/DAA save as the selected model), else the highest best_rsum."""
    matches = [c for c in candidates if (c.dataset, c.module) == (dataset, module)]
    if not matches:
        seen = ", ".join(f"{c.member} ({c.dataset} {c.module})" for c in candidates) or "none"
        raise BenchError(f"{download}: holds no {dataset} {module} checkpoint (checkpoints found: {seen})")
    return max(matches, key=lambda c: (Path(c.member).name.startswith("model_best"), c.best_rsum))
