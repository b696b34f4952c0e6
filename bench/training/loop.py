"""Train SGR or SAF with the DAA loss, as the paper did (training.md), on CPU, one GPU or many.

    python -m bench train --data-name f30k_precomp --module-name SAF          # one process
    torchrun --nproc_per_node 4 -m bench train --data-name coco_precomp ...   # DDP, NCCL

Adam at lr x world size, decayed x0.1 every `lr_update` epochs, gradients clipped at norm 2;
after every epoch: rsum on the dev split, an epoch checkpoint, and the best model kept.
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.common import distributed
from bench.model.checkpoint import build_model
from bench.model.config import ModelConfig
from bench.model.encode import encode_captions, encode_images
from bench.model.engine import pair_scores
from bench.eval.score_split import check_features_fit
from bench.training.losses import training_objective
from bench.eval.metrics import recall_metrics
from bench.model.network import SimilarityModel, init_weights
from bench.common.progress import progress_bar
from bench.eval.scoring import precision_context, resolve_device, score_matrix
from bench.data.splits import load_split
from bench.training.batches import Batch, TrainingSemantics, training_loader, validation_subset
from bench.training.state import BEST_NAME, EpochRecord, TrainLog, capture_rng, check_resumable, find_resume_checkpoint, \
    restore_rng, save_epoch
from bench.data.vocab import Vocabulary


@dataclass
class TrainSettings:
    data_name: str
    module_name: str
    out_dir: Path
    data_root: Path = Path("data")
    vocab: Path | None = None
    num_epochs: int = 30
    learning_rate: float = 0.0002
    lr_update: int = 15
    daa_weight: float = 10.0
    daa_form: str = "released"
    batch_size: int = 128
    margin: float = 0.2
    max_violation: bool = True
    grad_clip: float = 2.0
    embed_size: int = 1024
    word_dim: int = 300
    sim_dim: int = 256
    num_layers: int = 1
    sgr_step: int = 3
    train_split: str = "train"
    val_split: str = "dev"
    val_captions: int | None = None  # None: COCO's first 5,000, the whole split elsewhere
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    resume: bool = False
    quiet: bool = False


class BatchScorer(nn.Module):
    """The training forward pass as one module, so DistributedDataParallel sees it whole."""

    def __init__(self, model: SimilarityModel):
        super().__init__()
        self.model = model

    def forward(self, regions: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        img_emb = self.model.img_enc(regions)
        cap_emb = self.model.txt_enc(tokens, lengths)
        return pair_scores(self.model.sim_enc, img_emb, cap_emb, lengths.to(cap_emb.device))


def learning_rate_at(settings: TrainSettings, world_size: int, epoch: int) -> float:
    """lr0 x world size (as the original), x0.1 for every `lr_update` epochs elapsed."""
    return settings.learning_rate * world_size * 0.1 ** (epoch // settings.lr_update)


def backward_batch(scorer: nn.Module, batch: Batch, settings: TrainSettings, device: torch.device) -> dict:
    """Forward, loss and backward of one batch; returns the loss terms as floats."""
    with precision_context(settings.precision, device):
        scores = scorer(batch.regions, batch.tokens, batch.lengths)
    terms = training_objective(scores.float(), batch.sems, margin=settings.margin,
                               max_violation=settings.max_violation, daa_weight=settings.daa_weight,
                               form=settings.daa_form)
    terms["loss"].backward()
    return {name: float(value.detach()) for name, value in terms.items()}


def train_epoch(scorer, optimizer, loader, settings: TrainSettings, device, log: TrainLog, step: int,
                epoch: int) -> tuple[int, dict]:
    """One pass over the loader; returns the new step count and the mean loss terms."""
    scorer.train()
    totals: dict[str, float] = {}
    batches = 0
    with progress_bar(f"epoch {epoch}", len(loader), unit="steps") as advance:
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            terms = backward_batch(scorer, batch.to(device), settings, device)
            nn.utils.clip_grad_norm_(scorer.parameters(), settings.grad_clip)
            optimizer.step()
            step += 1
            batches += 1
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + value
            log.step(step, terms)
            advance(1)
    return step, {name: value / max(batches, 1) for name, value in totals.items()}


@torch.no_grad()
def validate(model: SimilarityModel, dev, vocab: Vocabulary, device: torch.device, precision: str) -> dict:
    """Recall metrics on the dev subset; each process scores a share of the images."""
    model.eval()
    img_emb = encode_images(model, dev, device)
    cap_emb, cap_lens = encode_captions(model, vocab, dev.captions, device)
    world = distributed.world_info_from_env()
    bounds = np.linspace(0, img_emb.shape[0], world.world_size + 1).astype(int)
    start, stop = bounds[world.rank], bounds[world.rank + 1]
    rows = np.empty((0, cap_emb.shape[0]), dtype=np.float32)
    if stop > start:
        rows = score_matrix(model, img_emb[start:stop], cap_emb, cap_lens.to(device), precision=precision)
    sims = np.concatenate(distributed.all_gather_objects(rows))
    model.train()
    return recall_metrics(sims)


def new_model(settings: TrainSettings, vocab: Vocabulary, features_shape: tuple) -> SimilarityModel:
    config = ModelConfig(
        data_name=settings.data_name, vocab_size=len(vocab), img_dim=int(features_shape[2]),
        word_dim=settings.word_dim, embed_size=settings.embed_size, sim_dim=settings.sim_dim,
        num_layers=settings.num_layers, bi_gru=True, no_imgnorm=False, no_txtnorm=False,
        module_name=settings.module_name, sgr_step=settings.sgr_step, num_regions=int(features_shape[1]))
    torch.manual_seed(settings.seed)  # the same initial weights on every process
    model = SimilarityModel(config)
    init_weights(model)
    return model


def published_opt(model: SimilarityModel, settings: TrainSettings, world_size: int):
    """The checkpoint's `opt`: architecture plus the training settings, as the original stored them."""
    return model.config.to_opt(
        data_path=str(settings.data_root), vocab_path=str(settings.vocab), batch_size=settings.batch_size,
        num_epochs=settings.num_epochs, learning_rate=settings.learning_rate, lr_update=settings.lr_update,
        margin=settings.margin, max_violation=settings.max_violation, grad_clip=settings.grad_clip,
        daa_weight=settings.daa_weight, daa_form=settings.daa_form, world_size=world_size,
        precision=settings.precision, seed=settings.seed)


def default_val_captions(settings: TrainSettings) -> int | None:
    if settings.val_captions is not None:
        return settings.val_captions
    return 5000 if settings.data_name.startswith("coco") else None


def say(settings: TrainSettings, world, message: str) -> None:
    if distributed.is_master(world) and not settings.quiet:
        print(message, file=sys.stderr, flush=True)


@dataclass
class RunState:
    """Where the loop starts: epoch, optimizer step and best rsum so far."""

    epoch: int = 0
    step: int = 0
    best_rsum: float = 0.0


def _resume(resumed, optimizer, world, device, settings) -> RunState:
    """Load optimizer and RNG state of the last complete epoch (the weights are already in `model`)."""
    optimizer.load_state_dict(resumed.extra["optimizer"])
    rng_states = resumed.extra["rng_states"]
    if len(rng_states) == world.world_size:
        restore_rng(rng_states[world.rank], device)
    else:
        say(settings, world, f"resuming with {world.world_size} processes instead of {len(rng_states)}: "
                             "random streams restart, so the run will not repeat the original exactly")
    say(settings, world, f"resuming {resumed.path} (epoch {resumed.epoch} done, best rsum {resumed.best_rsum:.2f})")
    return RunState(resumed.epoch + 1, int(resumed.extra["step"]), resumed.best_rsum)


def _load_model(settings: TrainSettings, vocab: Vocabulary, train, resumed) -> SimilarityModel:
    if resumed is None:
        return new_model(settings, vocab, train.features.shape)
    check_features_fit(resumed, train)
    vocab.check_matches(resumed.config.vocab_size, str(resumed.path))
    return build_model(resumed).train()


def _epoch_row(epoch: int, state: RunState, lr: float, losses: dict, metrics: dict, seconds: float) -> dict:
    row = {"epoch": epoch, "step": state.step, "lr": lr, **losses, "rsum": metrics["rsum"]}
    row.update({f"{d}_{k}": metrics[d][k] for d in ("i2t", "t2i") for k in ("r1", "r5", "r10")})
    row["seconds"] = round(seconds, 2)
    return row


def _train(settings: TrainSettings, world, device: torch.device) -> Path:
    vocab = Vocabulary.load(settings.vocab or settings.data_root / "vocab" / f"{settings.data_name}_vocab.json")
    train = load_split(settings.data_root, settings.data_name, settings.train_split)
    dev = validation_subset(load_split(settings.data_root, settings.data_name, settings.val_split),
                            default_val_captions(settings))
    resumed = find_resume_checkpoint(settings.out_dir, settings.resume)
    model = _load_model(settings, vocab, train, resumed).to(device)
    opt = published_opt(model, settings, world.world_size)
    if resumed is not None:
        check_resumable(resumed, opt)
    torch.manual_seed(settings.seed + world.rank)  # dropout differs between processes
    scorer = distributed.wrap_model(BatchScorer(model), world, device)
    optimizer = torch.optim.Adam(scorer.parameters(), lr=learning_rate_at(settings, world.world_size, 0))
    state = RunState() if resumed is None else _resume(resumed, optimizer, world, device, settings)
    loader = training_loader(train, vocab, TrainingSemantics(train.texts), world, batch_size=settings.batch_size,
                             workers=settings.workers, seed=settings.seed)
    log = TrainLog(settings.out_dir, state.epoch, enabled=distributed.is_master(world))
    for epoch in range(state.epoch, settings.num_epochs):
        started = time.perf_counter()
        lr = learning_rate_at(settings, world.world_size, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loader.sampler.set_epoch(epoch)
        state.step, losses = train_epoch(scorer, optimizer, loader, settings, device, log, state.step, epoch)
        metrics = validate(model, dev, vocab, device, settings.precision)
        is_best = metrics["rsum"] > state.best_rsum
        state.best_rsum = max(state.best_rsum, metrics["rsum"])
        rng_states = distributed.all_gather_objects(capture_rng(device))
        log.epoch(_epoch_row(epoch, state, lr, losses, metrics, time.perf_counter() - started))
        if distributed.is_master(world):
            save_epoch(settings.out_dir, EpochRecord(model, opt, epoch, state.step, state.best_rsum, optimizer,
                                                     rng_states), is_best)
        say(settings, world, f"epoch {epoch}: loss {losses['loss']:.4f}, dev rsum {metrics['rsum']:.2f}"
                             f"{' (best)' if is_best else ''}")
        distributed.barrier()
    log.close()
    return settings.out_dir / BEST_NAME


def run_training(settings: TrainSettings) -> Path:
    """Train in this process (one of several under torchrun); returns the best model's path."""
    world = distributed.world_info_from_env()
    device = distributed.process_device(world, resolve_device(settings.device))
    distributed.init_distributed(world, device)
    try:
        return _train(settings, world, device)
    finally:
        distributed.cleanup_distributed()
