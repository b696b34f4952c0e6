"""One item from nothing to ready: check what is present, obtain the download, verify, prepare.

Downloads land in `<root>/downloads/<file name>` (kept, so another dataset or split can be
extracted later without fetching 34 GB again); transfers in progress in
`<root>/downloads/.partial/`. A file reaches its final name only complete and verified.
"""

from dataclasses import dataclass, field
from pathlib import Path

from bench.common.atomic import move_into_place
from bench.common.errors import BenchError
from bench.data.nltk_home import nltk_home
from bench.download import verify
from bench.download.convert import npy_to_hdf5
from bench.download.fetch import FetchOptions, fetch, partial_files, sources_for
from bench.download.manifest import Manifest, directory_lock
from bench.download.prepare import check_outputs, extract_members, place_checkpoints
from bench.download.registry import Item, split_of
from bench.model.checkpoint import sha256_of


@dataclass
class Context:
    data_root: Path
    models_root: Path
    nltk_dir: Path | None = None  # None: $NLTK_DATA, else <data root>/nltk_data, where eval looks
    mirror: str | None = None
    from_path: Path | None = None
    offline: bool = False
    rehash: bool = False
    hdf5: bool = False
    fetch: FetchOptions = field(default_factory=FetchOptions)
    failed: dict[str, str] = field(default_factory=dict)  # file name -> why; tried once per run

    def root(self, item: Item) -> Path:
        if item.root == "nltk":
            return self.nltk_dir or nltk_home(self.data_root)
        return {"data": self.data_root, "models": self.models_root}[item.root]


def downloads_dir(root: Path) -> Path:
    return root / "downloads"


def status(item: Item, ctx: Context) -> str:
    """What `--list` shows; never hashes (a changed file shows as 'present, not verified')."""
    root = ctx.root(item)
    outputs = [root / out for out in item.outputs]
    if not all(path.is_file() for path in outputs):
        kept = downloads_dir(root) / item.filename
        if kept.is_file():
            return "downloaded, not prepared"
        return "partial download" if partial_files(downloads_dir(root) / ".partial" / item.filename) else "missing"
    manifest = Manifest(root)
    if not all(manifest.is_current(path) for path in outputs):
        return "present, not verified"
    try:
        check_outputs(item, root)
    except BenchError as err:
        return f"invalid: {err}"
    return "verified"


def ensure(item: Item, ctx: Context) -> str:
    """Make `item` present and verified; returns what was done. Raises BenchError otherwise."""
    root = ctx.root(item)
    manifest = Manifest(root)
    try:
        ready = is_ready(item, root, manifest, ctx)
    except BenchError as err:
        raise BenchError(f"{err} (found in place: delete it and run again to fetch it afresh)") from None
    if ready:
        outcome = "verified"
    elif ctx.offline:
        raise BenchError(f"missing or incomplete under {root} (offline: nothing fetched); "
                         f"run `python -m bench download {item.name}`")
    else:
        download, given_digest = obtain(item, root, manifest, ctx)
        if item.kind == "checkpoint":
            place_checkpoints(item, download, root, manifest, move=given_digest is None)
        else:
            extract_members(item, download, root, manifest)
        if given_digest is not None:  # --from: recorded only once everything made from it passed
            manifest.verify_or_record(download, item.name, sha256=given_digest, origin="--from")
        outcome = "prepared and verified"
    if ctx.hdf5 and item.check == "scan" and not ctx.offline:
        convert_splits(item, root)
    if item.root == "nltk" and root != nltk_home(ctx.data_root) and not verify.nltk_searches(root):
        outcome += f" (NLTK does not search {root}: export NLTK_DATA={root})"
    return outcome


def is_ready(item: Item, root: Path, manifest: Manifest, ctx: Context) -> bool:
    """Every output present, structurally sound, and matching its recorded sha256."""
    outputs = [root / out for out in item.outputs]
    if not all(path.is_file() for path in outputs):
        return False
    check_outputs(item, root)
    for path in outputs:
        if ctx.rehash or not manifest.is_current(path):
            manifest.verify_or_record(path, item.name)  # re-hash a changed file; record a new one
    return True


def obtain(item: Item, root: Path, manifest: Manifest, ctx: Context) -> tuple[Path, str | None]:
    """The checked download to prepare from, and for a `--from` file its sha256 (None: ours to move)."""
    given = from_file(item, ctx.from_path)
    if given is not None:
        check_download(item, given, full=True)
        digest = sha256_of(given)
        check_published(item, given, digest)
        return given, digest
    # `make -j download-coco download-f30k` fetch the same data.zip: one process at a time.
    with directory_lock(downloads_dir(root)):
        return _kept_or_fetched(item, root, manifest, ctx), None


def _kept_or_fetched(item: Item, root: Path, manifest: Manifest, ctx: Context) -> Path:
    kept = downloads_dir(root) / item.filename
    if kept.is_file():
        current = manifest.is_current(kept) and not ctx.rehash
        try:
            check_download(item, kept, full=not current)
        except BenchError as err:
            raise BenchError(f"{err}; delete {kept} and run again to download it afresh") from None
        if not current:
            trust(item, kept, manifest)
        return kept
    if item.filename in ctx.failed:  # scan-coco and scan-f30k share data.zip: one try per run
        raise BenchError(f"{item.filename} not downloaded (see above)")
    try:
        path, digest, origin = fetch(item, downloads_dir(root) / ".partial", sources_for(item, ctx.mirror), ctx.fetch)
    except BenchError as err:
        ctx.failed[item.filename] = str(err)
        raise
    try:
        check_download(item, path, full=True)
        check_published(item, path, digest)
    except BenchError as err:
        path.unlink()  # a corrupt or wrong file must not be resumed or trusted next time
        raise BenchError(f"{err}; deleted it: run again to download it afresh") from None
    move_into_place(path, kept)
    trust(item, kept, manifest, sha256=digest, origin=origin)
    return kept


def trust(item: Item, path: Path, manifest: Manifest, sha256: str | None = None, origin: str = "") -> None:
    """Hold the file to the registry's hash where one is published, else to the manifest's first record."""
    digest = sha256 or sha256_of(path)
    check_published(item, path, digest)
    manifest.verify_or_record(path, item.name, sha256=digest, origin=origin)


def check_published(item: Item, path: Path, digest: str) -> None:
    if item.sha256 and digest != item.sha256:
        raise BenchError(f"{path}: sha256 {digest[:12]}... is not the published {item.sha256[:12]}... of "
                         f"{item.filename}: the wrong file, or corrupt")


def from_file(item: Item, given: Path | None) -> Path | None:
    """`--from FILE` for one item, or `--from DIR` holding files under their registry names."""
    if given is None:
        return None
    if given.is_dir():
        candidate = given / item.filename
        return candidate if candidate.is_file() else None
    if not given.exists():
        raise BenchError(f"{given}: --from path does not exist")
    if not given.is_file():
        raise BenchError(f"{given}: --from path is not a regular file (a FIFO or device cannot be checked and kept)")
    return given


def check_download(item: Item, path: Path, full: bool) -> None:
    """Structure of the download itself; `full` also reads every byte (zip CRCs)."""
    verify.refuse_html(path, str(path))
    kind = verify.sniff(path)
    required = tuple(suffix for suffix, _ in item.members if suffix not in item.optional)
    if item.kind == "archive" and kind == "tar":  # NCR's data archive
        verify.check_tar(path, required, limit=item.member_limit)
    elif item.kind == "archive" or kind in ("zip", "torch"):  # a torch file is a zip: its CRCs count too
        verify.check_zip(path, required, full_crc=full, limit=item.member_limit)
    elif kind not in ("torch-legacy", "tar"):
        raise BenchError(f"{path}: neither a checkpoint nor a zip/tar archive (truncated or wrong file?)")


def convert_splits(item: Item, root: Path) -> None:
    """`{split}.h5` beside each `{split}_ims.npy` that has none yet."""
    for _, dest in item.members:
        if dest.endswith("_ims.npy"):
            target = (root / dest).parent / f"{split_of(dest)}.h5"
            if not target.is_file():
                npy_to_hdf5(root / dest, target)
