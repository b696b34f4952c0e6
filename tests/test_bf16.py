"""bf16 keeps float32's resolution where scores are formed: no bf16 grid, no ties, exact SAF statistics."""

import numpy as np
import pytest
import torch

from bench.data.splits import CAPTIONS_PER_IMAGE, load_split
from bench.eval.score_split import score_split
from bench.eval.tolerances import SCORE_TOLERANCE, UNIT_ROUNDOFF
from bench.model.engine import SafCaptionNorm
from bench.perf.workload import agreement


def tied_truth_rate(sims: np.ndarray) -> float:
    """Share of text-to-image queries whose true image's score equals another image's."""
    columns = np.arange(sims.shape[1])
    truth = sims[columns // CAPTIONS_PER_IMAGE, columns]
    return float(np.mean((sims == truth).sum(0) > 1))


@pytest.mark.parametrize("module", ["sgr", "saf"])
def test_bf16_scores_are_not_on_a_bf16_grid(golden_dir, module):
    """Before the float32 score head, 4,500 bf16 scores took a few hundred values and true images tied."""
    split = load_split(golden_dir, "coco_precomp", "testall")
    checkpoint = [str(golden_dir / f"coco_{module}.pth.tar")]
    fp32, bf16 = (score_split(checkpoint, split, golden_dir, None, torch.device("cpu"), precision).sims
                  for precision in ("fp32", "bf16"))
    # float32 itself makes a few coincidences among 4,500 scores; a bf16 grid makes hundreds
    assert len(np.unique(bf16)) >= len(np.unique(fp32)) - 0.01 * fp32.size
    assert tied_truth_rate(bf16) == tied_truth_rate(fp32)
    figures = agreement(bf16, fp32)
    print(f"coco {module} bf16 vs fp32: max |diff| {figures['max_abs_diff']:.3g} "
          f"({figures['max_abs_diff'] / UNIT_ROUNDOFF['bf16']:.1f} bf16 roundoffs), top-1 agreement "
          f"i2t {figures['top1_i2t']:.2f}, t2i {figures['top1_t2i']:.2f}")
    assert figures["max_abs_diff"] <= SCORE_TOLERANCE["bf16"]
    assert min(figures["top1_i2t"], figures["top1_t2i"]) >= 0.85  # measured 0.93-1.0


def test_saf_training_statistics_are_float32_under_bf16():
    """Per-caption sums, squares and counts of bf16 logits equal float64's to float32 precision;
    2,625 logits per caption are not a bf16 number (bf16 holds integers exactly only up to 256)."""
    gen = torch.Generator().manual_seed(0)
    bn = torch.nn.BatchNorm1d(1)
    logits = [torch.randn(35, 3, 75, generator=gen).mul(3).add(1) for _ in range(2)]
    positions = [torch.tensor([0, 2, 4]), torch.tensor([1, 3, 5])]
    norm = SafCaptionNorm(bn, n_captions=6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for idx, part in zip(positions, logits):
            norm.add(idx, part.to(torch.bfloat16))
        norm.pool()
    exact = torch.cat([p.to(torch.bfloat16).double() for p in logits], dim=1)[:, torch.cat(positions).argsort()]
    assert torch.equal(norm.counts.double(), torch.full((6,), 35.0 * 75))
    torch.testing.assert_close(norm.mean.double(), exact.mean(dim=(0, 2)), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(norm.var.double(), exact.var(dim=(0, 2), unbiased=False), rtol=1e-6, atol=1e-6)
