"""Training batches: right image rows, length order, semantics equal to the dense definition."""

import numpy as np
import pytest
import torch

from bench.common.distributed import WorldInfo
from bench.common.errors import BenchError
from bench.data.semantics import fit_tfidf
from bench.data.splits import load_split
from bench.data.vocab import Vocabulary
from bench.demo import DATA_NAME, DemoPlan, write_demo_data
from bench.perf.semantics_bench import generated_corpus, measure_semantics_memory
from bench.training.batches import CaptionSamples, CollateBatch, TrainingData, TrainingSemantics, caption_subset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    write_demo_data(root, DemoPlan(train_images=12, dev_images=4, test_images=5, regions=3))
    return root


@pytest.fixture(scope="module")
def vocab(root):
    return Vocabulary.load(root / "vocab" / f"{DATA_NAME}_vocab.json")


def dense_relevance(texts: list[str], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The data.md definition written densely: mean over image i's 5 captions of tfidf . tfidf."""
    tfidf = fit_tfidf(texts).toarray()
    images = tfidf.reshape(-1, 5, tfidf.shape[1]).mean(axis=1)
    return images[rows // 5] @ tfidf[cols].T


@pytest.mark.parametrize("split_name", ["train", "dev"])  # one row per image / one row per caption
def test_batch_rows_order_and_semantics(root, vocab, split_name):
    split = load_split(root, DATA_NAME, split_name)
    semantics = TrainingSemantics(split.texts)
    samples = CaptionSamples(split, vocab)
    picked = [0, 7, 13, 19, 4, 9]
    batch = CollateBatch(semantics)([samples[k] for k in picked])
    lengths = batch.lengths.tolist()
    assert lengths == sorted(lengths, reverse=True)
    indices = batch.indices.numpy()
    assert sorted(indices.tolist()) == sorted(picked)
    for row, k in enumerate(indices):
        expected = np.asarray(split.features[(k // 5) * split.rows_per_image])
        np.testing.assert_array_equal(batch.regions[row].numpy(), expected)
        assert batch.tokens[row, : lengths[row]].tolist() == vocab.encode(split.captions[k])
        assert (batch.tokens[row, lengths[row]:] == 0).all()
    reference = dense_relevance(split.texts, indices, indices)
    np.testing.assert_allclose(batch.sems.numpy(), reference, rtol=1e-6, atol=1e-7)
    assert batch.sems.dtype == torch.float32


def test_processes_see_disjoint_shares(root, vocab):
    split = load_split(root, DATA_NAME, "train")
    semantics = TrainingSemantics(split.texts)
    seen = []
    for rank in range(2):
        data = TrainingData(split, vocab, semantics, WorldInfo(rank, rank, 2), batch_size=8, workers=0, seed=1)
        seen.append(np.concatenate([batch.indices.numpy() for batch in data.loader(0)]))
    assert len(seen[0]) == len(seen[1]) == 30
    assert sorted(np.concatenate(seen).tolist()) == list(range(60))


def test_validation_subset_takes_the_first_captions(root):
    dev = load_split(root, DATA_NAME, "dev")  # one row per caption
    subset = caption_subset(dev, 10, "--val-captions")
    assert subset.n_images == 2 and subset.captions == dev.captions[:10] and subset.features.shape[0] == 10
    assert caption_subset(dev, None, "--val-captions") is dev
    with pytest.raises(BenchError, match="--val-captions 7: must be a positive multiple of 5"):
        caption_subset(dev, 7, "--val-captions")


def test_semantics_memory_benchmark_small():
    result = measure_semantics_memory(n_captions=3000, batches=3, batch_size=64)
    assert result["ok"] and 0 < result["peak_mb"] < 100 and result["n_terms"] > 500
    assert len(generated_corpus(10)) == 10


@pytest.mark.parametrize("features", ["h5", "npy"])
def test_spawned_loader_workers_give_the_batches_of_workers_0(root, vocab, tmp_path, features):
    """Workers started by `spawn` (no fork) open the features themselves: an h5py dataset cannot be
    pickled, and a pickled memmap would copy all its data to every worker."""
    import shutil

    import h5py
    from torch.utils.data import DataLoader

    directory = tmp_path / DATA_NAME
    shutil.copytree(root / DATA_NAME, directory)
    if features == "h5":
        raw = np.load(directory / "train_ims.npy")
        with h5py.File(directory / "train.h5", "w") as handle:
            handle.create_dataset("feat", data=raw)
        (directory / "train_ims.npy").unlink()
    split = load_split(tmp_path, DATA_NAME, "train")
    data = TrainingData(split, vocab, TrainingSemantics(split.texts), WorldInfo(), batch_size=8, workers=0, seed=2)
    data.batches.set_epoch(0)
    alone = list(DataLoader(data.samples, batch_sampler=data.batches, collate_fn=data.collate))
    spawned = list(DataLoader(data.samples, batch_sampler=data.batches, collate_fn=data.collate, num_workers=1,
                              multiprocessing_context="spawn"))
    assert len(spawned) == len(alone) == 8
    for ours, theirs in zip(spawned, alone):
        for name in ("regions", "tokens", "lengths", "indices", "sems"):
            assert torch.equal(getattr(ours, name), getattr(theirs, name)), name
    assert split.features is not None  # pickling for the workers left this process's split open


def test_batches_can_be_pinned(root, vocab, monkeypatch):
    """DataLoader(pin_memory=True) pins what has a pin_memory(); a plain dataclass stayed pageable."""
    from torch.utils.data._utils.pin_memory import pin_memory

    split = load_split(root, DATA_NAME, "train")
    batch = CollateBatch(TrainingSemantics(split.texts))([CaptionSamples(split, vocab)[k] for k in range(4)])
    pinned_ids = []

    def fake_pin(tensor, *args):  # no CUDA here: record the call, copy the data
        pinned_ids.append(id(tensor))
        return tensor.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    pinned = pin_memory(batch)
    assert isinstance(pinned, type(batch)) and pinned is not batch and len(pinned_ids) == 5
    assert all(torch.equal(getattr(pinned, name), getattr(batch, name)) for name in ("regions", "tokens", "sems"))
