"""Small SCAN-format datasets, generated (checkpoints: bench/model/random_weights.py).

Used by `make demo` (no downloads) and by the tests. The data has learnable structure:
each image shows a few concepts, its region features mix those concepts' prototypes, and
its captions name them among filler words, so a trained model beats chance clearly.
"""

import json
from pathlib import Path

import numpy as np

SPECIAL = ["<pad>", "<start>", "<end>", "<unk>"]
CONCEPTS = [
    "dog", "cat", "horse", "bike", "car", "train", "boat", "plane", "pizza", "cake", "tree",
    "beach", "snow", "street", "kite", "clock", "bed", "table", "phone", "ball", "surfboard",
    "umbrella", "giraffe", "zebra", "elephant", "bus", "bench", "sheep", "cow", "bird",
]
FILLER = ["a", "the", "of", "on", "in", "with", "is", "and", "two", "near", "next", "to", "man",
          "woman", "people", "sitting", "standing", "holding", "large", "small", "white", "red"]


GENERATED_SUFFIX = "_generated.json"  # <split>_generated.json beside a generated split's files


def mark_generated(directory: Path, split: str, generator: str) -> None:
    """Say in the split itself that its data is generated, so any evaluation of it (a checkpoint's or
    another model's scores) is kept apart from runs on the real datasets, whoever produced the scores."""
    (directory / f"{split}{GENERATED_SUFFIX}").write_text(json.dumps({"generated_by": generator}) + "\n",
                                                         encoding="utf-8")


def generated_by(directory: Path, split: str) -> str | None:
    """The generator named in a split's marker; None for a split without one (real data)."""
    marker = directory / f"{split}{GENERATED_SUFFIX}"
    if not marker.is_file():
        return None
    try:
        return str(json.loads(marker.read_text(encoding="utf-8")).get("generated_by") or "unnamed generator")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return "unreadable marker"  # still generated: a damaged marker must not put a run on a leaderboard


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


def write_tsv_split(directory: Path, split: str, n_images: int, *, img_dim: int = 40, regions: int = 36,
                    seed: int = 0) -> None:
    """NCR's CC152K layout: `{split}_ims.npy` (a row per image) and `{split}_caps.tsv` (image id, caption,
    url; CRLF line ends, as the public test file has), one caption per image."""
    scan = directory / f".{split}_scan"
    write_split(scan, split, n_images, img_dim=img_dim, regions=regions, rows_per_caption=False, seed=seed)
    captions = (scan / f"{split}_caps.txt").read_text().splitlines()[::5]
    lines = [f"cc{seed}_{i:06d}\t{caption}\thttps://example.invalid/{i}.jpg" for i, caption in enumerate(captions)]
    directory.mkdir(parents=True, exist_ok=True)
    (scan / f"{split}_ims.npy").replace(directory / f"{split}_ims.npy")
    for leftover in scan.iterdir():
        leftover.unlink()
    scan.rmdir()
    (directory / f"{split}_caps.tsv").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
