"""Published-format checkpoints with random weights, for `make demo`, the tests and the benchmarks."""

from pathlib import Path

import torch

from bench.model.checkpoint import save_checkpoint
from bench.model.config import ModelConfig
from bench.model.network import SimilarityModel, init_weights


def small_config(module_name: str, data_name: str, vocab_size: int, **dims) -> ModelConfig:
    values = dict(img_dim=40, word_dim=24, embed_size=32, sim_dim=12, num_layers=1, bi_gru=True,
                  no_imgnorm=False, no_txtnorm=False, sgr_step=3, num_regions=36)
    values.update(dims)
    return ModelConfig(data_name=data_name, vocab_size=vocab_size, module_name=module_name, **values)


def random_model(config: ModelConfig, seed: int = 0, score_spread: float = 1.0) -> SimilarityModel:
    """Random weights and batch-norm statistics; `score_spread` scales the last Linear."""
    torch.manual_seed(seed)
    model = SimilarityModel(config)
    init_weights(model)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.num_batches_tracked.fill_(100)
        model.sim_enc.sim_eval_w.weight.mul_(score_spread)
    return model.eval()


def write_checkpoint(path: Path, config: ModelConfig, *, seed: int = 0, ddp_prefix: bool = True,
                     score_spread: float = 1.0, daa_weight: float | None = 10) -> Path:
    """A checkpoint in the published layout with random weights and a full `opt`.

    `daa_weight=None` gives an SGRAF baseline's opt, which has no such field.
    """
    model = random_model(config, seed=seed, score_spread=score_spread)
    extra = {} if daa_weight is None else {"daa_weight": daa_weight}
    opt = config.to_opt(data_path="data", vocab_path="vocab/", batch_size=128, num_epochs=30,
                        lr_update=20, learning_rate=0.0002, grad_clip=2.0, margin=0.2,
                        max_violation=True, world_size=1, **extra)
    save_checkpoint(path, model, opt, epoch=3, best_rsum=123.4, eiters=99, ddp_prefix=ddp_prefix)
    return path
