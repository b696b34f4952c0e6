"""`python -m bench train`: train SGR or SAF with the DAA loss (docs/training.md).

    python -m bench train --data-name f30k_precomp --module-name SGR
    torchrun --nproc_per_node 4 -m bench train --data-name coco_precomp --module-name SAF

Unset settings take the paper's values for the dataset and module (bench.training.settings.PAPER_RUNS);
with --resume, the run's own recorded settings. Only parses arguments: the work is bench.training.loop.train.
"""

import dataclasses
from pathlib import Path

from bench.common.terminal import summary
from bench.training.settings import (
    DAA_FORMS,
    DATA_NAMES,
    MODULE_NAMES,
    PAPER_DIMS,
    PAPER_DROPOUT,
    PRECISIONS,
    TrainSettings,
    default_out_dir,
    paper_settings,
)

_SETTING_NAMES = {f.name for f in dataclasses.fields(TrainSettings)}


def _add_run_options(parser) -> None:
    parser.add_argument("--num-epochs", type=int, help="paper: 30 (COCO), 40 (F30K)")
    parser.add_argument("--learning-rate", type=float, help="per process; multiplied by the number of processes "
                                                            "(paper: 0.00015 COCO, 0.0006 F30K)")
    parser.add_argument("--lr-update", type=int, help="decay the lr x0.1 every this many epochs (paper: 20; F30K "
                                                      "SGR 30)")
    parser.add_argument("--daa-weight", type=float, help="weight of each DAA direction, 0: contrastive only "
                                                         "(paper: 25 COCO, 10 F30K)")
    parser.add_argument("--daa-form", choices=DAA_FORMS,
                        help="released (default): the published code's rank (mixes row and column); row: within-row")
    parser.add_argument("--batch-size", type=int, help="captions per process and step (default 128)")
    parser.add_argument("--margin", type=float, help="hinge margin (default 0.2)")
    parser.add_argument("--no-max-violation", dest="max_violation", action="store_const", const=False,
                        help="sum all hinge violations instead of the hardest negative's")
    parser.add_argument("--grad-clip", type=float, help="gradient norm clip (default 2.0)")
    parser.add_argument("--dropout", type=float, help=f"dropout probability (default {PAPER_DROPOUT}, the paper's; "
                                                      "0 makes a run deterministic)")
    for name, paper in PAPER_DIMS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int,
                            help=f"default {paper}, or --init-from's (a contradicting value is refused)")


def _add_schedule_options(parser) -> None:
    parser.add_argument("--init-from", type=Path, metavar="CKPT",
                        help="start from this checkpoint's weights (published layout; fine-tuning), new optimizer")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps, validate and save")
    parser.add_argument("--save-every-steps", type=int, metavar="N",
                        help="also save a resumable checkpoint every N steps (mid-epoch resume)")
    parser.add_argument("--train-captions", type=int, metavar="N", help="train on the first N captions only "
                                                                        "(smoke runs; a multiple of 5)")
    parser.add_argument("--val-captions", type=int, metavar="N", help="validate on the first N dev captions "
                                                                      "(default: COCO 5000, F30K all)")
    parser.add_argument("--workers", type=int, help="data loader processes per training process (default 2)")
    parser.add_argument("--seed", type=int, help="default 0 (with one process: the original's batch order)")
    parser.add_argument("--device", help="auto (default) | cpu | cuda | cuda:N (under torchrun: the local rank's "
                                         "GPU)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="fp32 (default) | tf32 | bf16 (autocast) | fp64 (model, features and loss in float64)")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's choice, "
                                                                   "one per core)")
    parser.add_argument("--deterministic", action="store_const", const=True,
                        help="deterministic kernels only: CUDA runs repeat bit for bit (slower); CPU runs already do")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out-dir from its newest checkpoint, with its recorded settings "
                             "(contradicting flags are refused)")


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train SGR / SAF with the DAA loss",
                                   description=summary(__doc__))
    parser.add_argument("--data-name", required=True, choices=DATA_NAMES, help="dataset (SCAN folder name)")
    parser.add_argument("--module-name", required=True, choices=MODULE_NAMES, help="similarity head to train")
    parser.add_argument("--data-root", type=Path, help="folder holding <data-name>/ and vocab/ (default data)")
    parser.add_argument("--vocab", type=Path, help="vocabulary JSON (default <data-root>/vocab/<data-name>_vocab.json)")
    parser.add_argument("--out-dir", type=Path, help="checkpoints and logs (default "
                                                     "models/trained/<data-name>_<module-name in lower case>)")
    _add_run_options(parser)
    _add_schedule_options(parser)
    parser.set_defaults(func=run)


def given_settings(args) -> dict:
    """The settings named on the command line (unset ones are None in args)."""
    given = {name: value for name, value in vars(args).items() if name in _SETTING_NAMES and value is not None}
    given["out_dir"] = args.out_dir or default_out_dir(args.data_name, args.module_name)
    given["resume"] = args.resume
    return given


def settings_from_args(args) -> TrainSettings:
    """The paper's settings for the dataset and module, with the given flags applied."""
    given = given_settings(args)
    return paper_settings(given.pop("data_name"), given.pop("module_name"), **given)


def run(args) -> int:
    from bench.common.errors import BenchError
    from bench.training.loop import train
    from bench.training.state import settings_to_resume

    if args.resume and args.init_from is not None:
        raise BenchError(f"--resume with --init-from {args.init_from}: a resumed run continues from its own "
                         "newest checkpoint; drop --init-from (it only starts a new run)")
    settings = settings_from_args(args)
    if args.resume:
        settings = settings_to_resume(settings.run_dir, given_settings(args)) or settings
    best = train(settings)
    print(f"best model: {best}")
    return 0
