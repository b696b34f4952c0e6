"""Small SCAN-format datasets and published-format checkpoints, generated.

Used by `make demo` (no downloads) and by the tests. The data has learnable structure:
each image shows a few concepts, its region features mix those concepts' prototypes, and
its captions name them among filler words, so a trained model beats chance clearly.
"""

import json
from pathlib import Path

import numpy as np
import torch

from bench.checkpoint import save_checkpoint
from bench.config import ModelConfig
from bench.model import SimilarityModel, init_weights

SPECIAL = ["<pad>", "<start>", "<end>", "<unk>"]
CONCEPTS = [
    "dog", "cat", "horse", "bike", "car", "train", "boat", "plane", "pizza", "cake", "tree",
    "beach", "snow", "street", "kite", "clock", "bed", "table", "phone", "ball", "surfboard",
    "umbrella", "giraffe", "zebra", "elephant", "bus", "bench", "sheep", "cow", "bird",
]
FILLER = ["a", "the", "of", "on", "in", "with", "is", "and", "two", "near", "next", "to", "man",
          "woman", "people", "sitting", "standing", "holding", "large", "small", "white", "red"]


def vocabulary_words() -> list[str]:
    return SPECIAL + CONCEPTS + FILLER + [".", ","]


def write_vocab(path: Path) -> dict:
    """A SCAN-format vocabulary JSON: word2idx, idx2word (string keys) and idx."""
    words = vocabulary_words()
    vocab = {"word2idx": {w: i for i, w in enumerate(words)},
             "idx2word": {str(i): w for i, w in enumerate(words)}, "idx": len(words)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(vocab))
    return vocab


def _caption(rng: np.random.Generator, concepts: list[str]) -> str:
    length = int(rng.integers(3, 12))
    words = list(rng.choice(FILLER, size=length))
    for concept in concepts:
        if rng.random() < 0.8:
            words.insert(int(rng.integers(0, len(words) + 1)), concept)
    if rng.random() < 0.05:
        words.append("unseenword")
    return " ".join(words) + ("." if rng.random() < 0.5 else "")


def write_split(directory: Path, split: str, n_images: int, *, img_dim: int = 40, regions: int = 36,
                rows_per_caption: bool = True, seed: int = 0, first_id: int = 100000) -> None:
    """Write `{split}_ims.npy`, `{split}_caps.txt` and `{split}_ids.txt` in SCAN's layout."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(12345).normal(size=(len(CONCEPTS), img_dim)).astype(np.float32)
    images, captions, ids = [], [], []
    for i in range(n_images):
        chosen = rng.choice(len(CONCEPTS), size=int(rng.integers(1, 4)), replace=False)
        mix = prototypes[rng.choice(chosen, size=regions)] + 0.5 * rng.normal(size=(regions, img_dim))
        images.append(np.maximum(mix, 0).astype(np.float32))
        captions += [_caption(rng, [CONCEPTS[c] for c in chosen]) for _ in range(5)]
        ids.append(first_id + 7 * i)
    feats = np.stack(images)
    if rows_per_caption:
        feats, ids = np.repeat(feats, 5, axis=0), list(np.repeat(ids, 5))
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / f"{split}_ims.npy", feats)
    (directory / f"{split}_caps.txt").write_text("\n".join(captions) + "\n")
    (directory / f"{split}_ids.txt").write_text("\n".join(str(x) for x in ids) + "\n")


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
