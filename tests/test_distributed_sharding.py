"""Three gloo processes that plan different shards (one sees almost no free memory) still assemble
one process's matrix: the images are split evenly over the ranks before any shard is planned.

Evaluation's score_matrix, the fold path of score_model (COCO 1K) and training's validation are
each run in the three processes and compared with one process; every rank must score images.
"""

import os
import socket
import time
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp

from bench.common import distributed
from bench.data import synthetic
from bench.data.splits import load_split
from bench.data.vocab import Vocabulary
from bench.eval import scoring
from bench.eval.score_split import ScoringRequest, score_model
from bench.model.random_weights import random_model, small_config
from bench.training.loop import validate

WORLD = 3
LOW_MEMORY_RANK = 1
IMAGES = 10
FOLDS = [(slice(0, 5), slice(0, 25)), (slice(5, 10), slice(25, 50))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_data(root: Path) -> None:
    synthetic.write_vocab(root / "vocab.json")
    synthetic.write_split(root / "coco_precomp", "dev", IMAGES, regions=4, seed=4)


def _data(root: Path):
    vocab = Vocabulary.load(root / "vocab.json")
    model = random_model(small_config("SAF", "coco_precomp", len(vocab), num_regions=4, embed_size=16, sim_dim=8),
                         seed=2, score_spread=20.0)
    return model, load_split(root, "coco_precomp", "dev"), vocab


def _everything(root: Path) -> dict:
    """The three paths' outputs in this process (the whole figures on rank 0, None elsewhere)."""
    model, split, vocab = _data(root)
    with torch.no_grad():
        img = model.img_enc(torch.from_numpy(split.image_rows(0, IMAGES)))
        tokens = torch.randint(4, len(vocab), (12, 7), generator=torch.Generator().manual_seed(1))
        lens = torch.tensor([7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 7, 2])
        cap = model.txt_enc(tokens, lens)
    return {"matrix": scoring.score_matrix(model, img, cap, lens),
            "folds": score_model(model, ScoringRequest(split, vocab, torch.device("cpu"), blocks=FOLDS)).matrix,
            "validation": validate(model, split, vocab, torch.device("cpu"), "fp32")}


def _worker(rank: int, port: int, root: str, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), BENCH_QUIET="1")
    torch.set_num_threads(1)
    if rank == LOW_MEMORY_RANK:  # this rank plans one-image shards; the others, all their images at once
        scoring.free_memory_bytes = lambda device: 1
    scored, real = [], scoring.pair_scores

    def counting(sim_enc, images, *args, **kwargs):
        scored.append(images.shape[0])
        return real(sim_enc, images, *args, **kwargs)

    scoring.pair_scores = counting
    distributed.init_distributed(distributed.world_info_from_env(), torch.device("cpu"))
    try:
        results = _everything(Path(root))
        results["shards"] = scored
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        distributed.cleanup_distributed()


def _spawn_with_deadline(args: tuple, seconds: float) -> None:
    """mp.spawn that cannot hang the suite: a rank left waiting in a collective is killed at the deadline."""
    context = mp.start_processes(_worker, args=args, nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + seconds
    while not context.join(timeout=max(1.0, deadline - time.monotonic())):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise AssertionError(f"the {WORLD} processes did not finish in {seconds:.0f} s (a rank waits forever)")


def test_ranks_with_different_free_memory_assemble_one_process_figures(tmp_path):
    root = tmp_path / "data"
    _write_data(root)
    _spawn_with_deadline((_free_port(), str(root), str(tmp_path)), seconds=240)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = _everything(root)
    finally:
        torch.set_num_threads(threads)
    assert all(rank["shards"] for rank in ranks)  # every process scored images
    assert set(ranks[LOW_MEMORY_RANK]["shards"]) == {1} and max(ranks[0]["shards"]) > 1  # unlike plans
    for name in ("matrix", "folds"):
        assert ranks[1][name] is None and ranks[2][name] is None
        assert ranks[0][name].shape == alone[name].shape, name
        np.testing.assert_allclose(ranks[0][name], alone[name], rtol=0, atol=1e-6, err_msg=name)
    assert alone["folds"].shape == (2, 5, 25)
    for rank in ranks:  # validation's figures reach every process
        assert rank["validation"] == alone["validation"]
