"""`python -m bench download`: fetch, verify and prepare data and checkpoints.

    python -m bench download --group coco            # COCO features, vocab, annotations, punkt_tab
    python -m bench download daa-coco-sgr --from ~/Downloads/model.pth.tar
    python -m bench download --group all --for eval  # only what evaluation reads (make download)
    python -m bench download --list                  # each file: size, addresses, state of its items
    python -m bench download --family cream          # a family method's Google Drive folder (docs/family.md)
"""

import argparse
import os
import textwrap
from pathlib import Path

from bench.common.errors import BenchError
from bench.download import registry
from bench.download.family_drive import DRIVE_FOLDERS, drive_methods, fetch_drive_folder, present_checkpoints
from bench.family.releases import METHODS


def register(subparsers) -> None:
    parser = subparsers.add_parser("download", help="fetch, verify and prepare data and checkpoints",
                                   description=__doc__)
    parser.add_argument("items", nargs="*", metavar="ITEM", help="item names (see --list); default: everything")
    parser.add_argument("--group", choices=(*registry.GROUPS, "all"), help="a group of items")
    parser.add_argument("--family", choices=(*METHODS, "all"),
                        help="the SGRAF family's releases of one method, or all (docs/family.md)")
    parser.add_argument("--for", dest="purpose", choices=registry.PURPOSES, default="all",
                        help="eval: only what evaluation reads (test splits, vocabularies, checkpoints, "
                             "annotations); train: train and dev splits, vocabularies; all: everything")
    parser.add_argument("--list", action="store_true",
                        help="show each file to fetch: size, source addresses, and whether its items are ready")
    parser.add_argument("--offline", action="store_true", help="fetch nothing: only check what is present")
    parser.add_argument("--from", dest="from_path", type=Path, metavar="PATH",
                        help="a file fetched by hand (one item), or a folder of such files under their registry "
                             "names (--list); items not found there are fetched as usual")
    parser.add_argument("--mirror", default=os.environ.get("BENCH_MIRROR") or None, metavar="URL",
                        help="fetch every item from <URL>/<file name> instead (default: $BENCH_MIRROR)")
    parser.add_argument("--split", action="append", dest="splits", metavar="SPLIT",
                        help="extract only this SCAN split (repeatable), e.g. --split testall")
    parser.add_argument("--hdf5", action="store_true", help="also convert each {split}_ims.npy to {split}.h5")
    parser.add_argument("--rehash", action="store_true", help="re-hash every file, even unchanged ones")
    parser.add_argument("--retries", type=int, default=5, help="retries per source on network errors")
    parser.add_argument("--data-root", type=Path, default=Path("data"), help="where features, vocab and annotations go")
    parser.add_argument("--models-root", type=Path, default=Path("models"), help="where released checkpoints go")
    parser.add_argument("--nltk-dir", type=Path, default=None,
                        help="where punkt_tab goes (default: $NLTK_DATA, else <data root>/nltk_data, "
                             "where eval and train look)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.common.progress import console
    from bench.common.terminal import shown
    from bench.download.fetch import FetchOptions
    from bench.download.pipeline import Context, ensure, status

    if args.mirror and not check_mirror(args.mirror):
        raise BenchError(f"--mirror {args.mirror}: not an http:// or https:// address with a host; for files on "
                         "this machine use --from DIR")
    if args.family and args.from_path is not None and args.family not in ("ncr", "all"):
        from bench.download.family_import import import_folder

        for line in import_folder(args.family, args.from_path, args.models_root):
            print(line)
        return 0
    if args.family in DRIVE_FOLDERS and not args.list and not args.items:
        for line in fetch_drive_folder(args.family, args.models_root, args.offline):
            print(line)
        return 0
    items = family_selection(args) if args.family else registry.select(args.items, args.group)
    items = registry.with_splits(registry.for_purpose(items, args.purpose), args.splits)
    if args.from_path is not None and args.from_path.is_file() and len(items) != 1:
        raise BenchError(f"--from {args.from_path} is one file: name the one item it is (see --list)")
    ctx = Context(data_root=args.data_root, models_root=args.models_root,
                  nltk_dir=args.nltk_dir, mirror=args.mirror,
                  from_path=args.from_path, offline=args.offline, rehash=args.rehash, hdf5=args.hdf5,
                  fetch=FetchOptions(retries=args.retries))
    if args.list:
        if args.family:
            show_by_hand(args.family, args.models_root)
        elif not (args.items or args.group):
            print("the SGRAF family's releases (NCR, CREAM, SPS, L2RM, BiCro): download --list --family all")
        show(items, {item.name: status(item, ctx) for item in items}, args.mirror)
        return 0
    failed = []
    for item in items:
        try:
            console.print(f"{item.name}: {ensure(item, ctx)}", highlight=False)
        except BenchError as err:
            console.print(f"[red]{item.name}: {shown(str(err))}[/red]", highlight=False)
            failed.append(item.name)
    folders = drive_methods(None if args.items else args.family)  # --family all: the Drive folders too
    failed += fetch_folders(folders, args)
    if failed:
        hint = ("; without network access, serve the files from a mirror (--mirror URL or BENCH_MIRROR) or fetch "
                "them by hand and pass --from PATH (`download --list` shows where)") if ctx.failed else ""
        raise BenchError(f"{len(failed)} of {len(items) + len(folders)} items not ready (see above){hint}")
    return 0


WIDTH = 100


def fetch_folders(methods: list[str], args: argparse.Namespace) -> list[str]:
    """`--family all`: each Drive folder fetched (one line each), then where BiCro's are; returns the failed."""
    from bench.common.progress import console
    from bench.common.terminal import shown

    failed = []
    for method in methods:
        try:
            console.print(f"{method}: {'; '.join(fetch_drive_folder(method, args.models_root, args.offline))}",
                          highlight=False)
        except BenchError as err:
            console.print(f"[red]{method}: {shown(str(err))}[/red]", highlight=False)
            failed.append(method)
    if args.family == "all" and not args.items:
        print(textwrap.fill(by_hand_line("bicro"), WIDTH))
    return failed


def family_selection(args) -> list[registry.Item]:
    """The family items of --family (NCR's plain downloads; none for the Drive folders, fetched apart);
    BiCro, released only on OneDrive, is named with where to get it and refused unless listing."""
    from bench.download.family_items import FAMILY_ITEMS, family_items

    if args.items:
        return registry.select(args.items, None, FAMILY_ITEMS)
    items = family_items(args.family)
    if not items and not args.list and not drive_methods(args.family):
        raise BenchError(by_hand_line(args.family))
    return items


def by_hand_line(method: str) -> str:
    from bench.family.releases import select

    releases = select(method)
    where = "; ".join((registry.Source("drive-folder", r.location).describe() if r.host == "drive-folder"
                       else r.location) + (f" (noise {r.noise})" if r.noise != "UNCONFIRMED" else "") for r in releases)
    return (f"{releases[0].paper}, {releases[0].licence}: released as "
            f"{'OneDrive' if releases[0].host == 'onedrive' else 'Google Drive'} folder(s) whose file names are "
            f"UNCONFIRMED: fetch by hand from {where}, then `download --family {method} --from DIR`")


def show_by_hand(family: str, models_root: Path) -> None:
    """The family's folder releases (sizes unknown, file names UNCONFIRMED): the Google Drive folders that
    `download --family <method>` fetches with gdown, and BiCro's OneDrive folders, fetched by hand."""
    from bench.family.releases import select

    automatic = drive_methods(family)
    if automatic:
        print(textwrap.fill("fetched automatically with gdown by `download --family <method>` (Google Drive "
                            "folders; sizes unknown, file names UNCONFIRMED: the whole folder is taken, each "
                            "checkpoint checked):", WIDTH))
    for method in automatic:
        release, present = select(method)[0], len(present_checkpoints(models_root, method))
        state = f"present: {present} checkpoint(s)" if present else "missing"
        print(textwrap.fill(f"{method} ({state}): {release.paper}, {release.licence}: "
                            f"{registry.Source('drive-folder', release.location).describe()}", WIDTH,
                            initial_indent="  ", subsequent_indent="    "))
    if family in ("all", "bicro"):
        print("by hand (sizes unknown; file names UNCONFIRMED):")
        print(textwrap.fill(by_hand_line("bicro"), WIDTH, initial_indent="  ", subsequent_indent="    "))


def check_mirror(url: str) -> bool:
    """A mirror is fetched over HTTP(S); `file:///srv/x` would otherwise fail as a host that does not resolve."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def show(items: list[registry.Item], states: dict[str, str], mirror: str | None) -> None:
    """One entry per file (data.zip once, for both datasets): size, its items' states, addresses."""
    from bench.download.fetch import sources_for

    by_file: dict[str, list[registry.Item]] = {}
    for item in items:
        by_file.setdefault(item.filename, []).append(item)
    print(f"{'file':<30} {'size':>10}  items (state); then where to fetch it")
    for filename, sharing in by_file.items():
        size = human_size(file_bytes(sharing)) if all(i.size_known for i in sharing) else "unknown"
        states_text = ", ".join(f"{item.name} ({states[item.name]})" for item in sharing)
        print(textwrap.fill(f"{filename:<30} {size:>10}  {states_text}", WIDTH, subsequent_indent=" " * 44))
        for source in sources_for(sharing[0], mirror):
            inside = f" ({filename} inside)" if source.kind == "drive-folder" else ""
            print(textwrap.fill(source.describe() + inside, WIDTH, initial_indent="    ", subsequent_indent="      "))
        if sharing[0].notes and not mirror:
            print(textwrap.fill(f"or {sharing[0].notes}", WIDTH, initial_indent="    ", subsequent_indent="      "))
    total = sum(file_bytes(sharing) for sharing in by_file.values() if all(i.size_known for i in sharing))
    unknown = sum(not all(i.size_known for i in sharing) for sharing in by_file.values())
    unknown_text = f"; {unknown} file(s) of unknown size" if unknown else ""
    print(f"{'total':<30} {human_size(total):>10}  (~: estimates, none published{unknown_text})")


def file_bytes(sharing: list[registry.Item]) -> int:
    """One file's estimated size (data.zip is listed once although two items come from it)."""
    return max(item.approx_bytes for item in sharing)


def human_size(size: int) -> str:
    """The registry's estimates, marked as such: ~34.0 GiB, ~241 MiB, ~1 MiB."""
    return f"~{size / 2**30:.1f} GiB" if size >= 2**30 else f"~{size / 2**20:.0f} MiB"
