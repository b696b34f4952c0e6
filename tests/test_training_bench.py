"""make bench's launches/syncs count: a training step reads no device value back, and a larger
caption chunk launches fewer operators."""

import pytest

from bench.perf import training_bench
from bench.training.loop import STEPS_PER_WRITE


@pytest.mark.parametrize("module_name", ["SGR", "SAF"])
def test_a_training_step_reads_no_device_value_back(module_name):
    run, batch = training_bench.prepared(module_name, chunk=4, batch_size=12)
    assert training_bench.syncs_per_step(run, batch, steps=1) == 1 / STEPS_PER_WRITE  # the step log's only


def test_a_larger_caption_chunk_launches_fewer_operators():
    small, large = (training_bench.operators_per_step(*training_bench.prepared("SAF", chunk, batch_size=12), steps=1)
                    for chunk in (2, 12))
    assert 0 < large < small
