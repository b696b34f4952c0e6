"""`python -m bench eval`: score a split with one checkpoint (or SGR + SAF) and report metrics.

    python -m bench eval --checkpoint models/daa_coco_sgr.pth.tar --protocol coco-5k \
        --json results/coco5k-sgr.json --csv results/coco5k-sgr.csv
"""

import time
from pathlib import Path

import numpy as np

from bench import atomic
from bench.evaluation import checkpoint_facts, data_manifest, score_split
from bench.errors import BenchError
from bench.pmrp import INSTANCES_FILE, load_instance_vectors, protocol_pmrp
from bench.protocols import PROTOCOLS, evaluate, fold_bounds, get_protocol, saved_matrix
from bench.provenance import base_provenance
from bench.results import figure_rows, print_table, write_results
from bench.scoring import PRECISIONS, resolve_device
from bench.splits import load_split
from bench.vocab import tokenizer_path

TIE_RULE = "ASP ranks ties by index (stable sort); the original broke them arbitrarily (unstable GPU argsort)"


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluate checkpoints on a protocol",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True,
                        help="checkpoint file; give two (SGR and SAF) for the SGRAF ensemble")
    parser.add_argument("--protocol", required=True, choices=sorted(PROTOCOLS))
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--vocab", help="vocabulary JSON (default <data-root>/vocab/<opt.data_name>_vocab.json)")
    parser.add_argument("--annotations", type=Path,
                        help="folder with instances_val2014.json for PMRP (default <data-root>/coco_annotations)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--save-sims", type=Path, help="write the float32 score matrix (.npy)")
    parser.add_argument("--json", type=Path, help="write metrics and provenance (JSON)")
    parser.add_argument("--csv", type=Path, help="write one row per figure, beside the paper's (CSV)")
    parser.add_argument("--run-id", help="name of this run in the results (default: from --json/--csv)")
    parser.set_defaults(func=run)


def _run_id(args, protocol, model_label: str) -> str:
    if args.run_id:
        return args.run_id
    for path in (args.json, args.csv):
        if path:
            return path.stem
    return f"{protocol.name}-{model_label.lower()}"


def add_pmrp(evaluation: dict, protocol, sims: np.ndarray, split, annotations: Path, required: bool) -> None:
    """Put PMRP beside the recalls (COCO only) when the instance annotations are there."""
    if protocol.dataset != "coco" or not (required or (annotations / INSTANCES_FILE).is_file()):
        return
    if split.image_ids is None:
        raise BenchError(f"{split.directory}/{split.name}_ids.txt: PMRP needs the COCO image id of every row")
    try:
        image_ids = [int(i) for i in split.image_ids]
    except ValueError:
        raise BenchError(f"{split.directory}/{split.name}_ids.txt: ids must be COCO image ids (integers)") from None
    result = protocol_pmrp(protocol.name, sims, image_ids, load_instance_vectors(annotations))
    for direction in ("i2t", "t2i"):
        evaluation["metrics"][direction]["pmrp"] = result[direction]
        for fold, fold_result in zip(evaluation.get("folds", []), result.get("folds", [])):
            fold[direction]["pmrp"] = fold_result[direction]


def _save_sims(path: Path, matrix: np.ndarray) -> None:
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, matrix.astype(np.float32))


def run(args) -> int:
    started = time.perf_counter()
    protocol = get_protocol(args.protocol)
    split = load_split(args.data_root, protocol.data_dir, protocol.split)
    device = resolve_device(args.device)
    blocks = fold_bounds(protocol, split.n_images) if protocol.folds > 1 else None
    scored = score_split(args.checkpoint, split, args.data_root, args.vocab, device, args.precision, blocks)
    metrics_started = time.perf_counter()
    evaluation = evaluate(protocol, scored.sims, split.texts)
    add_pmrp(evaluation, protocol, scored.sims, split, args.annotations or args.data_root / "coco_annotations",
             required=args.annotations is not None)
    timings = dict(scored.stage_seconds, metrics=time.perf_counter() - metrics_started)
    scoring_seconds = sum(v for k, v in timings.items() if k.startswith("score_"))
    pairs = int(np.prod(scored.sims.shape)) * len(scored.checkpoints)
    provenance = base_provenance() | {
        "device": str(device), "device_name": _device_name(device), "precision": args.precision,
        "checkpoints": checkpoint_facts(scored.checkpoints), "vocab": scored.vocab_paths,
        "data": data_manifest(split), "tokenizer": tokenizer_path(), "tie_rule": TIE_RULE,
        "seconds": timings | {"total": time.perf_counter() - started},
        "pairs_scored": pairs, "pairs_per_second": pairs / scoring_seconds if scoring_seconds else None,
    }
    payload = {"protocol": protocol.name, **evaluation, "provenance": provenance}
    daa = all(getattr(c.opt, "daa_weight", 0) for c in scored.checkpoints)
    label = "+".join(c.path.name for c in scored.checkpoints)
    rows = figure_rows(_run_id(args, protocol, scored.model_label), protocol, scored.model_label, label, daa, evaluation)
    if args.save_sims:
        _save_sims(args.save_sims, saved_matrix(protocol, scored.sims))
    write_results(rows, args.csv, args.json, payload)
    print_table(rows)
    return 0


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return platform.processor() or platform.machine()
