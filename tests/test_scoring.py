"""Score matrices: precisions, adaptive shards, out-of-memory retry, and multi-process scoring."""

import os
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch

from bench.common.errors import BenchError
from bench.eval import bf16_speed, scoring
from bench.eval.scoring import bytes_per_image, plan_image_shard, score_matrix
from bench.model.random_weights import random_model, small_config
from bench.model.reference_loop import reference_scores


@pytest.fixture(scope="module")
def problem():
    config = small_config("SGR", "coco_precomp", 50)
    model = random_model(config, seed=11, score_spread=20.0)
    gen = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(13, 36, 32, generator=gen), dim=-1)
    lens = torch.tensor([4, 7, 3, 7, 9, 4, 5, 6, 3, 8])
    cap = torch.nn.functional.normalize(torch.randn(10, 9, 32, generator=gen), dim=-1)
    return model, img, cap, lens, reference_scores(model.sim_enc, img, cap, lens).numpy()


@pytest.mark.parametrize("precision,tolerance", [("fp32", 2e-6), ("tf32", 2e-6), ("bf16", 0.05)])
def test_every_precision_is_close_to_fp32(problem, precision, tolerance):
    """tf32 only changes CUDA matmuls (exact on CPU); bf16 autocasts the matmuls."""
    model, img, cap, lens, expected = problem
    sims = score_matrix(model, img, cap, lens, precision=precision)
    assert sims.shape == expected.shape and sims.dtype == np.float32
    assert np.abs(sims - expected).max() < tolerance


def test_unknown_precision_is_a_clear_error(problem):
    model, img, cap, lens, _ = problem
    with pytest.raises(BenchError, match="--precision fp16"):
        score_matrix(model, img, cap, lens, precision="fp16")


def test_shard_follows_free_memory(monkeypatch):
    per_image = bytes_per_image(36, 1024, 256, 20, 8)
    monkeypatch.setattr(scoring, "free_memory_bytes", lambda device: 10 * per_image)
    assert plan_image_shard(torch.device("cpu"), 5000, per_image) == 5
    monkeypatch.setattr(scoring, "free_memory_bytes", lambda device: 10**15)
    assert plan_image_shard(torch.device("cpu"), 5000, per_image) == scoring.CPU_IMAGE_SHARD
    assert plan_image_shard(torch.device("cuda"), 5000, per_image) == 5000


OUT_OF_MEMORY_ERRORS = [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"),
    RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
]


@pytest.mark.parametrize("error", OUT_OF_MEMORY_ERRORS, ids=["OutOfMemoryError", "cuda-error", "cublas-alloc"])
def test_out_of_memory_halves_the_shard_and_retries(problem, monkeypatch, error):
    model, img, cap, lens, expected = problem
    real, sizes = scoring.pair_scores, []

    def tight_allocator(sim_enc, images, *args, **kwargs):
        sizes.append(images.shape[0])
        if images.shape[0] > 3:
            raise error
        return real(sim_enc, images, *args, **kwargs)

    monkeypatch.setattr(scoring, "pair_scores", tight_allocator)
    sims = score_matrix(model, img, cap, lens, image_shard=13)
    assert sizes[:3] == [13, 6, 3] and max(sizes[3:]) <= 3
    assert np.abs(sims - expected).max() < 2e-6


def test_cached_memory_is_released_after_the_failed_shard_is_gone(problem, monkeypatch):
    """The traceback of an out-of-memory error holds the shard's intermediates: they must be freed
    before the allocator's cache is emptied, or emptying it frees nothing."""
    model, img, cap, lens, _ = problem
    real, intermediates, alive_at_release = scoring.pair_scores, [], []

    def failing_once(sim_enc, images, *args, **kwargs):
        if not intermediates:
            big = torch.empty(1000, 1000)
            intermediates.append(weakref.ref(big))
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(sim_enc, images, *args, **kwargs)

    monkeypatch.setattr(scoring, "pair_scores", failing_once)
    monkeypatch.setattr(scoring, "release_cached_memory", lambda device: alive_at_release.append(intermediates[0]()))
    score_matrix(model, img, cap, lens, image_shard=13)
    assert alive_at_release == [None]


def test_out_of_memory_with_one_image_is_raised(problem, monkeypatch):
    model, img, cap, lens, _ = problem

    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")

    monkeypatch.setattr(scoring, "pair_scores", no_memory)
    with pytest.raises(RuntimeError, match="can't allocate"):
        score_matrix(model, img, cap, lens, image_shard=2)


def test_other_runtime_errors_are_not_retried(problem, monkeypatch):
    model, img, cap, lens, _ = problem
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(scoring, "pair_scores", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        score_matrix(model, img, cap, lens, image_shard=8)
    assert len(calls) == 1


def test_two_gloo_processes_give_the_single_process_matrix(tmp_path, data_root, make_checkpoint):
    checkpoint = make_checkpoint("SAF", "f30k_precomp", seed=3)
    common = ["eval", "--checkpoint", str(checkpoint), "--protocol", "f30k-1k", "--data-root", str(data_root),
              "--device", "cpu", "--image-shard", "3"]
    env = dict(os.environ, OMP_NUM_THREADS="1", BENCH_QUIET="1")
    single = subprocess.run([sys.executable, "-m", "bench", *common, "--save-sims", str(tmp_path / "one.npy")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    double = subprocess.run([*launch, "-m", "bench", *common, "--save-sims", str(tmp_path / "two.npy"),
                             "--json", str(tmp_path / "two.json")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stderr[-2000:]
    # each process shards its own half of the images: a shard's size may move a score's last bit
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy"), rtol=0, atol=1e-6)
    assert (tmp_path / "two.json").is_file()


def test_bf16_on_a_cpu_without_native_support_warns(monkeypatch, capsys):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False, raising=False)
    scoring.warn_slow_bf16("bf16", torch.device("cpu"))
    assert "no native bf16" in capsys.readouterr().err
    scoring.warn_slow_bf16("fp32", torch.device("cpu"))
    assert capsys.readouterr().err == ""


def test_bf16_slower_than_fp32_on_this_cpu_says_so_in_one_line(monkeypatch, capsys):
    assert bf16_speed.bf16_over_fp32(repeats=1) > 0  # the real measurement runs
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(bf16_speed, "bf16_over_fp32", lambda: 0.67)
    scoring.warn_slow_bf16("bf16", torch.device("cpu"))
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "slower than fp32 on this CPU" in line and "0.67x" in line
    monkeypatch.setattr(bf16_speed, "bf16_over_fp32", lambda: 1.4)
    scoring.warn_slow_bf16("bf16", torch.device("cpu"))
    assert capsys.readouterr().err == ""


def test_rank_0_refuses_a_gathered_matrix_with_the_wrong_row_count(monkeypatch):
    """Processes that split the images differently would misalign every figure: stop before the metrics.
    Each rank's row count follows from its image range (rank 0 of 2, 10 images: 5 rows)."""
    from bench.common.distributed import WorldInfo

    monkeypatch.setattr(scoring, "active_world", lambda: WorldInfo(0, 0, 2, launched=True))
    assert scoring.gathered_rows(np.zeros((5, 4), dtype=np.float32), 10).shape == (5, 4)  # no group: its own rows
    with pytest.raises(BenchError, match=r"scored 3 score rows for its 5 images"):
        scoring.gathered_rows(np.zeros((3, 4), dtype=np.float32), 10)
