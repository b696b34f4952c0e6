"""`python -m bench download`: fetch, verify and prepare data and checkpoints.

    python -m bench download --group coco            # COCO features, vocab, annotations, punkt_tab
    python -m bench download daa-coco-sgr --from ~/Downloads/model.pth.tar
    python -m bench download --list                  # every item, its size, present / verified
"""

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.download import registry
from bench.download.fetch import FetchOptions
from bench.download.pipeline import Context, ensure, status
from bench.common.progress import console
from bench.common.errors import BenchError


def register(subparsers) -> None:
    parser = subparsers.add_parser("download", help="fetch, verify and prepare data and checkpoints",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("items", nargs="*", metavar="ITEM", help="item names (see --list); default: everything")
    parser.add_argument("--group", choices=(*registry.GROUPS, "all"), help="a group of items")
    parser.add_argument("--list", action="store_true", help="show every item, its size, and whether it is ready")
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
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--models-root", type=Path, default=Path("models"))
    parser.add_argument("--nltk-dir", type=Path, default=None, help="default: NLTK's own download folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    items = registry.with_splits(registry.select(args.items, args.group), args.splits)
    if args.from_path is not None and args.from_path.is_file() and len(items) != 1:
        raise BenchError(f"--from {args.from_path} is one file: name the one item it is (see --list)")
    ctx = Context(data_root=args.data_root, models_root=args.models_root,
                  nltk_dir=args.nltk_dir, mirror=args.mirror,
                  from_path=args.from_path, offline=args.offline, rehash=args.rehash, hdf5=args.hdf5,
                  fetch=FetchOptions(retries=args.retries))
    if args.list:
        show(items, {item.name: status(item, ctx) for item in items})
        return 0
    failed = []
    for item in items:
        try:
            console.print(f"{item.name}: {ensure(item, ctx)}")
        except BenchError as err:
            console.print(f"[red]{item.name}: {err}[/red]")
            failed.append(item.name)
    if failed:
        raise BenchError(f"{len(failed)} of {len(items)} items not ready ({', '.join(failed)}); see the lines above")
    return 0


def show(items: list[registry.Item], states: dict[str, str]) -> None:
    table = Table(title="daa-bench downloads")
    for column in ("item", "groups", "size", "status", "description"):
        table.add_column(column)
    for item in items:
        table.add_row(item.name, ",".join(item.groups), human_size(item.approx_bytes), states[item.name],
                      item.description)
    Console(soft_wrap=True).print(table)


def human_size(size: int) -> str:
    """Approximate sizes from the registry: 34.0 GB, 241.0 MB, 1.0 MB."""
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"
