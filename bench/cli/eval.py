"""`python -m bench eval`: score a split with one checkpoint (or SGR + SAF) and report metrics.

    python -m bench eval --checkpoint models/daa_coco_sgr.pth.tar --protocol coco-5k \
        --json results/coco5k-sgr.json --csv results/coco5k-sgr.csv

Heavy imports happen inside `run`, so other commands start quickly.
"""

import time
from pathlib import Path

TIE_RULE = "ASP ranks ties by index (stable sort); the original broke them arbitrarily (unstable GPU argsort)"


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluate checkpoints on a protocol",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True,
                        help="checkpoint file; give two (SGR and SAF) for the SGRAF ensemble")
    parser.add_argument("--protocol", required=True, choices=("f30k-1k", "coco-1k", "coco-5k"))
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--vocab", help="vocabulary JSON (default <data-root>/vocab/<opt.data_name>_vocab.json)")
    parser.add_argument("--annotations", type=Path,
                        help="folder with instances_val2014.json for PMRP (default <data-root>/coco_annotations)")
    parser.add_argument("--eccv", action="store_true",
                        help="coco-5k: add ECCV Caption and CxC metrics (needs the eccv_caption package)")
    parser.add_argument("--caption-ids", type=Path, help="COCO caption ids of the testall captions for --eccv "
                        "(default: coco_test_ids.npy shipped in eccv_caption)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "bf16"))
    parser.add_argument("--image-shard", type=int, help="images scored per step (default: from free memory)")
    parser.add_argument("--save-sims", type=Path, help="write the float32 score matrix (.npy)")
    parser.add_argument("--json", type=Path, help="write metrics and provenance (JSON)")
    parser.add_argument("--csv", type=Path, help="write one row per figure, beside the paper's (CSV)")
    parser.add_argument("--allow-mismatch", action="store_true",
                        help="score checkpoints trained on another dataset than the protocol's (or on two "
                        "different ones); every figure is then marked no-reference")
    parser.add_argument("--own-checkpoint", action="store_true",
                        help="the checkpoints are your own or trained here, not the released ones: the paper's "
                             "figures are shown for orientation and marked 'own' instead of ok/off")
    parser.add_argument("--run-id", help="name of this run in the results (default: from --json/--csv)")
    parser.set_defaults(func=run)


def _run_id(args, protocol, model_label: str) -> str:
    if args.run_id:
        return args.run_id
    for path in (args.json, args.csv):
        if path:
            return path.stem
    return f"{protocol.name}-{model_label.lower()}"


def add_pmrp(evaluation: dict, protocol, sims, split, annotations: Path, required: bool) -> None:
    """Put PMRP beside the recalls (COCO only) when the instance annotations are there."""
    from bench.data.coco_ids import load_image_ids
    from bench.eval.per_query import add_pmrp as add_pmrp_queries
    from bench.eval.pmrp import INSTANCES_FILE, load_instance_vectors, protocol_pmrp

    if protocol.dataset != "coco" or not (required or (annotations / INSTANCES_FILE).is_file()):
        return
    result = protocol_pmrp(protocol.name, sims, load_image_ids(split.directory, split.name).tolist(),
                           load_instance_vectors(annotations))
    add_pmrp_queries(evaluation["queries"], result["per_query"])
    for direction in ("i2t", "t2i"):
        evaluation["metrics"][direction]["pmrp"] = result[direction]
        for fold, fold_result in zip(evaluation.get("folds", []), result.get("folds", [])):
            fold[direction]["pmrp"] = fold_result[direction]


def add_eccv(evaluation: dict, protocol, sims, split, caption_ids: Path | None) -> dict:
    """ECCV Caption / CxC figures (coco-5k) joined to the per-direction dicts; returns provenance."""
    from bench.data.coco_ids import load_image_ids
    from bench.eval.eccv import testall_eccv_metrics

    result = testall_eccv_metrics(sims, load_image_ids(split.directory, split.name).tolist(),
                                  caption_ids_path=caption_ids)
    for direction in ("i2t", "t2i"):
        evaluation["metrics"][direction].update(result[direction])
    return {"library": result["library"], "recall_agreement": result["recall_agreement"]}


def check_paths(args, protocol) -> None:
    """Before any work: outputs that are directories, coincide, or overwrite an input are refused."""
    from bench.common.outputs import check_outputs
    from bench.data.splits import split_files
    from bench.eval.pmrp import INSTANCES_FILE
    from bench.results.uncertainty import queries_path

    vocabularies = [args.vocab] if args.vocab else list(args.data_root.glob("vocab/*.json"))
    result = args.json or args.csv
    check_outputs({"--save-sims": args.save_sims, "--json": args.json, "--csv": args.csv,
                   "the per-query file": queries_path(result) if result else None}, inputs={
        "checkpoint": args.checkpoint, "vocabulary": vocabularies, "caption ids": args.caption_ids,
        "split data": split_files(args.data_root, protocol.data_dir, protocol.split),
        "annotations": (args.annotations or args.data_root / "coco_annotations") / INSTANCES_FILE,
    })


def run(args) -> int:
    import numpy as np

    from bench.common.atomic import write_all
    from bench.common.errors import BenchError
    from bench.common.distributed import cleanup_distributed, init_distributed, is_master, process_device, world_info_from_env
    from bench.eval.score_split import checkpoint_facts, data_manifest, score_split
    from bench.eval.protocols import evaluate, fold_bounds, get_protocol, saved_matrix
    from bench.data.coco_ids import load_image_ids
    from bench.eval.per_query import add_coco_ids
    from bench.results.provenance import base_provenance, device_name
    from bench.results.uncertainty import query_outputs
    from bench.results.rows import figure_rows, print_table, write_results
    from bench.eval.scoring import resolve_device
    from bench.data.splits import load_split
    from bench.data.vocab import tokenizer_path

    started = time.perf_counter()
    protocol = get_protocol(args.protocol)
    check_paths(args, protocol)
    if args.eccv and protocol.name != "coco-5k":
        raise BenchError(f"--eccv needs the coco-5k protocol (the whole 5K gallery), not {protocol.name}")
    split = load_split(args.data_root, protocol.data_dir, protocol.split)
    world = world_info_from_env()
    device = process_device(world, resolve_device(args.device))
    init_distributed(world, device)  # under torchrun each process scores a slice of the images
    blocks = fold_bounds(protocol, split.n_images) if protocol.folds > 1 else None
    try:
        scored = score_split(args.checkpoint, split, args.data_root, args.vocab, device, args.precision, blocks,
                             args.image_shard, data_name=protocol.data_dir, allow_mismatch=args.allow_mismatch)
    finally:
        cleanup_distributed()
    if not is_master(world):
        return 0
    metrics_started = time.perf_counter()
    evaluation = evaluate(protocol, scored.sims, split.texts)
    add_pmrp(evaluation, protocol, scored.sims, split, args.annotations or args.data_root / "coco_annotations",
             required=args.annotations is not None)
    eccv = add_eccv(evaluation, protocol, scored.sims, split, args.caption_ids) if args.eccv else None
    queries = evaluation.pop("queries")
    if protocol.dataset == "coco" and (split.directory / f"{split.name}_ids.txt").is_file():
        add_coco_ids(queries, load_image_ids(split.directory, split.name))
    per_query = query_outputs(queries, protocol.name, split.texts, args.json or args.csv)
    timings = dict(scored.stage_seconds, metrics=time.perf_counter() - metrics_started)
    scoring_seconds = sum(v for k, v in timings.items() if k.startswith("score_"))
    pairs = int(scored.sims.size) * len(scored.checkpoints)
    daa = all(getattr(c.opt, "daa_weight", 0) for c in scored.checkpoints)
    provenance = base_provenance() | {
        "device": str(device), "device_name": device_name(device), "precision": args.precision,
        "model": scored.model_label, "daa": daa,
        "checkpoints": checkpoint_facts(scored.checkpoints), "vocab": scored.vocab_paths,
        "data": data_manifest(split), "mismatch": scored.mismatch, "tokenizer": tokenizer_path(), "tie_rule": TIE_RULE, "eccv": eccv,
        "seconds": timings | {"total": time.perf_counter() - started},
        "pairs_scored": pairs, "pairs_per_second": pairs / scoring_seconds if scoring_seconds else None,
    }
    payload = {"protocol": protocol.name, **evaluation, **per_query.payload, "provenance": provenance}
    label = "+".join(c.path.name for c in scored.checkpoints)
    rows = figure_rows(_run_id(args, protocol, scored.model_label), protocol, scored.model_label, label, daa, evaluation,
                       per_query.intervals, compare=scored.mismatch is None, own=args.own_checkpoint)
    write_all({args.save_sims: lambda tmp: np.save(tmp, saved_matrix(protocol, scored.sims).astype(np.float32)),
               args.json: lambda tmp: write_results(rows, None, tmp, payload),
               args.csv: lambda tmp: write_results(rows, tmp, None, payload),
               per_query.path: lambda tmp: tmp.write_bytes(per_query.data)})
    print_table(rows)
    return 0
