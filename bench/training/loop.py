"""Train SGR or SAF with the DAA loss, as the paper did (docs/training.md), on CPU, one GPU or many.

    from bench.training.loop import train
    from bench.training.settings import paper_settings
    best = train(paper_settings("f30k", "SAF", max_steps=100))   # or: python -m bench train ...
    torchrun --nproc_per_node 4 -m bench train --data-name coco_precomp ...   # DDP, NCCL

Adam at lr x world size, decayed x0.1 every `lr_update` epochs, gradients clipped at norm 2;
after every epoch (and when --max-steps stops a run): rsum on the dev split, a resumable
checkpoint, and the best model kept.
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.common import distributed
from bench.common.errors import BenchError
from bench.common.progress import progress_bar
from bench.common.threads import set_threads
from bench.data.splits import load_split
from bench.data.vocab import Vocabulary, search_nltk_data
from bench.eval.metrics import recall_metrics
from bench.eval.precision import autocast_for, tf32_switches
from bench.eval.protocols import DIRECTIONS
from bench.eval.score_split import ScoringRequest, score_model
from bench.eval.scoring import default_caption_chunk, resolve_device, warn_slow_bf16
from bench.model.engine import pair_scores
from bench.model.network import SimilarityModel
from bench.training.batches import Batch, TrainingData, TrainingSemantics, caption_subset
from bench.training.determinism import deterministic_kernels
from bench.training.logs import TrainLog
from bench.training.losses import training_objective
from bench.training.settings import TrainSettings, check_resume_matches, check_settings, settings_record
from bench.training.start import initial_model, run_dtype
from bench.training.state import (
    BEST_NAME,
    Position,
    SavedState,
    capture_rng,
    find_resume_checkpoint,
    optimizer_state_problem,
    restore_rng,
    resumed_position,
    save_best,
    save_resumable,
)


class BatchScorer(nn.Module):
    """The training forward pass as one module, so DistributedDataParallel sees it whole."""

    def __init__(self, model: SimilarityModel, caption_chunk: int | None = None):
        super().__init__()
        self.model = model
        self.caption_chunk = caption_chunk  # None: the device's (bench.eval.scoring.default_caption_chunk)

    def forward(self, regions: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`lengths` stay on the host (packing and length groups read them there); a GPU takes
        larger caption chunks than a CPU, so a step launches fewer, bigger kernels."""
        img_emb = self.model.img_enc(regions.to(self.model.img_enc.fc.weight.dtype))
        cap_emb = self.model.txt_enc(tokens, lengths)
        return pair_scores(self.model.sim_enc, img_emb, cap_emb, lengths,
                           caption_chunk=self.caption_chunk or default_caption_chunk(img_emb.device))


def learning_rate_at(settings: TrainSettings, world_size: int, epoch: int) -> float:
    """lr0 x world size (as the original), x0.1 for every `lr_update` epochs elapsed."""
    return settings.learning_rate * world_size * 0.1 ** (epoch // settings.lr_update)


def adam(parameters, lr: float) -> torch.optim.Optimizer:
    """Adam with PyTorch's fused kernel (CPU and CUDA): the same update as the original's for-loop
    Adam, up to float rounding, in one pass per parameter instead of about ten (0.5 s -> 0.13 s per
    step for a full-size model on one CPU thread, docs/performance.md)."""
    return torch.optim.Adam(parameters, lr=lr, fused=True)


def compute_precision(precision: str) -> str:
    """The matmul precision of the forward pass: fp64 runs use exact (IEEE) matmuls in float64."""
    return "fp32" if precision == "fp64" else precision


def backward_batch(scorer: nn.Module, batch: Batch, settings: TrainSettings, device: torch.device) -> dict:
    """Forward, loss and backward of one batch; returns the loss terms as detached tensors (still on
    the device: reading them is a host sync, left to the step log).

    The TF32 switches hold for the backward too (its matmuls and cuDNN GRU kernels); bf16 autocast
    covers the forward only, as PyTorch advises."""
    precision = compute_precision(settings.precision)
    with tf32_switches(precision == "tf32"):
        with autocast_for(precision, device):
            scores = scorer(batch.regions, batch.tokens, batch.lengths)
        terms = training_objective(scores.to(run_dtype(settings.precision)), batch.sems, margin=settings.margin,
                                   max_violation=settings.max_violation, daa_weight=settings.daa_weight,
                                   form=settings.daa_form)
        terms["loss"].backward()
    return {name: value.detach() for name, value in terms.items()}


@torch.no_grad()
def validate(model: SimilarityModel, dev, vocab: Vocabulary, device: torch.device, precision: str) -> dict:
    """Recall metrics on the dev subset through evaluation's own path (each process encodes and scores
    its even share of the images, rank 0 gathers and checks the rows and computes the metrics, which
    every process then receives)."""
    model.eval()
    request = ScoringRequest(dev, vocab, device, compute_precision(precision),
                             encode_precision=compute_precision(precision), what="validating")
    sims = score_model(model, request).matrix
    model.train()
    return distributed.broadcast_object(recall_metrics(sims) if sims is not None else None)


def vocab_path(settings: TrainSettings) -> Path:
    return Path(settings.vocab or Path(settings.data_root) / "vocab" / f"{settings.data_name}_vocab.json")


def published_opt(model: SimilarityModel, settings: TrainSettings, world_size: int):
    """The checkpoint's `opt`: architecture plus the training settings, as the original stored them."""
    return model.config.to_opt(
        data_path=str(settings.data_root), vocab_path=str(vocab_path(settings)), batch_size=settings.batch_size,
        num_epochs=settings.num_epochs, learning_rate=settings.learning_rate, lr_update=settings.lr_update,
        margin=settings.margin, max_violation=settings.max_violation, grad_clip=settings.grad_clip,
        daa_weight=settings.daa_weight, daa_form=settings.daa_form, dropout=settings.dropout,
        world_size=world_size, precision=settings.precision, seed=settings.seed)


def default_val_captions(settings: TrainSettings) -> int | None:
    if settings.val_captions is not None:
        return settings.val_captions
    return 5000 if settings.data_name.startswith("coco") else None


@dataclass
class Run:
    """Everything one process of a run holds."""

    settings: TrainSettings
    world: distributed.WorldInfo
    device: torch.device
    model: SimilarityModel
    scorer: nn.Module
    optimizer: torch.optim.Optimizer
    data: TrainingData
    dev: object
    vocab: Vocabulary
    log: TrainLog
    opt: object
    record: dict

    def say(self, message: str) -> None:
        if distributed.is_master(self.world) and not self.settings.quiet:
            print(message, file=sys.stderr, flush=True)

    def saved_state(self, position: Position) -> SavedState:
        rng_states = distributed.all_gather_objects(capture_rng(self.device))
        return SavedState(self.model, self.opt, position, self.optimizer, rng_states, self.record)

    def stops_at(self, position: Position) -> bool:
        limit = self.settings.max_steps
        return position.epoch >= self.settings.num_epochs or (limit is not None and position.step >= limit)


def _restore(run: Run, resumed) -> Position:
    """Optimizer and RNG state of the newest checkpoint (the weights are already in the model)."""
    try:
        run.optimizer.load_state_dict(resumed.extra["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise BenchError(f"{resumed.path}: damaged resume state: the optimizer state does not fit the model "
                         f"({str(err)[:120]})") from None
    problem = optimizer_state_problem(run.optimizer)
    if problem:
        raise BenchError(f"{resumed.path}: damaged resume state: {problem}")
    position = resumed_position(resumed, run.data.batches.per_epoch())
    rng_states = resumed.extra["rng_states"]
    if len(rng_states) == run.world.world_size:
        restore_rng(rng_states[run.world.rank], run.device, resumed.path)
    elif position.batch:
        raise BenchError(f"{resumed.path}: saved mid-epoch by {len(rng_states)} processes; resume it with as many")
    else:
        run.say(f"resuming with {run.world.world_size} processes instead of {len(rng_states)}: random streams "
                "restart, so the run will not repeat the original exactly")
    run.say(f"resuming {resumed.path} (epoch {position.epoch}, step {position.step})")
    return position


def _prepare(settings: TrainSettings, world, device: torch.device) -> tuple[Run, Position]:
    search_nltk_data(settings.data_root)  # punkt_tab where `download` put it
    vocab = Vocabulary.load(vocab_path(settings))
    train_split = caption_subset(load_split(settings.data_root, settings.data_name, settings.train_split),
                                 settings.train_captions, "--train-captions")
    dev = caption_subset(load_split(settings.data_root, settings.data_name, settings.val_split),
                         default_val_captions(settings), "--val-captions")
    resumed = find_resume_checkpoint(settings.run_dir, settings.resume)
    if resumed is not None:
        check_resume_matches(resumed.extra["train_settings"], vars(settings), str(resumed.path))
    model, dims = initial_model(settings, vocab, train_split, resumed)
    model.to(device)
    torch.manual_seed(settings.seed + world.rank)  # dropout differs between processes
    scorer = distributed.wrap_model(BatchScorer(model), world, device)
    optimizer = adam(scorer.parameters(), lr=learning_rate_at(settings, world.world_size, 0))
    relevance = settings.relevance if settings.relevance is not None else TrainingSemantics(train_split.texts)
    data = TrainingData(train_split, vocab, relevance, world, batch_size=settings.batch_size,
                        workers=settings.workers, seed=settings.seed)
    run = Run(settings, world, device, model, scorer, optimizer, data, dev, vocab, None,
              published_opt(model, settings, world.world_size),
              settings_record(settings, dims) | {"threads_used": torch.get_num_threads()})
    position = Position() if resumed is None else _restore(run, resumed)
    run.log = TrainLog(settings.run_dir, position.epoch, position.step, enabled=distributed.is_master(world))
    return run, position


STEP_VALUES = ("loss", "contrastive", "i2t", "t2i", "grad_norm")  # a step's logged values, in this order
LOSS_SUMS = STEP_VALUES[:4]  # summed over the epoch for its log row
STEPS_PER_WRITE = 50  # steps whose values wait on the device, then cross to the host in one transfer


def _step(run: Run, batch: Batch) -> torch.Tensor:
    """One optimizer step; returns its STEP_VALUES as one float64 tensor on the device (no host sync)."""
    run.optimizer.zero_grad(set_to_none=True)
    terms = backward_batch(run.scorer, batch.to(run.device), run.settings, run.device)
    grad_norm = nn.utils.clip_grad_norm_(run.scorer.parameters(), run.settings.grad_clip)
    run.optimizer.step()
    return torch.stack([*(terms[name].double() for name in LOSS_SUMS), grad_norm.double()])


def _write_steps(run: Run, position: Position, pending: list, lr: float) -> None:
    """The pending steps' rows into the step log and the epoch's loss sums: one host sync for all of them."""
    if not pending:
        return
    values = torch.stack([step_values for _, step_values in pending]).tolist()
    for (step, _), row in zip(pending, values):
        named = dict(zip(STEP_VALUES, row))
        for name in LOSS_SUMS:
            position.loss_sums[name] = position.loss_sums.get(name, 0.0) + named[name]
        run.log.step({"step": step, "epoch": position.epoch, "lr": lr, **named})
    pending.clear()


def train_epoch(run: Run, start: Position) -> Position:
    """Batches of `start.epoch` from `start.batch` on, until the epoch ends or --max-steps is reached;
    saves a resumable checkpoint every --save-every-steps steps. Returns where it stopped."""
    settings = run.settings
    lr = learning_rate_at(settings, run.world.world_size, start.epoch)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.scorer.train()
    loader = run.data.loader(start.epoch, skip=start.batch)
    per_epoch = run.data.batches.per_epoch()
    position = Position(start.epoch, start.batch, start.step, start.best_rsum, dict(start.loss_sums))
    pending = []  # (step, values on the device) not yet in the step log
    with progress_bar(f"epoch {start.epoch}", len(loader), unit="steps") as advance:
        for batch in loader:
            values = _step(run, batch)
            position.batch, position.step = position.batch + 1, position.step + 1
            pending.append((position.step, values))
            advance(1)
            position.epoch_done = position.batch == per_epoch
            saves = bool(settings.save_every_steps) and position.step % settings.save_every_steps == 0
            ends = run.stops_at(position) or position.epoch_done
            if ends or saves or len(pending) >= STEPS_PER_WRITE:
                _write_steps(run, position, pending, lr)
            if ends:
                return position
            if saves:
                state = run.saved_state(position)
                if distributed.is_master(run.world):
                    save_resumable(settings.run_dir, state)
    position.epoch_done = True  # an epoch with no batches left
    return position


def _epoch_row(position: Position, lr: float, metrics: dict, seconds: float) -> dict:
    batches = max(position.batch, 1)
    row = {"epoch": position.epoch, "step": position.step, "lr": lr,
           **{name: value / batches for name, value in position.loss_sums.items()}, "rsum": metrics["rsum"]}
    row.update({f"{d}_{k}": metrics[d][k] for d in DIRECTIONS for k in ("r1", "r5", "r10")})
    row["seconds"] = round(seconds, 2)
    return row


def validate_and_save(run: Run, position: Position, seconds: float) -> None:
    """Validate, log the epoch (or the part of it done), save the resumable checkpoint and the best model."""
    settings = run.settings
    metrics = validate(run.model, run.dev, run.vocab, run.device, settings.precision)
    is_best = metrics["rsum"] > position.best_rsum
    position.best_rsum = max(position.best_rsum, metrics["rsum"])
    state = run.saved_state(position)
    run.log.epoch(_epoch_row(position, learning_rate_at(settings, run.world.world_size, position.epoch), metrics,
                             seconds))
    if distributed.is_master(run.world):
        if is_best:
            save_best(settings.run_dir, state)
        save_resumable(settings.run_dir, state)
    done = "" if position.epoch_done else f" (stopped at step {position.step})"
    run.say(f"epoch {position.epoch}{done}: loss {position.loss_sums.get('loss', 0.0) / max(position.batch, 1):.4f}"
            f", dev rsum {metrics['rsum']:.2f}{' (best)' if is_best else ''}")
    distributed.barrier()


def _train(settings: TrainSettings, world, device: torch.device) -> Path:
    run, position = _prepare(settings, world, device)
    try:
        while not run.stops_at(position):
            started = time.perf_counter()
            position = train_epoch(run, position)
            validate_and_save(run, position, time.perf_counter() - started)
            position = position.next_start()
    except BaseException:
        run.log.close(failed=True)
        raise
    run.log.close()
    best = settings.run_dir / BEST_NAME
    if not best.is_file():
        raise BenchError(f"{settings.run_dir}: nothing was trained (epoch {position.epoch}, step {position.step} "
                         f"already reach --num-epochs {settings.num_epochs} / --max-steps {settings.max_steps})")
    return best


def train(settings: TrainSettings) -> Path:
    """Train in this process (one of several under torchrun); returns the best model's path.

    Each of `settings`' fields is documented in bench.training.settings; `settings.relevance` is
    the hook through which tests inject reference relevance matrices.
    """
    check_settings(settings)
    set_threads(settings.threads)
    world = distributed.world_info_from_env()
    device = distributed.process_device(world, resolve_device(settings.device))
    if distributed.is_master(world):
        warn_slow_bf16(settings.precision, device)
    distributed.init_distributed(world, device)
    try:
        with deterministic_kernels(settings.deterministic):
            return _train(settings, world, device)
    finally:
        distributed.cleanup_distributed()
