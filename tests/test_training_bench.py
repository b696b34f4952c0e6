"""make bench's launches/syncs count: a training step reads no device value back, and a larger
caption chunk launches fewer operators."""

import pytest

from bench.model.random_weights import random_model, small_config
from bench.perf import training_bench, training_speed
from bench.training.loop import STEPS_PER_WRITE


@pytest.mark.parametrize("module_name", ["SGR", "SAF"])
def test_a_training_step_reads_no_device_value_back(module_name):
    run, batch = training_bench.prepared(module_name, chunk=4, batch_size=12)
    assert training_bench.syncs_per_step(run, batch, steps=1) == 1 / STEPS_PER_WRITE  # the step log's only


def test_a_larger_caption_chunk_launches_fewer_operators():
    small, large = (training_bench.operators_per_step(*training_bench.prepared("SAF", chunk, batch_size=12), steps=1)
                    for chunk in (2, 12))
    assert 0 < large < small


@pytest.mark.parametrize("module_name", ["SGR", "SAF"])
def test_the_original_training_step_and_the_engine_start_from_equal_losses(module_name):
    """make bench's training speed part: the reference path (the original's per-caption forward, plain
    Adam) and the engine's step give the same loss from the same weights, and both train."""
    model = random_model(small_config(module_name, "coco_precomp", training_bench.VOCAB,
                                      img_dim=training_bench.IMG_DIM), seed=1)
    batch = training_bench.coco_like_batch(10)
    results = training_speed.timed_steps(training_speed.training_paths(model.train()), batch, repeats=1)
    (ref_values, ref_seconds, _), (values, seconds, _) = results["reference"], results["engine"]
    assert abs(float(values[0]) - float(ref_values[0])) < 1e-5 and float(values[0]) > 0
    assert len(seconds) == len(ref_seconds) == 1
