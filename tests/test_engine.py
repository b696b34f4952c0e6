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


def test_sgr_training_gradients_through_the_fold_equal_the_originals():
    """Training folds SGR's query and key Linears (and moves the update Linear before the edge product):
    every parameter's gradient equals the per-caption original's in float64, and the key bias, which
    the fold would drop, keeps its numerically zero gradient, so Adam sees the same set of parameters."""
    from bench.model.reference_loop import reference_columns

    config = small_config("SGR", "coco_precomp", 50)
    folded = random_model(config, seed=8, score_spread=20.0).double().sim_enc
    original = random_model(config, seed=8, score_spread=20.0).double().sim_enc
    gen = torch.Generator().manual_seed(9)
    with torch.no_grad():  # the biases the fold rearranges must not be zero, or the check is weak
        for ours_step, their_step in zip(folded.SGR_module, original.SGR_module):
            for name in ("graph_query_w", "graph_key_w", "sim_graph_w"):
                bias = 0.3 * torch.randn(config.sim_dim, generator=gen, dtype=torch.float64)
                getattr(ours_step, name).bias.copy_(bias)
                getattr(their_step, name).bias.copy_(bias)
    img, cap, lens = _random_inputs(config, 5, [4, 2, 4, 6, 3])
    img, cap = img.double(), cap.double()
    ours = pair_scores(folded, img, cap, lens, caption_chunk=2)
    theirs = reference_columns(original, img, cap, lens)
    assert torch.allclose(ours, theirs, atol=1e-12)
    weights = torch.linspace(-1, 1, ours.numel(), dtype=torch.float64).view_as(ours)  # a loss that uses every pair
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    named = dict(original.named_parameters())
    for name, parameter in folded.named_parameters():
        if name.endswith("graph_key_w.bias"):
            assert parameter.grad is not None and parameter.grad.abs().max() < 1e-12, name
            continue
        expected = named[name].grad
        assert parameter.grad is not None and expected is not None, name
        assert torch.allclose(parameter.grad, expected, rtol=1e-9, atol=1e-12), name


def _plain_local_alignment(attention, regions, words, weight, bias):
    """The chain as separate autograd operations: the definition LocalAlignment must equal."""
    from bench.model.network import l2norm

    context = torch.bmm(attention, regions).view(regions.shape[0], *words.shape[:2], regions.shape[2])
    return torch.nn.functional.linear((l2norm(context) - words) ** 2, weight, bias)


def _local_alignment_inputs(dtype=torch.float64, seed=11):
    """3 images x 2 captions x 4 words, 5 regions, E = 6, S = 3, one zero context row (a zero attention
    row: autograd gives its norm a zero gradient there)."""
    gen = torch.Generator().manual_seed(seed)
    attention = torch.softmax(torch.randn(3, 2 * 4, 5, generator=gen, dtype=dtype), dim=-1)
    attention[1, 2] = 0.0
    shapes = [(3, 5, 6), (2, 4, 6), (3, 6), (3,)]  # regions, words, weight, bias
    return [attention, *(torch.randn(*shape, generator=gen, dtype=dtype) for shape in shapes)]


@pytest.mark.parametrize("block_bytes", [1, 1 << 30])  # one image per block; all images in one
def test_local_alignment_has_autograds_values_and_gradients(monkeypatch, block_bytes):
    """The blocked forward and hand-written backward against autograd over the plain chain, in float64:
    every input's gradient, words broadcast over images, a zero context row included."""
    from bench.model import local_alignment as module

    monkeypatch.setattr(module, "CPU_BLOCK_BYTES", block_bytes)
    inputs = _local_alignment_inputs()
    upstream = torch.randn(3, 2, 4, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ours = [t.clone().requires_grad_() for t in inputs]
    plain = [t.clone().requires_grad_() for t in inputs]
    value = module.local_alignment(*ours)
    expected = _plain_local_alignment(*plain)
    got_grads = torch.autograd.grad((value * upstream).sum(), ours)
    want_grads = torch.autograd.grad((expected * upstream).sum(), plain)
    assert torch.allclose(value, expected, rtol=1e-12, atol=1e-13)
    for got, want in zip(got_grads, want_grads):
        assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # evaluation: the same blocked forward, nothing kept
        assert torch.allclose(module.local_alignment(*inputs), expected.detach(), rtol=1e-12, atol=1e-13)


def test_local_alignment_blocks_images_on_a_cpu_and_not_on_a_gpu():
    """Full size (8 captions x 17 words x E = 1024, float32: 557 KB per image): a CPU takes a few images
    per block, every image exactly once; a GPU takes all 128 at once."""
    from bench.model.local_alignment import CPU_BLOCK_BYTES, image_blocks

    per_image = 8 * 17 * 1024 * 4
    blocks = image_blocks(128, per_image, torch.device("cpu"))
    assert 1 < len(blocks) < 128
    assert all((b.stop - b.start) * per_image <= CPU_BLOCK_BYTES for b in blocks)
    assert torch.cat([torch.arange(128)[b] for b in blocks]).tolist() == list(range(128))
    assert image_blocks(128, per_image, torch.device("cuda")) == [slice(0, 128)]


def test_local_alignment_passes_gradcheck(monkeypatch):
    from bench.model import local_alignment as module

    monkeypatch.setattr(module, "CPU_BLOCK_BYTES", 800)  # two images per block, the last block short
    inputs = _local_alignment_inputs(seed=3)
    inputs[0][1, 2] = 0.2  # finite differences need a point where the norm is smooth
    assert torch.autograd.gradcheck(module.LocalAlignment.apply, [t.requires_grad_() for t in inputs])


def test_local_alignment_under_bf16_autocast_computes_its_linear_in_bf16():
    """As the plain chain under autocast: the attention part in float32, the Linear in bf16 (forward
    and backward), the gradients back in the inputs' dtypes and close to float32's."""
    from bench.model.local_alignment import local_alignment

    inputs = [t.float() for t in _local_alignment_inputs()]
    fp32 = [t.clone().requires_grad_() for t in inputs]
    bf16 = [t.clone().requires_grad_() for t in inputs]
    expected = local_alignment(*fp32)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        value = local_alignment(*bf16)
        plain = _plain_local_alignment(*inputs)
    assert value.dtype == plain.dtype == torch.bfloat16
    assert torch.allclose(value.float(), expected, rtol=0.02, atol=0.02)
    value.float().sum().backward()
    expected.sum().backward()
    for low, high in zip(bf16, fp32):
        assert low.grad.dtype == torch.float32
        assert torch.allclose(low.grad, high.grad, rtol=0.05, atol=0.05)
