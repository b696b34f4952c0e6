"""TF32 emulated on a CPU: the conversions bit by bit, every matrix product reached, and the tf32
tolerance against the goldens under both conversions."""

import numpy as np
import pytest
import torch

from bench.eval.tolerances import SCORE_TOLERANCE, TF32_EMULATED, TOP1_AGREEMENT, UNIT_ROUNDOFF
from bench.perf import tf32_emulation
from bench.perf.gpu_correctness import judge

ULP = 2.0**-10  # TF32's spacing at 1


@pytest.mark.parametrize("value,nearest,truncated", [
    (1.0 + ULP / 2, 1.0, 1.0),  # a tie: to the even neighbour
    (1.0 + 3 * ULP / 2, 1.0 + 2 * ULP, 1.0 + ULP),  # a tie: to the even neighbour, upwards
    (1.0 + 0.75 * ULP, 1.0 + ULP, 1.0),
    (-(1.0 + 0.75 * ULP), -(1.0 + ULP), -1.0),  # truncation goes towards zero
    (3.0, 3.0, 3.0),
    (2.0**-20 * (1 + 0.75 * ULP), 2.0**-20 * (1 + ULP), 2.0**-20),
])
def test_conversions_round_or_cut_the_low_13_mantissa_bits(value, nearest, truncated):
    values = torch.tensor([value], dtype=torch.float32)
    assert tf32_emulation.to_tf32(values, "nearest").item() == nearest
    assert tf32_emulation.to_tf32(values, "truncate").item() == truncated


def test_every_matrix_product_takes_converted_inputs_and_nothing_else_does():
    """A linear layer, a batched product and a GRU (all matrix products on a GPU) match their float64
    computation from converted inputs; an elementwise product and sum stays exact."""
    torch.manual_seed(0)
    linear, gru = torch.nn.Linear(8, 4), torch.nn.GRU(8, 4, batch_first=True)
    x, y = torch.randn(3, 5, 8), torch.randn(3, 8, 2)
    with torch.no_grad(), tf32_emulation.EmulatedTF32("truncate") as mode:
        got_linear, got_bmm, got_gru = linear(x), torch.bmm(x, y), gru(x)[0]
        got_sum = (x * x).sum(-1)
    cut = lambda t: tf32_emulation.to_tf32(t, "truncate").double()  # noqa: E731
    assert torch.allclose(got_linear.double(), cut(x) @ cut(linear.weight).T + linear.bias.double(), atol=1e-6)
    assert torch.allclose(got_bmm.double(), cut(x) @ cut(y), atol=1e-6)
    assert not torch.allclose(got_bmm, torch.bmm(x, y), atol=1e-6)  # it did change something
    assert torch.equal(got_sum, (x * x).sum(-1))
    with torch.no_grad():
        plain_gru = gru(x)[0]
    assert not torch.equal(got_gru, plain_gru) and torch.allclose(got_gru, plain_gru, atol=1e-2)
    assert mode.products >= 2 + 5  # the linear, the bmm, and the GRU's hidden-state product at each step


@pytest.mark.parametrize("conversion", tf32_emulation.CONVERSIONS)
def test_the_tf32_tolerance_holds_on_the_golden_with_the_largest_difference(conversion):
    """coco SGR, the golden furthest off under both conversions (`python -m bench.perf.tf32_emulation`
    measures all four): its recorded figure is what the emulation gives, and it passes the check's
    tf32 judgement (tolerance and top-1 agreement) with room to spare."""
    from bench.data.splits import load_split
    from bench.eval.score_split import score_split
    from bench.perf.gpu_correctness import GOLDEN

    split = load_split(GOLDEN, "coco_precomp", "testall")
    with tf32_emulation.EmulatedTF32(conversion):
        sims = score_split([str(GOLDEN / "coco_sgr.pth.tar")], split, GOLDEN, None, torch.device("cpu"), "tf32").sims
    reference = np.load(GOLDEN / "expected.npz")["coco_sgr/sims"]
    ok, figures, _ = judge(sims, reference, "tf32")
    assert figures["max_abs_diff"] == pytest.approx(TF32_EMULATED[conversion]["coco sgr"], abs=1e-4)
    assert ok and figures["max_abs_diff"] <= SCORE_TOLERANCE["tf32"] / 2
    assert min(figures["top1_i2t"], figures["top1_t2i"]) >= TOP1_AGREEMENT["tf32"]


def test_the_tolerance_is_about_twice_the_largest_emulated_difference():
    largest = max(max(by_golden.values()) for by_golden in TF32_EMULATED.values())
    assert largest == TF32_EMULATED["truncate"]["coco sgr"]
    assert 2 * largest <= SCORE_TOLERANCE["tf32"] < 2 * largest + 1e-3
    assert SCORE_TOLERANCE["tf32"] / UNIT_ROUNDOFF["tf32"] > 3 * 24  # truncation: over 3x the 24 roundoffs of rounding
