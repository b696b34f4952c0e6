"""Full-size synthetic scoring workloads: SGR / SAF models with spread-out scores, and embeddings.

Random weights give nearly constant scores, where any rounding reorders captions; the last
Linear is calibrated so the sigmoid outputs spread over (0, 1), and captions are built from
their own image's regions plus noise, so ground-truth pairs tend to score highest.
"""

import numpy as np
import torch

from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.model.config import ModelConfig
from bench.model.engine import alignment_nodes
from bench.model.network import SimilarityModel
from bench.model.random_weights import random_model

COCO_DIMS = dict(img_dim=2048, word_dim=300, embed_size=1024, sim_dim=256, num_layers=1, bi_gru=True,
                 no_imgnorm=False, no_txtnorm=False, sgr_step=3, num_regions=36)


def full_size_model(module_name: str, seed: int = 0) -> SimilarityModel:
    config = ModelConfig(data_name="coco_precomp", vocab_size=11353, module_name=module_name, **COCO_DIMS)
    return random_model(config, seed=seed)


def embeddings(n_images: int, n_captions: int, embed: int = 1024, regions: int = 36, seed: int = 0,
               device: str | torch.device = "cpu"):
    """Region embeddings (n_images, R, E), word embeddings (n_captions, L, E) and lengths (10-20 tokens
    plus <start>/<end>, like COCO's); caption j describes image j // CAPTIONS_PER_IMAGE."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.nn.functional.normalize(torch.randn(n_images, regions, embed, generator=gen), dim=-1)
    lens = torch.randint(10, 21, (n_captions,), generator=gen) + 2
    owner = (torch.arange(n_captions) // CAPTIONS_PER_IMAGE).clamp(max=n_images - 1)
    picks = torch.randint(0, regions, (n_captions, int(lens.max())), generator=gen)
    noise = torch.randn(n_captions, int(lens.max()), embed, generator=gen) / embed**0.5
    words = images[owner[:, None], picks] + 0.8 * noise
    words = torch.nn.functional.normalize(words, dim=-1)
    words *= (torch.arange(words.shape[1])[None, :] < lens[:, None]).unsqueeze(-1)
    return images.to(device), words.to(device), lens.to(device)


@torch.no_grad()
def calibrate_spread(model: SimilarityModel, images, words, lens, target_std: float = 2.0) -> None:
    """Rescale the final Linear so the pre-sigmoid scores of a sample have mean 0 and std `target_std`."""
    sim_enc = model.sim_enc
    n = int(lens[0])
    sample = words[:8][lens[:8] == n][:, :n]
    nodes = alignment_nodes(sim_enc, images[:16], sim_enc.v_global_w(images[:16]), sample, sim_enc.t_global_w(sample))
    logits = sim_enc.sim_eval_w(sim_enc.reduce_nodes(nodes)).flatten()
    scale = target_std / max(float(logits.std()), 1e-6)
    sim_enc.sim_eval_w.weight.mul_(scale)
    sim_enc.sim_eval_w.bias.copy_((sim_enc.sim_eval_w.bias - logits.mean()) * scale)


def flops_per_pair(module_name: str, n: float, embed: int = 1024, sim: int = 256, regions: int = 36,
                   sgr_steps: int = 3, executed: bool = False) -> float:
    """Matrix-product work per (image, caption) pair of n tokens (docs/performance.md).

    By default the original's: every SGR step applies three S x S Linears (query, key, update) to
    all n + 1 nodes. `executed=True` counts what the batched engine runs instead: query and key
    folded into one S x S product, so two per node, and the last step on the global node only
    (the one row read). Each step also multiplies its edge rows by the nodes twice (scores and
    weighted sum). Work per image or per caption (the self-attention encoders) is not per pair, and
    the score head, one S-vector dot product per pair written as a product and a sum, is no matrix
    product.
    """
    nodes = n + 1
    attention = 4 * regions * embed * n
    alignment = 2 * embed * sim * nodes
    if module_name != "SGR":
        return float(attention + alignment + 2 * sim * nodes)
    def step(rows: int, linears: int) -> int:  # `rows` nodes updated; each Linear S x S on them
        return linears * 2 * sim * sim * rows + 2 * 2 * rows * nodes * sim
    if executed:
        head = (sgr_steps - 1) * step(nodes, 2) + step(1, 2)
    else:
        head = sgr_steps * step(nodes, 3)
    return float(attention + alignment + head)


def agreement(candidate: np.ndarray, baseline: np.ndarray) -> dict:
    """How much a reduced-precision matrix changes what retrieval reports."""
    top1_i2t = float(np.mean(candidate.argmax(1) == baseline.argmax(1)))
    top1_t2i = float(np.mean(candidate.argmax(0) == baseline.argmax(0)))
    owner = np.arange(baseline.shape[1]) // CAPTIONS_PER_IMAGE

    def t2i_hits(sims):
        truth = sims[np.minimum(owner, sims.shape[0] - 1), np.arange(sims.shape[1])]
        return (sims > truth).sum(0) < 10

    return {"max_abs_diff": float(np.abs(candidate - baseline).max()), "top1_i2t": top1_i2t,
            "top1_t2i": top1_t2i, "r10_unchanged": float(np.mean(t2i_hits(candidate) == t2i_hits(baseline)))}
