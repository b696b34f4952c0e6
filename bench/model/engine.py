"""The batched similarity engine: many images x many captions per call, exactly.

Captions are grouped by length, so no padded word ever enters a length-dependent step
(the per-region norm over words, TextSA's softmax and mean, SGR's softmax over nodes,
SAF's l1 norm): the result equals the per-pair definition of `docs/model.md` to float32
rounding. Within a group, captions go in small chunks against a whole image shard so the
(images x captions x words x E) intermediates stay small.
"""

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from bench.common.distributed import sum_across_processes
from bench.model.fused import compiled, requested_backend
from bench.model.local_alignment import local_alignment
from bench.model.network import ATTENTION_SMOOTH, SimilarityEncoder, l2norm, l2norm_


def length_groups(cap_lens: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """(length, caption indices) for every distinct caption length, indices ascending."""
    lens = cap_lens.cpu()
    for length in torch.unique(lens).tolist():
        yield int(length), torch.nonzero(lens == length).squeeze(1)


def _normalise(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """l2norm, in place when no gradient is needed (evaluation): saves a pass over big tensors."""
    return l2norm(x, dim) if torch.is_grad_enabled() else l2norm_(x, dim)


def _attention(regions: torch.Tensor, words: torch.Tensor):
    """SCAN's text-to-image attention weights (m, k n, R): per word, a softmax over regions; with the
    regions and words in the dtype they were computed in.

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
        # regions last, contiguous: the softmax runs along memory, and the weighted sum's product reads
        # its (k n x R) operand unstrided (a transposed view made that 36-deep product 3x slower)
        attn = (attn.mul_(ATTENTION_SMOOTH) if inplace else attn * ATTENTION_SMOOTH).view(m, regions_n, k * n)
        return torch.softmax(attn.transpose(1, 2).contiguous(), dim=-1), regions, words


def alignment_nodes(sim_enc: SimilarityEncoder, regions, region_glo, words, word_glo) -> torch.Tensor:
    """Alignment vectors X (m, k, n+1, S) for m images and k captions of n words each."""
    attention, regions, words = _attention(regions, words)
    linear = sim_enc.sim_tranloc_w
    local = _normalise(local_alignment(attention, regions, words, linear.weight, linear.bias))
    glob = _normalise(sim_enc.sim_tranglo_w((region_glo.unsqueeze(1) - word_glo.unsqueeze(0)) ** 2))
    return torch.cat([glob.unsqueeze(2).to(local.dtype), local], dim=2)


class SafCaptionNorm:
    """SAF's batch norm in training mode, per caption, as the original's loop under SyncBatchNorm.

    The original ran the BN once per caption, over (images x nodes), and wrapped it in SyncBatchNorm:
    with several processes, the statistics of caption position i pool position i of every process's
    batch. Here: the logits' sums per position are summed across processes (differentiably, so the
    gradients equal SyncBatchNorm's), giving the means; then the squared deviations from those means,
    giving the variances. Running statistics are updated once per caption position, in batch order,
    with the pooled unbiased variance. With one process this is the plain per-caption batch norm.
    """

    def __init__(self, bn: torch.nn.BatchNorm1d, n_captions: int):
        self.bn, self.n_captions = bn, n_captions
        self.parts: list[tuple[torch.Tensor, torch.Tensor]] = []

    def add(self, caption_idx: torch.Tensor, logits: torch.Tensor) -> None:
        """Logits (m, k, n+1) of k captions at batch positions `caption_idx`; kept at least float32,
        so that sums, squares and counts are exact under bf16 autocast (bf16 counts 2,625 as 2,624)."""
        exact = logits.to(torch.promote_types(logits.dtype, torch.float32))
        self.parts.append((caption_idx.to(logits.device, non_blocking=True), exact))

    def _per_caption(self, values) -> torch.Tensor:
        logits = self.parts[0][1]
        total = logits.new_zeros(self.n_captions)
        for (idx, part), value in zip(self.parts, values):
            total = total.index_add(0, idx, value)
        return total

    def pool(self) -> None:
        sums = self._per_caption(logits.sum(dim=(0, 2)) for _, logits in self.parts)
        counts = self._per_caption(logits.new_full((logits.shape[1],), logits.shape[0] * logits.shape[2])
                                   for _, logits in self.parts)
        sums, counts = sum_across_processes(torch.stack([sums, counts]))
        self.mean, self.counts = sums / counts, counts
        squares = self._per_caption(((logits - self.mean[idx].view(1, -1, 1)) ** 2).sum(dim=(0, 2))
                                    for idx, logits in self.parts)
        self.var = sum_across_processes(squares) / counts

    def normalise(self, logits: torch.Tensor, caption_idx: torch.Tensor) -> torch.Tensor:
        idx = caption_idx.to(logits.device, non_blocking=True)
        mean, var = self.mean[idx].view(1, -1, 1), self.var[idx].view(1, -1, 1)
        return (logits - mean) / torch.sqrt(var + self.bn.eps) * self.bn.weight + self.bn.bias

    @torch.no_grad()
    def update_running(self) -> None:
        """The n per-position updates r <- (1 - m) r + m x_p, in order, as one closed form
        r_n = (1 - m)^n r_0 + sum_p m (1 - m)^(n-1-p) x_p: a few kernels, not 6n tiny ones per step."""
        bn, n = self.bn, self.n_captions
        keep = 1 - bn.momentum
        dtype = bn.running_mean.dtype
        weights = bn.momentum * keep ** torch.arange(n - 1, -1, -1, dtype=dtype, device=bn.running_mean.device)
        unbiased = self.var.detach() * self.counts / (self.counts - 1).clamp(min=1)
        bn.running_mean.mul_(keep ** n).add_(weights @ self.mean.detach().to(dtype))
        bn.running_var.mul_(keep ** n).add_(weights @ unbiased.to(dtype))
        bn.num_batches_tracked.add_(n)


def _saf_training_columns(sim_enc: SimilarityEncoder, chunks: list, n_captions: int) -> list[torch.Tensor]:
    """Score columns of SAF in training mode: every chunk's logits first, then the pooled per-caption
    statistics, then the scores (a process's forward pass holds its whole batch anyway)."""
    saf = sim_enc.SAF_module
    norm = SafCaptionNorm(saf.bn, n_captions)
    logits = [saf.logits(nodes) for _, nodes in chunks]
    for (idx, _), chunk_logits in zip(chunks, logits):
        norm.add(idx, chunk_logits)
    norm.pool()
    columns = [sim_enc.score_vector(saf.pool(nodes, norm.normalise(chunk_logits, idx)))
               for (idx, nodes), chunk_logits in zip(chunks, logits)]
    norm.update_running()
    return columns


def reduce_nodes(sim_enc: SimilarityEncoder, nodes: torch.Tensor, folds: list | None = None) -> torch.Tensor:
    """(m, k, n+1, S) nodes -> (m, k) scores through the SGR or SAF head (SAF: evaluation mode).

    The last SGR step updates only the global node, the one row read afterwards. SGR's query and key
    Linears are folded into one S x S matrix per step (`folds`, computed once per call by pair_scores).
    """
    if sim_enc.module_name == "SGR":
        return sim_enc.score_vector(sim_enc.reduce_nodes(nodes, folds, last_first_only=True))
    return sim_enc.score_vector(sim_enc.SAF_module(nodes))


def graph_folds(sim_enc: SimilarityEncoder) -> list | None:
    """SGR's folded query-key products, in float32 (or the weights' float64) whatever the autocast,
    once per call: constants in evaluation, differentiable in training (None for SAF)."""
    with torch.autocast(device_type=sim_enc.sim_eval_w.weight.device.type, enabled=False):
        return sim_enc.folded_query_keys()


def chunk_scores(sim_enc: SimilarityEncoder, regions, region_glo, words, word_glo, folds) -> torch.Tensor:
    """(m, k) evaluation scores of one caption chunk: the step bench.model.fused compiles when asked."""
    return reduce_nodes(sim_enc, alignment_nodes(sim_enc, regions, region_glo, words, word_glo), folds)


def evaluation_step(compile_backend: str | None):
    """chunk_scores, or its torch.compile'd form (bench.model.fused: BENCH_COMPILE=1 asks for inductor)."""
    compile_backend = compile_backend or requested_backend()
    return chunk_scores if compile_backend is None else compiled(chunk_scores, compile_backend)


def pair_scores(sim_enc: SimilarityEncoder, img_emb: torch.Tensor, cap_emb: torch.Tensor,
                cap_lens: torch.Tensor, img_glo: torch.Tensor | None = None,
                caption_chunk: int = 8, on_chunk=None, compile_backend: str | None = None) -> torch.Tensor:
    """Scores (m, k) of m images x k captions; differentiable, used for training and evaluation.

    `on_chunk(pairs)` is called after each evaluation chunk: progress within a shard of any size.
    `compile_backend` (evaluation only) runs each chunk through torch.compile with that backend.
    """
    if img_glo is None:
        img_glo = sim_enc.v_global_w(img_emb)
    saf_training = sim_enc.module_name == "SAF" and sim_enc.SAF_module.bn.training
    columns, chunks, order = [], [], []
    folds = graph_folds(sim_enc)
    step = evaluation_step(compile_backend) if not torch.is_grad_enabled() and not saf_training else None
    for length, idx in length_groups(cap_lens):
        idx_dev = idx.to(cap_emb.device, non_blocking=True)  # host lengths' indices: no wait for the device
        words = cap_emb.index_select(0, idx_dev)[:, :length]
        word_glo = sim_enc.t_global_w(words)
        for start in range(0, len(idx), caption_chunk):
            part = slice(start, start + caption_chunk)
            if step is not None:
                columns.append(step(sim_enc, img_emb, img_glo, words[part], word_glo[part], folds))
                if on_chunk is not None:
                    on_chunk(columns[-1].shape[0] * columns[-1].shape[1])
                continue
            nodes = alignment_nodes(sim_enc, img_emb, img_glo, words[part], word_glo[part])
            if saf_training:
                chunks.append((idx[part], nodes))
            else:
                columns.append(reduce_nodes(sim_enc, nodes, folds))
        order.append(idx)
    if saf_training:
        columns = _saf_training_columns(sim_enc, chunks, len(cap_lens))
    scores = torch.cat(columns, dim=1)
    inverse = torch.argsort(torch.cat(order)).to(scores.device, non_blocking=True)
    return scores.index_select(1, inverse)
