"""Training batches: every caption is a sample, with its image's regions and the batch's semantics.

Image rows are read from the memory-mapped split one sample at a time; the TF-IDF matrix is
fitted once on the split's captions and kept sparse, so each batch's B x B relevance matrix
comes from B sparse rows (the original densified the whole COCO train matrix, > 50 GB).
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from bench.common.distributed import WorldInfo
from bench.common.errors import BenchError
from bench.data.semantics import consecutive_groups, fit_tfidf, image_profiles, relevance_block
from bench.data.splits import CAPTIONS_PER_IMAGE, Split, open_feature_file
from bench.data.vocab import Vocabulary
from bench.model.encode import pad_tokens
from bench.training.settings import batches_per_epoch


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
    """Sample k = (regions of image k // 5, token ids of caption k, k).

    Loader workers started by `spawn` or `forkserver` (Python 3.14's Linux default, common on CUDA
    nodes) receive this dataset pickled: without its open feature array (pickling a memmap copies
    all its data, an h5py dataset cannot be pickled), which each worker opens again on its first
    sample. A caption subset is a prefix of the file, so the whole file serves it unchanged.
    """

    def __init__(self, split: Split, vocab: Vocabulary):
        self.split = split
        self.vocab = vocab

    def __getstate__(self) -> dict:
        return {**self.__dict__, "split": dataclasses.replace(self.split, features=None)}

    def __len__(self) -> int:
        return self.split.n_captions

    def __getitem__(self, k: int):
        if self.split.features is None:
            self.split = dataclasses.replace(self.split, features=open_feature_file(self.split.feature_path))
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

    def pin_memory(self) -> "Batch":
        """Page-locked copies (DataLoader's pin_memory=True calls this), so that `to` copies asynchronously."""
        return Batch(**{f.name: getattr(self, f.name).pin_memory() for f in dataclasses.fields(self)})

    def to(self, device: torch.device) -> "Batch":
        moved = {f.name: getattr(self, f.name).to(device, non_blocking=True) for f in dataclasses.fields(self)}
        moved["lengths"] = self.lengths  # packed GRU input wants lengths on the CPU
        return Batch(**moved)


class CollateBatch:
    """Sort a batch by caption length, longest first, ties in sampler order (the original's collate and
    what packed GRU input needs), and attach its relevance matrix from the provider."""

    def __init__(self, relevance):
        self.relevance = relevance

    def __call__(self, samples) -> Batch:
        samples = sorted(samples, key=lambda sample: len(sample[1]), reverse=True)  # stable
        regions = torch.from_numpy(np.stack([s[0] for s in samples]))
        tokens, lengths = pad_tokens([s[1] for s in samples])
        indices = np.array([s[2] for s in samples], dtype=np.int64)
        sems = torch.from_numpy(np.asarray(self.relevance.block(indices)))
        return Batch(regions, tokens, lengths, torch.from_numpy(indices), sems)


class EpochBatches(Sampler):
    """This process's batches of one epoch, in DistributedSampler order (seed, epoch; also for one
    process, where epoch 0 with seed 0 is the original's order).

    A last batch of a single caption is merged into the one before (batch norms cannot train on
    one sample); `skip` starts after that many batches, for a mid-epoch resume.
    """

    def __init__(self, samples: Dataset, world: WorldInfo, batch_size: int, seed: int):
        self.sampler = DistributedSampler(samples, num_replicas=world.world_size, rank=world.rank, shuffle=True,
                                          seed=seed)
        self.batch_size = batch_size
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.skip = skip

    def epoch_batches(self) -> list[list[int]]:
        indices = list(self.sampler)
        batches = [indices[start:start + self.batch_size] for start in range(0, len(indices), self.batch_size)]
        if len(batches) > 1 and len(batches[-1]) == 1:
            last = batches.pop()
            batches[-1].extend(last)
        return batches

    def per_epoch(self) -> int:
        return batches_per_epoch(len(self.sampler), self.batch_size)

    def __iter__(self):
        return iter(self.epoch_batches()[self.skip:])

    def __len__(self) -> int:
        return self.per_epoch() - self.skip


class TrainingData:
    """Samples, batches and collate of a training split; one DataLoader per epoch.

    Each epoch's loader draws its worker seeds from its own generator seeded by (seed, epoch,
    rank), never from the global RNG that dropout uses: a resumed run (at an epoch start or mid
    epoch, with any number of workers) repeats the uninterrupted run's random streams exactly.
    """

    def __init__(self, split: Split, vocab: Vocabulary, relevance, world: WorldInfo, *, batch_size: int,
                 workers: int, seed: int):
        self.samples = CaptionSamples(split, vocab)
        self.batches = EpochBatches(self.samples, world, batch_size, seed)
        self.collate = CollateBatch(relevance)
        self.workers, self.seed, self.rank = workers, seed, world.rank

    def loader(self, epoch: int, skip: int = 0) -> DataLoader:
        self.batches.set_epoch(epoch, skip)
        worker_seed = int(np.random.SeedSequence([self.seed, epoch, self.rank]).generate_state(1)[0])
        return DataLoader(self.samples, batch_sampler=self.batches, num_workers=self.workers,
                          collate_fn=self.collate, pin_memory=torch.cuda.is_available(),
                          generator=torch.Generator().manual_seed(worker_seed))


def caption_subset(split: Split, n_captions: int | None, flag: str) -> Split:
    """The first `n_captions` captions of a split and their images (COCO validates on 5,000)."""
    if n_captions is None or n_captions >= split.n_captions:
        return split
    if n_captions <= 0 or n_captions % CAPTIONS_PER_IMAGE:
        raise BenchError(f"{flag} {n_captions}: must be a positive multiple of {CAPTIONS_PER_IMAGE}")
    rows = n_captions // CAPTIONS_PER_IMAGE * split.rows_per_image
    ids = None if split.ids is None else split.ids[:rows]
    return dataclasses.replace(split, features=split.features[:rows], captions=split.captions[:n_captions], ids=ids)
