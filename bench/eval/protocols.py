"""The paper's evaluation protocols: which split, and which folds (the one home of the COCO 1K folds).

COCO 1K scores five folds of n/5 images (only the diagonal blocks) and averages every metric
over them; COCO 5K, Flickr30K 1K and CC152K 1K (one caption per image) score one
matrix. Light on purpose (numpy only): the
CLI's `--help` reads the protocol names from here. The metrics are in protocol_metrics.
"""

from dataclasses import dataclass

import numpy as np

from bench.common.errors import BenchError
from bench.data.splits import CAPTIONS_PER_IMAGE

DIRECTIONS = ("i2t", "t2i")  # image-to-text, text-to-image: the key of every per-direction figure


@dataclass(frozen=True)
class Protocol:
    """One table column group of the paper: a dataset split scored whole or in folds."""

    name: str
    dataset: str  # "coco" | "f30k" | "cc152k"
    data_dir: str  # SCAN folder under the data root (NCR's for CC152K)
    split: str
    folds: int = 1
    captions_per_image: int = CAPTIONS_PER_IMAGE  # 1 for CC152K


PROTOCOLS = {p.name: p for p in (
    Protocol("f30k-1k", "f30k", "f30k_precomp", "test"),
    Protocol("coco-1k", "coco", "coco_precomp", "testall", folds=5),
    Protocol("coco-5k", "coco", "coco_precomp", "testall"),
    Protocol("cc152k-1k", "cc152k", "cc152k_precomp", "test", captions_per_image=1),
)}
PROTOCOL_NAMES = tuple(PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise BenchError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def protocol_split(protocol: Protocol, data_root, features: bool = True):
    """The protocol's Split: SCAN's files, or NCR's CC152K layout; `features=False`: captions and ids only.
    (Imported here, not at the top, so that `--help` reading the protocol names stays light.)"""
    from bench.data.cc152k import load_tsv_split
    from bench.data.splits import load_split, load_text_split

    if protocol.captions_per_image == 1:
        return load_tsv_split(data_root, protocol.data_dir, protocol.split, features)
    return (load_split if features else load_text_split)(data_root, protocol.data_dir, protocol.split)


def fold_of(protocol: Protocol, index: int, n_items: int) -> int:
    """The fold that item `index` of `n_items` (images or captions, in split order) belongs to."""
    return index * protocol.folds // n_items


def fold_slice(protocol: Protocol, fold: int, n_items: int) -> slice:
    """Items of one fold along one axis: fold k holds items k*n/F .. (k+1)*n/F - 1."""
    size = n_items // protocol.folds
    return slice(fold * size, (fold + 1) * size)


def fold_bounds(protocol: Protocol, n_images: int) -> list[tuple[slice, slice]]:
    """(image rows, caption columns) of each fold; fold k holds images k*n/F .. (k+1)*n/F - 1."""
    if n_images <= 0 or n_images % protocol.folds:
        raise BenchError(f"{protocol.name} needs a number of images divisible by {protocol.folds}, "
                         f"got {n_images}")
    n_captions = n_images * protocol.captions_per_image
    return [(fold_slice(protocol, k, n_images), fold_slice(protocol, k, n_captions))
            for k in range(protocol.folds)]


def split_bounds(protocol: Protocol, n_images: int) -> list[tuple[slice, slice]] | None:
    """The blocks to score: each fold's diagonal block, or None for the whole matrix."""
    return fold_bounds(protocol, n_images) if protocol.folds > 1 else None


def fold_blocks(protocol: Protocol, sims: np.ndarray) -> list[np.ndarray]:
    """Each fold's (images x captions) block, from a full matrix or from stacked fold blocks."""
    sims = np.asarray(sims)
    if sims.ndim == 3 and sims.shape[0] == protocol.folds:
        return list(sims)
    if sims.ndim != 2:
        raise BenchError(f"{protocol.name} takes an (n_images, n_captions) score matrix or "
                         f"({protocol.folds}, n_images/{protocol.folds}, n_captions/{protocol.folds}) "
                         f"fold blocks; got shape {sims.shape}")
    return [sims[images, captions] for images, captions in fold_bounds(protocol, sims.shape[0])]


def saved_matrix(protocol: Protocol, sims: np.ndarray) -> np.ndarray:
    """The --save-sims layout: float32 (n_images, n_captions), or stacked fold blocks for coco-1k."""
    if protocol.folds == 1:
        return np.asarray(sims, dtype=np.float32)
    return np.stack(fold_blocks(protocol, sims)).astype(np.float32, copy=False)
