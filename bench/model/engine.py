"""The batched similarity engine: many images x many captions per call, exactly.

Captions are grouped by length, so no padded word ever enters a length-dependent step
(the per-region norm over words, TextSA's softmax and mean, SGR's softmax over nodes,
SAF's l1 norm): the result equals the per-pair definition of `model.md` to float32
rounding. Within a group, captions go in small chunks against a whole image shard so the
(images x captions x words x E) intermediates stay small.
"""

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from bench.model.network import ATTENTION_SMOOTH, EPS, SimilarityEncoder, l2norm


def length_groups(cap_lens: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """(length, caption indices) for every distinct caption length, indices ascending."""
    lens = cap_lens.cpu()
    for length in torch.unique(lens).tolist():
        yield int(length), torch.nonzero(lens == length).squeeze(1)


def _normalise(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """l2norm, in place when no gradient is needed (evaluation): saves a pass over big tensors."""
    if torch.is_grad_enabled():
        return l2norm(x, dim)
    return x.div_(torch.linalg.vector_norm(x, dim=dim, keepdim=True).add_(EPS))


def _attended_context(regions: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """SCAN's text-to-image attention: per word, a softmax-weighted sum of regions, l2-normalised.

    Kept in float32 (or float64) under bf16 autocast: the per-region norm over words and the x9 softmax
    amplify rounding, and this part is a small share of the work.
    """
    m, regions_n, dim = regions.shape
    k, n = words.shape[0], words.shape[1]
    inplace = not torch.is_grad_enabled()
    with torch.autocast(device_type=regions.device.type, enabled=False):
        dtype = torch.promote_types(regions.dtype, torch.float32)  # float64 stays float64 (training's fp64)
        regions, words = regions.to(dtype), words.to(dtype)
        # (m, R, k, n) straight out of one matmul: no permuted copies of the big tensors
        attn = (regions.reshape(m * regions_n, dim) @ words.reshape(k * n, dim).T).view(m, regions_n, k, n)
        attn = F.leaky_relu(attn, 0.1, inplace=inplace)
        attn = _normalise(attn, dim=-1)  # over this caption's words only
        attn = torch.softmax(attn.mul_(ATTENTION_SMOOTH) if inplace else attn * ATTENTION_SMOOTH, dim=1)  # over regions
        context = torch.bmm(attn.view(m, regions_n, k * n).transpose(1, 2), regions).view(m, k, n, dim)
        return _normalise(context)


def alignment_nodes(sim_enc: SimilarityEncoder, regions, region_glo, words, word_glo) -> torch.Tensor:
    """Alignment vectors X (m, k, n+1, S) for m images and k captions of n words each."""
    context = _attended_context(regions, words)
    diff = context.sub_(words).square_() if not torch.is_grad_enabled() else (context - words) ** 2
    local = _normalise(sim_enc.sim_tranloc_w(diff))
    glob = _normalise(sim_enc.sim_tranglo_w((region_glo.unsqueeze(1) - word_glo.unsqueeze(0)) ** 2))
    return torch.cat([glob.unsqueeze(2).to(local.dtype), local], dim=2)


class SafBatchStats:
    """SAF's batch norm in training mode, per caption, as the original's per-caption loop.

    The original ran the BN once per caption over (images x nodes) and updated the running
    statistics once per caption, in batch order; we normalise with the same per-caption
    statistics and apply the running updates in caption order afterwards.
    """

    def __init__(self):
        self.updates: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def normalise(self, bn: torch.nn.BatchNorm1d, logits: torch.Tensor, caption_idx: torch.Tensor):
        mean = logits.mean(dim=(0, 2), keepdim=True)
        var = logits.var(dim=(0, 2), unbiased=False, keepdim=True)
        count = logits.shape[0] * logits.shape[2]
        unbiased = var.detach().flatten() * count / max(count - 1, 1)
        self.updates.append((caption_idx, mean.detach().flatten(), unbiased))
        return (logits - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias

    def apply(self, bn: torch.nn.BatchNorm1d) -> None:
        if not self.updates:
            return
        idx = torch.cat([u[0] for u in self.updates])
        means, vars_ = torch.cat([u[1] for u in self.updates]), torch.cat([u[2] for u in self.updates])
        with torch.no_grad():
            for position in torch.argsort(idx).tolist():
                bn.running_mean.mul_(1 - bn.momentum).add_(bn.momentum * means[position])
                bn.running_var.mul_(1 - bn.momentum).add_(bn.momentum * vars_[position])
            bn.num_batches_tracked.add_(len(idx))


def reduce_nodes(sim_enc: SimilarityEncoder, nodes: torch.Tensor, caption_idx, saf_stats) -> torch.Tensor:
    """(m, k, n+1, S) nodes -> (m, k) scores through the SGR or SAF head.

    The last SGR step updates only the global node, the one row read afterwards. Evaluation also
    folds SGR's query and key Linears into one S x S matrix (GraphReasoning.edge_logits);
    training keeps the two Linears, as the original, so gradients flow the same way.
    """
    if sim_enc.module_name == "SGR":
        vec = sim_enc.reduce_nodes(nodes, fold_query_key=not torch.is_grad_enabled(), last_first_only=True)
        return sim_enc.score_vector(vec)
    saf = sim_enc.SAF_module
    normalise = None if saf_stats is None else (lambda logits: saf_stats.normalise(saf.bn, logits, caption_idx))
    return sim_enc.score_vector(saf(nodes, normalise))


def pair_scores(sim_enc: SimilarityEncoder, img_emb: torch.Tensor, cap_emb: torch.Tensor,
                cap_lens: torch.Tensor, img_glo: torch.Tensor | None = None,
                caption_chunk: int = 8) -> torch.Tensor:
    """Scores (m, k) of m images x k captions; differentiable, used for training and evaluation."""
    if img_glo is None:
        img_glo = sim_enc.v_global_w(img_emb)
    saf_stats = SafBatchStats() if sim_enc.module_name == "SAF" and sim_enc.SAF_module.bn.training else None
    columns, order = [], []
    for length, idx in length_groups(cap_lens):
        idx_dev = idx.to(cap_emb.device)
        words = cap_emb.index_select(0, idx_dev)[:, :length]
        word_glo = sim_enc.t_global_w(words)
        for start in range(0, len(idx), caption_chunk):
            part = slice(start, start + caption_chunk)
            nodes = alignment_nodes(sim_enc, img_emb, img_glo, words[part], word_glo[part])
            columns.append(reduce_nodes(sim_enc, nodes, idx[part], saf_stats))
        order.append(idx)
    if saf_stats is not None:
        saf_stats.apply(sim_enc.SAF_module.bn)
    scores = torch.cat(columns, dim=1)
    inverse = torch.argsort(torch.cat(order)).to(scores.device)
    return scores.index_select(1, inverse)
