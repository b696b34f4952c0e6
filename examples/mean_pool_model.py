"""A retrieval model that is not SGRAF, put on daa-bench's yardstick through `eval --scores`.

Mean-pooled word vectors against mean-pooled region features, each mapped into one space,
scored by a dot product, trained for a fixed number of steps (so its scores do not depend on the
machine's speed) with a contrastive loss on a split's training data. It stands for any model of
yours: daa-bench never runs it, it only reads the score matrix.

    python -m bench order --protocol f30k-1k --data-root data/demo --out results/order.csv
    python examples/mean_pool_model.py --data-root data/demo --order results/order.csv \
        --out results/meanpool.npy
    python -m bench eval --scores results/meanpool.npy --model-name MeanPool --protocol f30k-1k \
        --data-root data/demo --json results/demo-meanpool.json

The scores follow the order file: row i is the image of index i, column j the caption of index j.
"""

import argparse
import csv
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import bench
from bench.data.splits import CAPTIONS_PER_IMAGE


def words(text: str) -> list[str]:
    return text.lower().replace(".", " ").replace(",", " ").split()


class MeanPoolModel(torch.nn.Module):
    """Word vectors and region features, each mean-pooled and projected; scores are dot products."""

    def __init__(self, vocabulary: list[str], img_dim: int, dim: int = 64):
        super().__init__()
        self.index = {word: i + 1 for i, word in enumerate(vocabulary)}  # 0: a word never seen in training
        self.words = torch.nn.EmbeddingBag(len(vocabulary) + 1, dim, mode="mean")
        self.regions = torch.nn.Linear(img_dim, dim)

    def embed_captions(self, captions: list[str]) -> torch.Tensor:
        ids = [torch.tensor([self.index.get(w, 0) for w in words(c)] or [0]) for c in captions]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        return F.normalize(self.words(torch.cat(ids), offsets), dim=-1)

    def embed_images(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.regions(features.mean(dim=1)), dim=-1)


def train(split, steps: int = 300, batch: int = 64, seed: int = 0) -> MeanPoolModel:
    """A symmetric InfoNCE loss over batches of (caption, its image) pairs, for `steps` optimizer steps."""
    torch.manual_seed(seed)
    texts = split.texts
    vocabulary = sorted({w for t in texts for w in words(t)})
    features = torch.from_numpy(split.image_rows(0, split.n_images))
    model = MeanPoolModel(vocabulary, features.shape[-1])
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        captions = rng.choice(len(texts), size=min(batch, len(texts)), replace=False)
        images = model.embed_images(features[torch.from_numpy(captions // CAPTIONS_PER_IMAGE)])
        logits = images @ model.embed_captions([texts[c] for c in captions]).T / 0.05
        target = torch.arange(len(captions))
        loss = F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model


def read_order(path: Path) -> tuple[list[int], list[str]]:
    """Image indices and caption texts, in the order `bench order` wrote them."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    images = [int(r["index"]) for r in rows if r["kind"] == "image"]
    captions = [r["caption"] for r in rows if r["kind"] == "caption"]
    return images, captions


@torch.no_grad()
def score(model: MeanPoolModel, test_split, order: Path) -> np.ndarray:
    """The (images x captions) float32 matrix, rows and columns in the order file's order."""
    images, captions = read_order(order)
    features = torch.from_numpy(test_split.image_rows(0, test_split.n_images))[torch.tensor(images)]
    return (model.embed_images(features) @ model.embed_captions(captions).T).numpy().astype(np.float32, copy=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--data-root", type=Path, default=Path("data/demo"))
    parser.add_argument("--data-name", default="f30k_precomp", help="folder of the splits under the data root")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-split", default="test", help="the split the order file lists (f30k-1k: test)")
    parser.add_argument("--order", type=Path, required=True, help="CSV written by `python -m bench order`")
    parser.add_argument("--out", type=Path, required=True, help="score matrix to write (.npy)")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (default: 300)")
    args = parser.parse_args()
    model = train(bench.load_split(args.data_root, args.data_name, args.train_split), steps=args.steps)
    np.save(args.out, score(model, bench.load_split(args.data_root, args.data_name, args.test_split), args.order))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
