"""SGRAF's local alignment, Linear((l2norm(attention @ regions) - words)^2), a few images at a time.

The chain runs over the (images x captions x words x E) tensor, the largest of a step. Written as
separate operations, every one of them writes a fresh tensor of that size (several in the backward),
and on a CPU a fresh tensor of tens of MB costs about ten times a pass over memory already in use
(page faults: 47-52 ms against 5 ms for a 71 MB multiply, docs/performance.md). Here the chain runs
over blocks of a few images whose temporaries stay in cache; the only full-size tensor is the unit
vectors kept for the backward. A GPU takes all images as one block. The value and the gradients are
the same formulas as autograd's over the plain chain, so they agree to float rounding
(tests/test_engine.py checks them in float64, and gradcheck).
"""

import torch
from torch.autograd.function import once_differentiable

from bench.model.network import EPS

CPU_BLOCK_BYTES = 4 << 20  # one block's (captions x words x E) slice: 2-8 MB measured level, 1 MB and one block slower


def image_blocks(n_images: int, image_slice_bytes: int, device: torch.device) -> list[slice]:
    """Slices of the image dimension: on a CPU about CPU_BLOCK_BYTES each, on a GPU one for all."""
    per_block = n_images if device.type != "cpu" else max(1, CPU_BLOCK_BYTES // max(image_slice_bytes, 1))
    return [slice(start, start + per_block) for start in range(0, n_images, per_block)]


def linear_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """The Linear's compute dtype: autocast's when it is on (bf16 training), else the inputs'."""
    return torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else dtype


def _forward(attention, regions, words, weight, bias, keep: bool):
    """(local (m, k, n, S) before its l2norm, in the Linear's dtype; unit vectors and norms when `keep`,
    else None). The attention part runs with autocast off, the Linear in autocast's dtype when it is on."""
    low = linear_dtype(regions.dtype, regions.device)
    with torch.autocast(device_type=regions.device.type, enabled=False):
        return _blocks_forward(attention, regions, words, weight, bias, low, keep)


def _blocks_forward(attention, regions, words, weight, bias, low: torch.dtype, keep: bool):
    """_forward's work, block by block over the images, the Linear in `low`."""
    m, k, n, dim = regions.shape[0], words.shape[0], words.shape[1], regions.shape[2]
    weight_t, bias = weight.to(low).T, bias.to(low)
    local = regions.new_empty(m, k, n, weight.shape[0], dtype=low)
    unit = regions.new_empty(m, k, n, dim) if keep else None
    norms = regions.new_empty(m, k, n, 1) if keep else None
    for block in image_blocks(m, k * n * dim * regions.element_size(), regions.device):
        into = unit[block].view(-1, k * n, dim) if keep else None  # the unit vectors are made in place
        context = torch.bmm(attention[block], regions[block], out=into).view(-1, k, n, dim)
        norm = torch.linalg.vector_norm(context, dim=-1, keepdim=True).add_(EPS)
        context.div_(norm)
        if keep:
            norms[block] = norm
        difference = context - words if keep else context.sub_(words)
        squared = difference.square_().view(-1, dim).to(low)
        torch.addmm(bias, squared, weight_t, out=local[block].view(-1, weight.shape[0]))
    return local, unit, norms


class LocalAlignment(torch.autograd.Function):
    """Linear((c / (|c| + eps) - w)^2) with c = attention @ regions per image: attention (m, k n, R)
    softmax weights, regions (m, R, E), words (k, n, E) broadcast over images, weight (S, E), bias (S).

    Keeps the unit vectors y = c / (|c| + eps) and the norms; the difference y - w and its square are
    recomputed block by block in the backward rather than kept.
    """

    @staticmethod
    def forward(ctx, attention, regions, words, weight, bias):
        local, unit, norms = _forward(attention, regions, words, weight, bias, keep=True)
        ctx.save_for_backward(attention, regions, words, weight, unit, norms)
        ctx.low = local.dtype
        return local

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_local):
        """Per block, with d = y - w and g the local gradient: dL/dW += g^T d^2, dL/dy = 2 d (g W),
        dL/dw = -dL/dy summed over images, dL/dc = dL/dy / (r + eps) - y (y . dL/dy) / r (0 for a zero c,
        as autograd's norm gives it), then the two products' gradients for attention and regions."""
        attention, regions, words, weight, unit, norms = ctx.saved_tensors
        m, k, n, dim = unit.shape
        grad_local = grad_local.contiguous().view(m, k * n, -1)
        weight_low = weight.to(ctx.low)
        grad_weight = torch.zeros_like(weight)
        grad_words = torch.zeros_like(words)
        grad_attention, grad_regions = torch.empty_like(attention), torch.empty_like(regions)
        radius = (norms - EPS).clamp_min_(torch.finfo(norms.dtype).tiny)
        for block in image_blocks(m, k * n * dim * unit.element_size(), unit.device):
            y, upstream = unit[block], grad_local[block].reshape(-1, grad_local.shape[-1])
            difference = y - words
            grad_weight.add_(upstream.T @ difference.square().view(-1, dim).to(ctx.low))
            grad_y = (upstream @ weight_low).view(difference.shape).to(unit.dtype).mul_(difference).mul_(2)
            grad_words.sub_(grad_y.sum(dim=0))
            along = torch.linalg.vecdot(y, grad_y, dim=-1).unsqueeze(-1).div_(radius[block])
            grad_context = grad_y.div_(norms[block]).addcmul_(y, along, value=-1).view(-1, k * n, dim)
            torch.bmm(grad_context, regions[block].transpose(1, 2), out=grad_attention[block])
            torch.bmm(attention[block].transpose(1, 2), grad_context, out=grad_regions[block])
        grad_bias = grad_local.sum(dim=(0, 1))
        return grad_attention, grad_regions, grad_words, grad_weight, grad_bias.to(weight.dtype)


def local_alignment(attention, regions, words, weight, bias) -> torch.Tensor:
    """(m, k, n, S) local alignment before its l2norm: LocalAlignment when a gradient is needed, else
    the same blocked forward keeping nothing (evaluation)."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in (attention, regions, words, weight, bias)):
        return LocalAlignment.apply(attention, regions, words, weight, bias)
    return _forward(attention, regions, words, weight, bias, keep=False)[0]
