"""The batched engine against the per-caption reference path and the original's golden scores."""

import numpy as np
import pytest
import torch

from bench.data.splits import load_split
from bench.data.vocab import Vocabulary
from bench.eval.scoring import score_matrix
from bench.model.checkpoint import build_model, read_checkpoint
from bench.model.encode import encode_captions, encode_images
from bench.model.engine import pair_scores
from bench.model.random_weights import random_model, small_config
from bench.model.reference_loop import caption_scores, reference_scores
from bench.perf.gpu_correctness import GOLDEN_CASES  # the four golden checkpoints, one list for the suite and gpu-check


def _embed(model, split, vocab_path):
    device = torch.device("cpu")
    img = encode_images(model, split, device)
    cap, lens = encode_captions(model, Vocabulary.load(vocab_path), split.captions, device)
    return img, cap, lens


@pytest.mark.parametrize("dataset,split_name,module", GOLDEN_CASES)
def test_both_paths_reproduce_the_original_scores(golden_dir, golden_expected, dataset, split_name, module):
    model = build_model(read_checkpoint(golden_dir / f"{dataset}_{module}.pth.tar"))
    split = load_split(golden_dir, f"{dataset}_precomp", split_name)
    img, cap, lens = _embed(model, split, golden_dir / "vocab" / f"{dataset}_precomp_vocab.json")
    expected = golden_expected[f"{dataset}_{module}/sims"]
    batched = score_matrix(model, img, cap, lens, image_shard=7, caption_chunk=3)
    reference = reference_scores(model.sim_enc, img, cap, lens).numpy()
    assert batched.shape == expected.shape
    assert np.abs(batched - expected).max() < 1e-5
    assert np.abs(reference - expected).max() < 1e-5
    assert np.abs(batched - reference).max() < 2e-6


def _random_inputs(config, n_images, lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    img = torch.randn(n_images, config.num_regions, config.embed_size, generator=gen)
    img = torch.nn.functional.normalize(img, dim=-1)
    cap = torch.zeros(len(lengths), max(lengths), config.embed_size)
    for j, n in enumerate(lengths):
        cap[j, :n] = torch.nn.functional.normalize(torch.randn(n, config.embed_size, generator=gen), dim=-1)
    return img, cap, torch.tensor(lengths)


@pytest.mark.parametrize("module", ["SGR", "SAF"])
@pytest.mark.parametrize("n_images", [1, 9])
def test_mixed_lengths_match_reference(module, n_images):
    config = small_config(module, "coco_precomp", 50)
    model = random_model(config, seed=3, score_spread=20.0)
    lengths = [5, 3, 9, 5, 12, 3, 4, 9, 7, 2]
    img, cap, lens = _random_inputs(config, n_images, lengths)
    batched = score_matrix(model, img, cap, lens, image_shard=4, caption_chunk=2)
    reference = reference_scores(model.sim_enc, img, cap, lens).numpy()
    assert batched.shape == (n_images, len(lengths))
    assert np.abs(batched - reference).max() < 2e-6
    assert batched.std() > 1e-3  # the spread makes the comparison meaningful


def test_padding_never_leaks_into_scores():
    """Garbage written past a caption's length must not change any score."""
    config = small_config("SGR", "coco_precomp", 50)
    model = random_model(config, seed=4, score_spread=20.0)
    img, cap, lens = _random_inputs(config, 4, [3, 6, 4])
    noisy = cap.clone()
    for j, n in enumerate(lens.tolist()):
        noisy[j, n:] = 5.0
    clean = score_matrix(model, img, cap, lens)
    assert np.array_equal(clean, score_matrix(model, img, noisy, lens))


def test_pair_scores_is_differentiable_and_matches_in_float64():
    config = small_config("SAF", "coco_precomp", 50)
    model = random_model(config, seed=5, score_spread=20.0).double()
    img, cap, lens = _random_inputs(config, 5, [4, 2, 4, 6])
    img, cap = img.double().requires_grad_(), cap.double()
    scores = pair_scores(model.sim_enc, img, cap, lens, caption_chunk=1)
    reference = reference_scores(model.sim_enc, img.detach(), cap, lens)
    assert torch.allclose(scores.detach(), reference, atol=1e-12)
    scores.sum().backward()
    assert torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0


def test_saf_training_batch_norm_is_per_caption():
    """In training mode SAF's BN uses each caption's own statistics and updates the running
    statistics once per caption in batch order, like the original's per-caption loop."""
    config = small_config("SAF", "coco_precomp", 50)
    batched_model = random_model(config, seed=6, score_spread=20.0).double().sim_enc
    looped_model = random_model(config, seed=6, score_spread=20.0).double().sim_enc
    img, cap, lens = _random_inputs(config, 6, [3, 5, 3, 2])
    img, cap = img.double(), cap.double()
    img_glo = batched_model.v_global_w(img)
    batched_model.SAF_module.train()
    looped_model.SAF_module.train()
    batched = pair_scores(batched_model, img, cap, lens, img_glo=img_glo).detach()
    for j, n in enumerate(lens.tolist()):
        assert torch.allclose(caption_scores(looped_model, img, img_glo, cap[j, :n]), batched[:, j], atol=1e-12)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.allclose(getattr(batched_model.SAF_module.bn, name).double(),
                              getattr(looped_model.SAF_module.bn, name).double(), atol=1e-12)
