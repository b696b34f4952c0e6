"""The per-caption reference path: the original evaluation loop, written plainly.

For each caption, repeat it across an image shard and run the docs/model.md formulas on that
one (images x words) problem. Slow, obviously right, and independent of bench.model.engine's
batching: tests compare the two, and `make bench` measures the engine against it, in evaluation
(reference_scores) and in a training step (reference_columns, with gradients).
"""

import torch
import torch.nn.functional as F

from bench.model.network import ATTENTION_SMOOTH, SimilarityEncoder, l2norm


def _context(regions: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """SCAN text-to-image attention for one caption repeated over m images: (m, n, E)."""
    attn = F.leaky_relu(torch.bmm(regions, words.transpose(1, 2)), 0.1)  # (m, R, n)
    attn = l2norm(attn, dim=2)
    attn = torch.softmax(attn.transpose(1, 2) * ATTENTION_SMOOTH, dim=2)  # (m, n, R)
    return l2norm(torch.bmm(attn, regions))


def caption_scores(sim_enc: SimilarityEncoder, regions, region_glo, words) -> torch.Tensor:
    """Scores of one caption `words` (n, E) against m images: (m,); differentiable (the training
    reference). SAF's batch norm, in training mode, takes this caption's statistics, as the original."""
    m = regions.shape[0]
    words_rep = words.unsqueeze(0).expand(m, -1, -1)
    word_glo = sim_enc.t_global_w(words.unsqueeze(0))
    local = l2norm(sim_enc.sim_tranloc_w((_context(regions, words_rep) - words_rep) ** 2))
    glob = l2norm(sim_enc.sim_tranglo_w((region_glo - word_glo) ** 2))
    nodes = torch.cat([glob.unsqueeze(1), local], dim=1)  # (m, n+1, S)
    return sim_enc.score_vector(sim_enc.reduce_nodes(nodes))


def reference_columns(sim_enc: SimilarityEncoder, img_emb, cap_emb, cap_lens) -> torch.Tensor:
    """(n_images, n_captions) scores by the original's training forward: one caption at a time
    against all images, every column kept for the backward pass."""
    region_glo = sim_enc.v_global_w(img_emb)
    return torch.stack([caption_scores(sim_enc, img_emb, region_glo, cap_emb[j, :length])
                        for j, length in enumerate(cap_lens.tolist())], dim=1)


@torch.no_grad()
def reference_scores(sim_enc: SimilarityEncoder, img_emb, cap_emb, cap_lens, shard: int = 100) -> torch.Tensor:
    """(n_images, n_captions) by the original's loop: image shards, then one caption at a time."""
    scores = img_emb.new_empty(img_emb.shape[0], cap_emb.shape[0])
    for start in range(0, img_emb.shape[0], shard):
        regions = img_emb[start : start + shard]
        region_glo = sim_enc.v_global_w(regions)
        for j, length in enumerate(cap_lens.tolist()):
            scores[start : start + shard, j] = caption_scores(sim_enc, regions, region_glo, cap_emb[j, :length])
    return scores
