"""The opt-in compiled evaluation step (bench.model.fused): the same scores as the plain path, and
off unless BENCH_COMPILE asks for it. The test compiles with Dynamo's "eager" backend: the same
graph capture and code path as Inductor (CPU) or Triton (CUDA), without a C++ build in the suite."""

import torch

from bench.model import engine
from bench.model.random_weights import random_model, small_config
from bench.perf.workload import embeddings


def test_compiled_step_is_opt_in_and_scores_as_the_plain_path(monkeypatch):
    monkeypatch.delenv("BENCH_COMPILE", raising=False)
    assert engine.evaluation_step(None) is engine.chunk_scores
    model = random_model(small_config("SGR", "coco_precomp", 50), seed=3, score_spread=20.0)
    images, words, lens = embeddings(3, 2, embed=model.config.embed_size, regions=model.config.num_regions)
    lens[:] = 6  # one length group, one chunk: a single compilation
    with torch.no_grad():
        plain = engine.pair_scores(model.sim_enc, images, words, lens)
        fused = engine.pair_scores(model.sim_enc, images, words, lens, compile_backend="eager")
    assert fused.shape == (3, 2) and torch.allclose(fused, plain, rtol=0, atol=1e-6)
    monkeypatch.setenv("BENCH_COMPILE", "1")
    assert engine.evaluation_step(None) is engine.evaluation_step(None) is not engine.chunk_scores  # once
    monkeypatch.setenv("BENCH_COMPILE", "no")
    assert engine.evaluation_step(None) is engine.chunk_scores
