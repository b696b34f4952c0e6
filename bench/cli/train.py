"""`python -m bench train`: train SGR or SAF with the DAA loss (training.md).

    python -m bench train --data-name f30k_precomp --module-name SGR
    torchrun --nproc_per_node 4 -m bench train --data-name coco_precomp --module-name SAF

Unset settings take the paper's values for the dataset and module (the table below).
"""

from pathlib import Path

from bench.training.losses import DAA_FORMS
from bench.eval.scoring import PRECISIONS
from bench.training.loop import TrainSettings, run_training

# (epochs, learning rate before the x world-size scaling, lr_update, daa_weight), training.md
PAPER_SETTINGS = {
    ("coco_precomp", "SGR"): (30, 0.00015, 20, 25.0),
    ("coco_precomp", "SAF"): (30, 0.00015, 20, 25.0),
    ("f30k_precomp", "SGR"): (40, 0.0006, 30, 10.0),
    ("f30k_precomp", "SAF"): (40, 0.0006, 20, 10.0),
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train SGR / SAF with the DAA loss",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--data-name", required=True, choices=("coco_precomp", "f30k_precomp"))
    parser.add_argument("--module-name", required=True, choices=("SGR", "SAF"))
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--vocab", type=Path, help="vocabulary JSON (default <data-root>/vocab/<data-name>_vocab.json)")
    parser.add_argument("--out-dir", type=Path, help="checkpoints and log (default models/trained/<data>_<module>)")
    parser.add_argument("--num-epochs", type=int, help="paper: 30 (COCO), 40 (F30K)")
    parser.add_argument("--learning-rate", type=float, help="per process; multiplied by the number of processes")
    parser.add_argument("--lr-update", type=int, help="decay the lr x0.1 every this many epochs")
    parser.add_argument("--daa-weight", type=float, help="weight of each DAA direction (0: contrastive only)")
    parser.add_argument("--daa-form", default="released", choices=DAA_FORMS,
                        help="released: the published code's rank (mixes row and column); row: within-row ranks")
    parser.add_argument("--batch-size", type=int, default=128, help="per process")
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--no-max-violation", dest="max_violation", action="store_false",
                        help="sum all hinge violations instead of the hardest negative's")
    parser.add_argument("--grad-clip", type=float, default=2.0)
    for name, default in (("embed-size", 1024), ("word-dim", 300), ("sim-dim", 256), ("num-layers", 1),
                          ("sgr-step", 3)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--val-captions", type=int, help="validate on the first N dev captions (default: COCO 5000, "
                                                          "F30K all)")
    parser.add_argument("--workers", type=int, default=2, help="data loader processes per training process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (under torchrun: the local rank's GPU)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--resume", action="store_true", help="continue from the last complete epoch in --out-dir")
    parser.set_defaults(func=run)


def settings_from_args(args) -> TrainSettings:
    epochs, lr, lr_update, daa_weight = PAPER_SETTINGS[(args.data_name, args.module_name)]
    out_dir = args.out_dir or Path("models") / "trained" / f"{args.data_name}_{args.module_name.lower()}"
    chosen = lambda value, paper: paper if value is None else value  # noqa: E731
    return TrainSettings(
        data_name=args.data_name, module_name=args.module_name, out_dir=out_dir, data_root=args.data_root,
        vocab=args.vocab, num_epochs=chosen(args.num_epochs, epochs), learning_rate=chosen(args.learning_rate, lr),
        lr_update=chosen(args.lr_update, lr_update), daa_weight=chosen(args.daa_weight, daa_weight),
        daa_form=args.daa_form, batch_size=args.batch_size, margin=args.margin, max_violation=args.max_violation,
        grad_clip=args.grad_clip, embed_size=args.embed_size, word_dim=args.word_dim, sim_dim=args.sim_dim,
        num_layers=args.num_layers, sgr_step=args.sgr_step, val_captions=args.val_captions, workers=args.workers,
        seed=args.seed, device=args.device, precision=args.precision, resume=args.resume)


def run(args) -> int:
    best = run_training(settings_from_args(args))
    print(f"best model: {best}")
    return 0
