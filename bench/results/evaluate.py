"""`bench.evaluate`: one protocol run from checkpoint files to a RunResult beside the paper;
`bench.evaluate_scores`: the same for another model's score matrix.

    import bench
    result = bench.evaluate(["models/daa_coco_sgr.pth.tar"], "coco-5k", data_root="data")
    print(result.metrics["rsum"]); result.to_csv("results/coco5k-sgr.csv")

The same pipeline as `python -m bench eval` (which only parses arguments, calls this and
writes what it returns), PMRP and ECCV Caption included.
"""

from collections.abc import Sequence
from pathlib import Path

from bench.data.synthetic import generated_by
from bench.eval.pipeline import run_protocol, run_scores
from bench.results.provenance import evaluation_provenance, scores_provenance
from bench.results.rows import figure_rows
from bench.results.run_files import check_run_id
from bench.results.run_result import RunResult
from bench.results.uncertainty import query_outputs


def evaluate(checkpoints: str | Path | Sequence[str | Path], protocol: str, *, data_root: str | Path = "data",
             vocab: str | Path | None = None, device: str = "auto", precision: str = "fp32",
             annotations: str | Path | None = None, eccv: bool = False, image_shard: int | None = None,
             caption_ids: str | Path | None = None, run_id: str | None = None,
             allow_mismatch: bool = False, own_checkpoint: bool = False) -> RunResult | None:
    """Score `checkpoints` (one, or SGR and SAF for SGRAF) on a protocol and compare with the paper.

    protocol: "f30k-1k", "coco-1k" or "coco-5k". vocab: the vocabulary JSON (default
    <data_root>/vocab/<opt.data_name>_vocab.json). device: "auto", "cpu", "cuda", "cuda:N".
    precision: "fp32", "tf32" or "bf16". annotations: folder with instances_val2014.json for
    PMRP (required when given; default <data_root>/coco_annotations, used when present).
    eccv: add ECCV Caption / CxC (coco-5k). image_shard: images per scoring step (default from
    free memory). caption_ids: COCO caption ids for eccv. run_id: the figures' run name
    (default "<protocol>-<model>"). allow_mismatch: score checkpoints trained on another
    dataset than the protocol's (refused otherwise); every figure is then no-reference.
    own_checkpoint: not a released checkpoint; figures with a published value get the status
    "own" instead of ok/off. Under torchrun every process scores a slice of the images;
    the master gets the result, the other processes None. Bad input raises BenchError.
    """
    if isinstance(checkpoints, (str, Path)):
        checkpoints = [checkpoints]
    if run_id is not None:
        check_run_id(run_id)
    evaluation = run_protocol(checkpoints, protocol, data_root=Path(data_root), vocab=vocab, device=device,
                              precision=precision, annotations=annotations and Path(annotations), eccv=eccv,
                              image_shard=image_shard, caption_ids=caption_ids and Path(caption_ids),
                              allow_mismatch=allow_mismatch)
    if evaluation is None:
        return None
    label = checkpoint_label([c.path for c in evaluation.scored.checkpoints])
    return _result(evaluation, evaluation_provenance(evaluation, precision), label, run_id, evaluation.sims,
                   compare=evaluation.scored.mismatch is None, own=own_checkpoint)


def evaluate_scores(scores, protocol: str, *, data_root: str | Path = "data", annotations: str | Path | None = None,
                    eccv: bool = False, run_id: str | None = None, model: str = "other",
                    caption_ids: str | Path | None = None) -> RunResult:
    """Another retrieval model's score matrix on a protocol, measured exactly as a checkpoint's.

    scores: a `.npy` path (memory-mapped) or an array, images x captions in the split's order
    (`python -m bench order`): (n_images, 5 n_images); coco-1k also takes the (5, n/5, n)
    fold blocks. Any real float dtype. Only the split's captions and ids are read (and the
    annotations for PMRP), never its features. The paper's DAA figures are no reference for
    another model: every figure has the status "other-model". model: its name in the results;
    run_id defaults to "<protocol>-<model>". The result holds no `sims` (they are the caller's).
    Bad input raises BenchError.
    """
    evaluation = run_scores(scores, protocol, data_root=Path(data_root), annotations=annotations and Path(annotations),
                            eccv=eccv, caption_ids=caption_ids and Path(caption_ids))
    return _result(evaluation, scores_provenance(evaluation, model), evaluation.scored.label, run_id, None,
                   other_model=True)


def _result(evaluation, provenance: dict, label: str, run_id: str | None, sims, **status) -> RunResult:
    """The RunResult of a measured evaluation: figure rows with intervals, the per-query file."""
    model = provenance["model"]
    figures = {"metrics": evaluation.metrics} | ({"folds": evaluation.folds} if evaluation.folds else {})
    uncertainty = query_outputs(evaluation.queries, evaluation.protocol.name, evaluation.split.texts)
    method = (provenance["method"], provenance.get("noise")) if "method" in provenance else None
    rows = figure_rows(run_id or f"{evaluation.protocol.name}-{model.lower()}", evaluation.protocol, model, label,
                       provenance["daa"], figures, uncertainty.intervals, method=method, **status)
    extra = uncertainty.payload | ({"left_out": evaluation.left_out} if evaluation.left_out else {})
    result = RunResult(evaluation.protocol.name, evaluation.metrics, provenance, rows, evaluation.folds,
                       sims, extra=extra, queries=evaluation.queries, queries_npz=uncertainty.data)
    generator = generated_by(evaluation.split.directory, evaluation.split.name)  # the data's own marker
    return result.on_generated_data(generator) if generator else result


def checkpoint_label(paths: list[Path]) -> str:
    """File names joined by '+'; with the folder where two names agree (two trained `model_best.pth.tar`)."""
    names = [path.name for path in paths]
    if len(set(names)) < len(names):
        names = [f"{path.parent.name}/{path.name}" for path in paths]
    return "+".join(names)

