"""`python -m bench order`: the images and captions of a protocol in score-matrix order (CSV).

    python -m bench order --protocol coco-5k --out coco-5k-order.csv

Step one of putting another model on the yardstick (docs/other-models.md): score image i against
caption j in exactly this order, save the matrix with numpy.save, then `eval --scores`.
Reads only the split's captions and ids, never its features.
"""

from pathlib import Path

from bench.common.outputs import output_path
from bench.common.terminal import summary
from bench.eval.protocols import PROTOCOL_NAMES


def register(subparsers) -> None:
    parser = subparsers.add_parser("order", help="export the image and caption order a score matrix must follow",
                                   description=summary(__doc__))
    parser.add_argument("--protocol", required=True, choices=PROTOCOL_NAMES,
                        help="the protocol whose split is listed (coco-1k and coco-5k: the same COCO testall)")
    parser.add_argument("--data-root", type=Path, default=Path("data"),
                        help="folder with <data_name>/ caption and id files")
    parser.add_argument("--caption-ids", type=Path, help="COCO caption ids of the captions, in split order "
                        "(default for COCO testall: coco_test_ids.npy of the eccv_caption package, when installed)")
    parser.add_argument("--out", type=output_path, required=True,
                        help="CSV to write: one row per image, then per caption")
    parser.set_defaults(func=run)


def run(args) -> int:
    from bench.common.atomic import write_text
    from bench.common.outputs import check_outputs
    from bench.common.replace_rule import Kind
    from bench.data.splits import split_files
    from bench.eval.order import FIELDS, caption_ids_for, order_rows
    from bench.eval.protocols import get_protocol, protocol_split
    from bench.results.rows import dict_csv

    protocol = get_protocol(args.protocol)
    kind = Kind.text("an order CSV", dict_csv([], FIELDS))
    inputs = {"split data": split_files(args.data_root, protocol.data_dir, protocol.split),
              "caption ids": args.caption_ids}
    check_outputs({"--out": args.out}, kinds={"--out": kind}, inputs=inputs)
    split = protocol_split(protocol, args.data_root, features=False)
    rows = order_rows(protocol, split, caption_ids_for(protocol, split, args.caption_ids))
    write_text(args.out, dict_csv(rows, FIELDS), kind)
    print(f"wrote {args.out}: {split.n_images:,} images, then {split.n_captions:,} captions "
          f"(score matrix: {split.n_images:,} x {split.n_captions:,}, row i = image i, column j = caption j)")
    return 0
