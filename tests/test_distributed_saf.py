"""SAF's per-caption batch norm pooled across processes, as the original's SyncBatchNorm did.

Two gloo processes, each with half of a batch, against one process that holds the union and
computes it the original's way: for each caption position i, one batch norm call over the
logits of position i of both halves (each half's caption against its own images), running
statistics updated once per position. Scores, running statistics and the DDP-averaged gradients
must agree; the statistics of each half alone would not.
"""

import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from bench.common import distributed
from bench.demo import DATA_NAME
from bench.model import random_weights
from bench.model.engine import alignment_nodes
from bench.model.network import SimilarityModel, init_weights, l1norm, l2norm
from bench.training.batches import Batch
from bench.training.loop import BatchScorer
from bench.training.losses import training_objective
from bench.training.start import set_dropout

HALF = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _model(state: dict | None = None) -> SimilarityModel:
    """float64, dropout off, VisualSA's batch norms on running statistics: only SAF's differs by process."""
    config = random_weights.small_config("SAF", DATA_NAME, 60, num_regions=4, embed_size=16, sim_dim=8)
    model = SimilarityModel(config)
    if state is None:
        torch.manual_seed(0)
        init_weights(model)
    else:
        model.load_state_dict(state)
    model = model.double().train()
    model.sim_enc.v_global_w.eval()
    set_dropout(model, 0.0)
    return model


def _halves() -> list[Batch]:
    generator = torch.Generator().manual_seed(5)
    halves = []
    for _ in range(2):
        lengths = torch.randint(3, 9, (HALF,), generator=generator).sort(descending=True).values
        tokens = torch.randint(4, 60, (HALF, int(lengths.max())), generator=generator)
        regions = torch.rand(HALF, 4, 40, generator=generator, dtype=torch.float64)
        sems = torch.rand(HALF, HALF, generator=generator, dtype=torch.float64)
        halves.append(Batch(regions, tokens, lengths, torch.arange(HALF), sems))
    return halves


def _loss(scores: torch.Tensor, batch: Batch) -> torch.Tensor:
    return training_objective(scores, batch.sems, daa_weight=5.0)["loss"]


def _bn_state(model: SimilarityModel) -> dict:
    bn = model.sim_enc.SAF_module.bn
    return {"running_mean": bn.running_mean.clone(), "running_var": bn.running_var.clone(),
            "num_batches_tracked": bn.num_batches_tracked.clone()}


def _worker(rank: int, port: int, state: dict, out_dir: str) -> None:
    import os
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    world = distributed.world_info_from_env()
    distributed.init_distributed(world, torch.device("cpu"))
    try:
        model = _model(state)
        scorer = distributed.wrap_model(BatchScorer(model), world, torch.device("cpu"))
        batch = _halves()[rank]
        scores = scorer(batch.regions, batch.tokens, batch.lengths)
        _loss(scores, batch).backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        torch.save({"scores": scores.detach(), "grads": grads, "bn": _bn_state(model)}, Path(out_dir) / f"{rank}.pt")
    finally:
        distributed.cleanup_distributed()


def _caption_nodes(model: SimilarityModel, batch: Batch) -> list[torch.Tensor]:
    """(m, n+1, S) alignment nodes of each caption of the half against the half's images."""
    sim_enc = model.sim_enc
    img = model.img_enc(batch.regions)
    cap = model.txt_enc(batch.tokens, batch.lengths)
    img_glo = sim_enc.v_global_w(img)
    return [alignment_nodes(sim_enc, img, img_glo, cap[j:j + 1, :n], sim_enc.t_global_w(cap[j:j + 1, :n]))[:, 0]
            for j, n in enumerate(batch.lengths.tolist())]


def original_union(state: dict, pooled: bool = True):
    """Scores of both halves, the original's way: one batch norm call per caption position,
    over both halves' logits (pooled) or, for contrast, over each half's own (not pooled)."""
    model = _model(state)
    saf = model.sim_enc.SAF_module
    halves = _halves()
    nodes = [_caption_nodes(model, batch) for batch in halves]
    columns = [[], []]
    for j in range(HALF):
        logits = [saf.attn_sim_w(nodes[r][j]).squeeze(-1) for r in range(2)]  # (m, n_r + 1)
        groups = [logits] if pooled else [[part] for part in logits]
        normed = []
        for group in groups:
            flat = torch.cat([part.reshape(-1) for part in group]).view(1, 1, -1)
            out = F.batch_norm(flat, saf.bn.running_mean, saf.bn.running_var, saf.bn.weight, saf.bn.bias,
                               training=True, momentum=saf.bn.momentum, eps=saf.bn.eps)
            normed += list(out.flatten().split([part.numel() for part in group]))
        for r in range(2):
            weights = l1norm(torch.sigmoid(normed[r].view_as(logits[r])))
            columns[r].append(model.sim_enc.score_vector(l2norm((weights.unsqueeze(-1) * nodes[r][j]).sum(dim=-2))))
    scores = [torch.stack(columns[r], dim=1) for r in range(2)]
    ((_loss(scores[0], halves[0]) + _loss(scores[1], halves[1])) / 2).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    return scores, grads, model


def test_two_gloo_processes_pool_saf_statistics_like_sync_batch_norm(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        state = _model().state_dict()
        mp.spawn(_worker, args=(_free_port(), state, str(tmp_path)), nprocs=2, join=True)
        ranks = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in range(2)]
        scores, grads, model = original_union(state)
        for rank, expected in zip(ranks, scores):
            torch.testing.assert_close(rank["scores"], expected.detach(), rtol=0, atol=1e-12)
            for name, value in _bn_state(model).items():
                if name == "num_batches_tracked":
                    assert rank["bn"][name].item() == HALF
                else:
                    torch.testing.assert_close(rank["bn"][name], value, rtol=0, atol=1e-12)
            for name, grad in grads.items():
                torch.testing.assert_close(rank["grads"][name], grad, rtol=1e-9, atol=1e-12, msg=name)
        local, _, _ = original_union(state, pooled=False)
        assert max((a.detach() - b.detach()).abs().max().item() for a, b in zip(local, scores)) > 1e-4
    finally:
        torch.set_num_threads(threads)
