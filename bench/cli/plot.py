"""`python -m bench plot`: one run's figures beside the paper's, as a PNG.

    python -m bench plot results/daa_coco_sgr_coco-5k.csv
"""

from pathlib import Path

from bench.common.outputs import output_path
from bench.common.terminal import summary


def register(subparsers) -> None:
    plot = subparsers.add_parser("plot", help="one run's figures as ours minus the paper's, against the tolerance band",
                                 description=summary(__doc__))
    plot.add_argument("csv", type=Path, help="a results CSV written by eval --csv")
    plot.add_argument("--out", type=output_path, help="PNG to write (default: beside the CSV)")
    plot.set_defaults(func=run)


def run(args) -> int:
    from bench.common.outputs import check_outputs
    from bench.common.replace_rule import PNG
    from bench.results.plots import plot_run

    check_outputs({"--out": args.out or args.csv.with_suffix(".png")}, kinds={"--out": PNG},
                  inputs={"results CSV": args.csv})
    path = plot_run(args.csv, args.out)
    print(f"wrote {path} (Markdown: ![{path.stem}]({path.name}))")
    return 0
