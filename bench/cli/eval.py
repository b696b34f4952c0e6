"""`python -m bench eval`: score a split with checkpoints, or take any model's scores, and report metrics.

    python -m bench eval --checkpoint models/daa_coco_sgr.pth.tar --protocol coco-5k \
        --json results/coco5k-sgr.json --csv results/coco5k-sgr.csv
    python -m bench eval --scores my_model.npy --model-name CLIP --protocol coco-5k --json results/clip.json

Parses arguments, calls bench.evaluate, writes what it returns and prints the table. Heavy
imports happen inside `run`, so `--help` imports no torch.
"""

import sys
from pathlib import Path

from bench.common.outputs import output_path
from bench.common.terminal import summary
from bench.eval.protocols import PROTOCOL_NAMES
from bench.eval.tolerances import PRECISIONS


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluate checkpoints on a protocol",
                                   description=summary(__doc__))
    parser.add_argument("--checkpoint", action="append",
                        help="checkpoint file; give two (SGR and SAF) for the SGRAF ensemble")
    parser.add_argument("--scores", type=Path,
                        help="instead of --checkpoint: a .npy score matrix from any model, images x captions in "
                             "the split's order (`bench order`); see docs/other-models.md")
    parser.add_argument("--model-name", default="other", help="with --scores: the model's name in the results")
    parser.add_argument("--protocol", required=True, choices=PROTOCOL_NAMES,
                        help="f30k-1k: Flickr30K test; coco-1k: COCO testall in 5 folds (mean); "
                             "coco-5k: COCO testall whole")
    parser.add_argument("--data-root", type=Path, default=Path("data"),
                        help="folder with <data_name>/ feature folders and vocab/")
    parser.add_argument("--vocab", help="vocabulary JSON (default <data-root>/vocab/<opt.data_name>_vocab.json)")
    parser.add_argument("--annotations", type=Path,
                        help="folder with instances_val2014.json for PMRP (default <data-root>/coco_annotations)")
    parser.add_argument("--eccv", action="store_true",
                        help="coco-5k: add ECCV Caption and CxC metrics (needs the eccv_caption package)")
    parser.add_argument("--caption-ids", type=Path, help="COCO caption ids of the testall captions for --eccv "
                        "(default: coco_test_ids.npy shipped in eccv_caption)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="arithmetic of the scoring (fp32 is the reference)")
    parser.add_argument("--image-shard", type=int, help="images scored per step (default: from free memory)")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's choice, "
                                                                   "one per core); recorded in the provenance")
    parser.add_argument("--save-sims", type=output_path, help="write the float32 score matrix (.npy)")
    parser.add_argument("--json", type=output_path, help="write metrics and provenance (JSON)")
    parser.add_argument("--csv", type=output_path, help="write one row per figure, beside the paper's (CSV)")
    parser.add_argument("--allow-mismatch", action="store_true",
                        help="score checkpoints trained on another dataset than the protocol's (or on two "
                        "different ones); every figure is then marked no-reference")
    parser.add_argument("--own-checkpoint", action="store_true",
                        help="the checkpoints are your own or trained here, not the released ones: the paper's "
                             "figures are shown for orientation and marked 'own' instead of ok/off")
    parser.add_argument("--run-id", help="name of this run in the results (default: from --json/--csv)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when any figure is off the paper beyond its tolerance")
    parser.set_defaults(func=run)


def run_id_of(args) -> str | None:
    """--run-id, else the stem of --json or --csv; None lets evaluate name it <protocol>-<model>.
    Checked here, before any work, so the message names the flag it came from."""
    from bench.results.run_files import check_run_id

    if args.run_id:
        check_run_id(args.run_id, "--run-id")
        return args.run_id
    path = args.json or args.csv
    if path is None:
        return None
    check_run_id(path.stem, f"the run id from {path}:")
    return path.stem


# options that only mean something when a checkpoint is scored here: (flag, attribute, its default)
CHECKPOINT_ONLY = (("--vocab", "vocab", None), ("--device", "device", "auto"), ("--precision", "precision", "fp32"),
                   ("--image-shard", "image_shard", None), ("--save-sims", "save_sims", None),
                   ("--allow-mismatch", "allow_mismatch", False), ("--own-checkpoint", "own_checkpoint", False))


def check_source(args) -> None:
    """Exactly one of --checkpoint and --scores, and no option of the other kind of run."""
    from bench.common.errors import BenchError

    if bool(args.checkpoint) == (args.scores is not None):
        raise BenchError("give either --checkpoint (SGR, SAF, or both for SGRAF) or --scores (a score matrix from "
                         "any model), " + ("not both" if args.scores else "one of them"))
    if args.scores is not None:
        given = [flag for flag, name, default in CHECKPOINT_ONLY if getattr(args, name) != default]
        if given:
            verb = "apply" if len(given) > 1 else "applies"
            raise BenchError(f"{', '.join(given)} only {verb} to --checkpoint runs, not to --scores "
                             f"(the scores are already in {args.scores})")
    elif args.model_name != "other":
        raise BenchError("--model-name names a --scores run; a checkpoint run is named by its checkpoints")


def check_paths(args) -> None:
    """Before any work: outputs that are directories, coincide, or overwrite an input are refused."""
    from bench.common.errors import BenchError
    from bench.common.outputs import check_outputs
    from bench.data.splits import split_files
    from bench.eval.pmrp import INSTANCES_FILE
    from bench.eval.protocols import get_protocol
    from bench.results.run_files import PER_QUERY, RESULT_JSON, RESULTS_CSV, queries_beside, score_matrix_of

    if args.caption_ids is not None and not args.eccv:
        raise BenchError(f"--caption-ids {args.caption_ids}: only --eccv reads caption ids; add --eccv or drop it")
    protocol = get_protocol(args.protocol)
    vocabularies = [args.vocab] if args.vocab else list(args.data_root.glob("vocab/*.json"))
    check_outputs({"--save-sims": args.save_sims, "--json": args.json, "--csv": args.csv,
                   "the per-query file": queries_beside(args.json, args.csv)},
                  kinds={"--save-sims": score_matrix_of(args.json), "--json": RESULT_JSON, "--csv": RESULTS_CSV,
                         "the per-query file": PER_QUERY},
                  inputs={
        "checkpoint": args.checkpoint, "score file": args.scores, "vocabulary": vocabularies,
        "caption ids": args.caption_ids,
        "split data": split_files(args.data_root, protocol.data_dir, protocol.split),
        "annotations": (args.annotations or args.data_root / "coco_annotations") / INSTANCES_FILE,
    })


def print_written(args, result) -> None:
    """`wrote ...`: every file this run wrote, as the other commands say (nothing when none was asked)."""
    from bench.results.uncertainty import queries_path

    written = [args.json, args.csv, args.save_sims]
    if result.queries_npz is not None and (args.json or args.csv):
        written.append(queries_path(args.json or args.csv))
    if any(written):
        note = " (generated data: kept apart from runs on the real datasets)" if result.generated_data else ""
        print("wrote " + ", ".join(str(path) for path in written if path) + note)


def run(args) -> int:
    from bench.common.threads import set_threads
    from bench.results.evaluate import evaluate, evaluate_scores
    from bench.results.rows import print_table

    check_source(args)
    check_paths(args)
    set_threads(args.threads)
    run_id = run_id_of(args)
    if args.scores is not None:
        result = evaluate_scores(args.scores, args.protocol, data_root=args.data_root, annotations=args.annotations,
                                 eccv=args.eccv, run_id=run_id, model=args.model_name, caption_ids=args.caption_ids)
    else:
        result = evaluate(args.checkpoint, args.protocol, data_root=args.data_root, vocab=args.vocab,
                          device=args.device, precision=args.precision, annotations=args.annotations,
                          eccv=args.eccv, image_shard=args.image_shard, caption_ids=args.caption_ids,
                          run_id=run_id, allow_mismatch=args.allow_mismatch, own_checkpoint=args.own_checkpoint)
    if result is None:  # a torchrun process other than the master
        return 0
    result.write(json_path=args.json, csv_path=args.csv, sims_path=args.save_sims)
    print_table(result.figures)
    print_written(args, result)
    off = result.status_counts()["off"]
    if args.strict and off:
        print(f"daa-bench eval: --strict: {off} figure(s) off the paper beyond tolerance", file=sys.stderr)
        return 1
    return 0
