"""Published-format checkpoints with random weights, for `make demo`, the tests and the benchmarks."""

import argparse
from pathlib import Path

import torch

from bench.common.atomic import atomic_path
from bench.common.replace_rule import CHECKPOINT
from bench.model.checkpoint import save_checkpoint
from bench.model.config import ModelConfig
from bench.model.layouts import EMBEDDING_KEY, FLAT_PREFIXES
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


# Fields the family's methods keep in their `opt` beyond the network's (the loader ignores them).
METHOD_OPT_FIELDS = {
    "NCR": {"noise_ratio": 0.2, "noise_file": "noise_index/f30k_precomp_0.2.npy", "warmup_epoch": 5,
            "p_threshold": 0.5, "soft_margin": "exponential"},
    "L2RM": {"noise_ratio": 0.2, "tau": 0.05, "lambda1": 1.0, "warmup_rate": 0.2, "cost_iters": 10},
}


def network_parts(config: ModelConfig, seed: int) -> list[dict]:
    """The three state dicts of a random network, unprefixed (as the family's methods save them)."""
    return [{k: v.detach().clone() for k, v in part.state_dict().items()}
            for part in random_model(config, seed=seed).parts()]


def _family_opt(config: ModelConfig, method: str) -> argparse.Namespace:
    return config.to_opt(data_path="data", vocab_path="vocab/", batch_size=128, num_epochs=40,
                         **METHOD_OPT_FIELDS[method])


def write_pair_checkpoint(path: Path, config: ModelConfig, *, seeds: tuple[int, int] = (0, 1)) -> Path:
    """NCR's co-trained layout (CREAM, SPS and BiCro save the same): model_A, model_B, one opt, no Eiters."""
    payload = {"epoch": 7, "model_A": network_parts(config, seeds[0]), "model_B": network_parts(config, seeds[1]),
               "best_rsum": 456.7, "opt": _family_opt(config, "NCR")}
    with atomic_path(path, CHECKPOINT) as tmp:
        torch.save(payload, tmp)
    return path


def write_flat_checkpoint(path: Path, config: ModelConfig, *, seed: int = 0, mask_row: bool = False) -> Path:
    """L2RM's layout: `net` (one prefixed state dict) and its training-only `cost_function`; with
    `mask_row`, the word embedding has V+1 rows (a `<mask>` word appended), as its evaluation builds."""
    net = {prefix + key: value for prefix, part in zip(FLAT_PREFIXES, network_parts(config, seed))
           for key, value in part.items()}
    if mask_row:
        weight = net["txt_enc." + EMBEDDING_KEY]
        net["txt_enc." + EMBEDDING_KEY] = torch.cat([weight, torch.randn(1, weight.shape[1])])
    cost = {"0.weight": torch.randn(128, 128), "0.bias": torch.zeros(128), "2.weight": torch.randn(128, 128),
            "2.bias": torch.zeros(128)}
    payload = {"epoch": 9, "net": net, "cost_function": cost, "best_rsum": 400.5, "opt": _family_opt(config, "L2RM")}
    with atomic_path(path, CHECKPOINT) as tmp:
        torch.save(payload, tmp)
    return path
