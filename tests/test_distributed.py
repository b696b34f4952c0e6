"""Two gloo processes on the CPU: DDP averages the gradients exactly as one process would."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp

from bench.common import distributed
from bench.demo import DATA_NAME, DemoPlan, write_demo_data
from bench.eval.scoring import score_matrix
from bench.model import random_weights
from bench.model.network import SimilarityModel, init_weights
from bench.training.batches import Batch
from bench.training.loop import BatchScorer, backward_batch
from bench.training.settings import TrainSettings

REPO = Path(__file__).resolve().parents[1]
BATCH = 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(module_name: str):
    return random_weights.small_config(module_name, DATA_NAME, 60, num_regions=4, embed_size=16, sim_dim=8)


def _model(module_name: str, state: dict) -> SimilarityModel:
    model = SimilarityModel(_config(module_name))
    model.load_state_dict(state)
    return model.eval()  # no dropout: both sides see the same function


def _union() -> Batch:
    """One batch of BATCH samples; the two processes each take half of it."""
    generator = torch.Generator().manual_seed(3)
    lengths = torch.randint(3, 9, (BATCH,), generator=generator).sort(descending=True).values
    tokens = torch.randint(4, 60, (BATCH, int(lengths.max())), generator=generator)
    regions = torch.rand(BATCH, 4, 40, generator=generator)
    sems = torch.rand(BATCH, BATCH, generator=generator)
    return Batch(regions, tokens, lengths, torch.arange(BATCH), sems)


def _batches() -> list[Batch]:
    """Two halves of one batch, each with its own semantic block (samples never cross processes)."""
    union = _union()
    halves = (slice(0, BATCH // 2), slice(BATCH // 2, BATCH))
    return [Batch(union.regions[h], union.tokens[h], union.lengths[h], union.indices[h],
                  union.sems[h, h].contiguous()) for h in halves]


def _settings(module_name: str) -> TrainSettings:
    return TrainSettings(data_name=DATA_NAME, module_name=module_name, num_epochs=1, learning_rate=0.0002,
                         lr_update=1, daa_weight=5.0)


def _gradients(scorer) -> dict:
    module = scorer.module if isinstance(scorer, torch.nn.parallel.DistributedDataParallel) else scorer
    return {name: p.grad.clone() for name, p in module.named_parameters()}


def _score_matrix(model: SimilarityModel):
    """The union batch's matrix through the evaluation scorer (each process scores a share of the images)."""
    union = _union()
    with torch.no_grad():
        img_emb, cap_emb = model.img_enc(union.regions), model.txt_enc(union.tokens, union.lengths)
    return score_matrix(model, img_emb, cap_emb, union.lengths, image_shard=2)


def _worker(rank: int, world_size: int, port: int, states: dict, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    world = distributed.world_info_from_env()
    distributed.init_distributed(world, torch.device("cpu"))
    try:
        results = {"ranks": distributed.all_gather_objects(rank), "gathered": distributed.gather_objects(rank)}
        for module_name, state in states.items():
            scorer = distributed.wrap_model(BatchScorer(_model(module_name, state)), world, torch.device("cpu"))
            backward_batch(scorer, _batches()[rank], _settings(module_name), torch.device("cpu"))
            results[module_name] = _gradients(scorer)
            sims = _score_matrix(_model(module_name, state))
            results[f"{module_name}_sims"] = None if sims is None else torch.from_numpy(sims)
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        distributed.cleanup_distributed()


def test_two_gloo_processes_average_gradients_like_one_process(tmp_path):
    # the same reduction order as the workers: DAA's tau = 0.001 magnifies float rounding
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _compare_with_one_process(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _compare_with_one_process(tmp_path) -> None:
    states = {}
    for module_name in ("SGR", "SAF"):
        torch.manual_seed(0)
        model = SimilarityModel(_config(module_name))
        init_weights(model)
        states[module_name] = model.state_dict()
    mp.spawn(_worker, args=(2, _free_port(), states, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0]["ranks"] == ranks[1]["ranks"] == [0, 1]
    assert ranks[0]["gathered"] == [0, 1] and ranks[1]["gathered"] is None  # gathered to rank 0 only
    for module_name, state in states.items():
        assert ranks[1][f"{module_name}_sims"] is None
        np.testing.assert_allclose(ranks[0][f"{module_name}_sims"].numpy(), _score_matrix(_model(module_name, state)),
                                   rtol=0, atol=1e-6)
    for module_name, state in states.items():
        per_half = []
        for batch in _batches():
            scorer = BatchScorer(_model(module_name, state))
            backward_batch(scorer, batch, _settings(module_name), torch.device("cpu"))
            per_half.append(_gradients(scorer))
        for name, first in per_half[0].items():
            expected = (first + per_half[1][name]) / 2
            assert expected.abs().sum() > 0 or name.endswith("bias"), name
            for rank in ranks:
                torch.testing.assert_close(rank[module_name][name], expected, rtol=1e-5, atol=1e-7, msg=name)


def test_one_process_needs_no_process_group(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    world = distributed.world_info_from_env()
    assert (world.rank, world.world_size, world.distributed) == (0, 1, False)
    distributed.init_distributed(world, torch.device("cpu"))
    module = torch.nn.Linear(2, 2)
    assert distributed.wrap_model(module, world, torch.device("cpu")) is module
    assert distributed.all_gather_objects("x") == ["x"] and distributed.broadcast_object(5) == 5


def test_torchrun_trains_with_two_cpu_processes(tmp_path):
    root = tmp_path / "data"
    write_demo_data(root, DemoPlan(train_images=16, dev_images=6, test_images=10, regions=4))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "bench", "train", "--data-name", DATA_NAME, "--module-name", "SAF", "--data-root", str(root),
               "--out-dir", str(out), "--num-epochs", "1", "--batch-size", "8", "--embed-size", "16",
               "--word-dim", "8", "--sim-dim", "8", "--workers", "0", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1", BENCH_QUIET="1")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    checkpoint = torch.load(out / "checkpoint_0.pth.tar", weights_only=False)
    assert checkpoint["opt"].world_size == 2 and checkpoint["Eiters"] == 5  # 80 captions / 2 / 8 per batch
    assert len(checkpoint["rng_states"]) == 2
    assert (out / "log.csv").read_text().count("\n") == 2


def test_a_launched_single_process_joins_a_process_group(monkeypatch):
    """`torchrun --nproc_per_node 1` runs DDP and the collectives (NCCL on one GPU; gloo here)."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    world = distributed.world_info_from_env()
    assert world.world_size == 1 and world.distributed
    distributed.init_distributed(world, torch.device("cpu"))
    try:
        assert distributed.active_world().distributed
        wrapped = distributed.wrap_model(torch.nn.Linear(2, 2), world, torch.device("cpu"))
        assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
        assert distributed.all_gather_objects("x") == ["x"]
    finally:
        distributed.cleanup_distributed()
