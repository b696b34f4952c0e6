"""Training batches: every caption is a sample, with its image's regions and the batch's semantics.

Image rows are read from the memory-mapped split one sample at a time; the TF-IDF matrix is
fitted once on the split's captions and kept sparse, so each batch's B x B relevance matrix
comes from B sparse rows (the original densified the whole COCO train matrix, > 50 GB).
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from bench.common.distributed import WorldInfo
from bench.model.encode import pad_tokens
from bench.common.errors import BenchError
from bench.data.semantics import CAPTIONS_PER_IMAGE, consecutive_groups, fit_tfidf, image_profiles, relevance_block
from bench.data.splits import Split
from bench.data.vocab import Vocabulary


class TrainingSemantics:
    """Sparse TF-IDF rows of a split's captions and each image's mean row."""

    def __init__(self, texts: list[str]):
        self.tfidf = fit_tfidf(texts)
        self.profiles = image_profiles(self.tfidf, consecutive_groups(len(texts) // CAPTIONS_PER_IMAGE))

    def block(self, caption_indices: np.ndarray) -> np.ndarray:
        """float32 (B, B): [i, j] = relevance of sample i's image and sample j's caption."""
        caption_indices = np.asarray(caption_indices)
        return relevance_block(self.profiles[caption_indices // CAPTIONS_PER_IMAGE], self.tfidf, caption_indices)

    def nbytes(self) -> int:
        return sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in (self.tfidf, self.profiles))


class CaptionSamples(Dataset):
    """Sample k = (regions of image k // 5, token ids of caption k, k)."""

    def __init__(self, split: Split, vocab: Vocabulary):
        self.split = split
        self.vocab = vocab

    def __len__(self) -> int:
        return self.split.n_captions

    def __getitem__(self, k: int):
        image = k // CAPTIONS_PER_IMAGE
        regions = self.split.image_rows(image, image + 1)[0]
        return regions, self.vocab.encode(self.split.captions[k]), k


@dataclass
class Batch:
    regions: torch.Tensor  # (B, R, D) float32
    tokens: torch.Tensor  # (B, L) int64, <pad> = 0
    lengths: torch.Tensor  # (B,) int64, descending
    indices: torch.Tensor  # (B,) caption index of each sample
    sems: torch.Tensor  # (B, B) float32

    def to(self, device: torch.device) -> "Batch":
        moved = {f.name: getattr(self, f.name).to(device, non_blocking=True) for f in dataclasses.fields(self)}
        moved["lengths"] = self.lengths  # packed GRU input wants lengths on the CPU
        return Batch(**moved)


class CollateBatch:
    """Sort a batch by caption length (packed GRU input) and attach its semantic matrix."""

    def __init__(self, semantics: TrainingSemantics):
        self.semantics = semantics

    def __call__(self, samples) -> Batch:
        samples = sorted(samples, key=lambda sample: len(sample[1]), reverse=True)
        regions = torch.from_numpy(np.stack([s[0] for s in samples]))
        tokens, lengths = pad_tokens([s[1] for s in samples])
        indices = np.array([s[2] for s in samples], dtype=np.int64)
        sems = torch.from_numpy(self.semantics.block(indices))
        return Batch(regions, tokens, lengths, torch.from_numpy(indices), sems)


def training_loader(split: Split, vocab: Vocabulary, semantics: TrainingSemantics, world: WorldInfo, *,
                    batch_size: int, workers: int, seed: int) -> DataLoader:
    """Shuffled by a DistributedSampler (also for one process): the order depends on seed and epoch only."""
    samples = CaptionSamples(split, vocab)
    sampler = DistributedSampler(samples, num_replicas=world.world_size, rank=world.rank, shuffle=True, seed=seed)
    return DataLoader(samples, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=CollateBatch(semantics), pin_memory=torch.cuda.is_available(),
                      persistent_workers=workers > 0)


def validation_subset(split: Split, n_captions: int | None) -> Split:
    """The first `n_captions` captions of a split and their images (COCO validates on 5,000)."""
    if n_captions is None or n_captions >= split.n_captions:
        return split
    if n_captions <= 0 or n_captions % CAPTIONS_PER_IMAGE:
        raise BenchError(f"--val-captions {n_captions}: must be a positive multiple of {CAPTIONS_PER_IMAGE}")
    rows = n_captions // CAPTIONS_PER_IMAGE * split.rows_per_image
    ids = None if split.ids is None else split.ids[:rows]
    return dataclasses.replace(split, features=split.features[:rows], captions=split.captions[:n_captions], ids=ids)
