"""make bench's launches/syncs count: a training step reads no device value back per step."""

import pytest

from bench.perf import training_bench
from bench.training.loop import STEPS_PER_WRITE


@pytest.mark.parametrize("module_name", ["SGR", "SAF"])
def test_a_training_step_has_no_host_sync_and_larger_chunks_launch_less(module_name):
    small, large = (training_bench.measure_step(module_name, chunk, steps=1, batch_size=12) for chunk in (2, 12))
    for row in (small, large):  # only the step log's one transfer per STEPS_PER_WRITE steps
        assert row["host_syncs_per_step"] == round(1 / STEPS_PER_WRITE, 2)
        assert 0 < row["of_which_text_encoder"] < row["operators_per_step"]
    assert large["operators_without_text_encoder"] < small["operators_without_text_encoder"]
