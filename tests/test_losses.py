"""Losses against hand-computed cases and against the original implementation's values."""

import pytest
import torch

from bench.training.losses import contrastive_loss, daa_loss, soft_ranks, training_objective

# Ranks worked out by hand in the comments below (differences >= 0.1, so the soft step is 0 or 1).
S3 = torch.tensor([[0.9, 0.2, 0.5],
                   [0.1, 0.8, 0.3],
                   [0.4, 0.6, 0.7]], dtype=torch.float64)
TIES = torch.eye(3, dtype=torch.float64)  # zeros tie: the soft step of 0 is exactly 1/2


def test_row_form_ranks_items_within_each_row():
    expected = [[1, 3, 2], [3, 1, 2], [3, 2, 1]]
    assert soft_ranks(S3, 0.001, "row").tolist() == expected


def test_released_form_compares_a_column_entry_with_the_row_entry():
    # rank[b, c] = 1 + #{a != c : S[a, b] > S[b, c]}; e.g. b=2, c=0: S[2, 0]=0.4 < S[2, 2]=0.7 only.
    expected = [[1, 3, 2], [3, 1, 2], [2, 2, 1]]
    assert soft_ranks(S3, 0.001, "released").tolist() == expected


def test_ties_count_half():
    expected = [[1, 2.5, 2.5], [2.5, 1, 2.5], [2.5, 2.5, 1]]
    for form in ("row", "released"):
        assert soft_ranks(TIES, 0.001, form).tolist() == expected


@pytest.mark.parametrize("form, asp_sum", [
    ("row", 3 + 3 * 2.5 / 3 + 3 * 0.8),  # ratios min/max of the rank pairs above
    ("released", 3 + 2 * 2.5 / 3 + 4 * 0.8),
])
def test_daa_by_hand(form, asp_sum):
    assert daa_loss(S3, TIES, form=form).item() == pytest.approx(1 - asp_sum / 9, abs=1e-12)


def test_contrastive_by_hand():
    scores = torch.tensor([[0.5, 0.6, 0.55], [0.1, 0.5, 0.2], [0.35, 0.2, 0.5]], dtype=torch.float64)
    # caption costs per row: (.3, .25), (0, 0), (.05, 0); image costs per column: (0, .05), (.3, 0), (.25, 0)
    assert contrastive_loss(scores).item() == pytest.approx(0.3 + 0.05 + 0.05 + 0.3 + 0.25)
    assert contrastive_loss(scores, max_violation=False).item() == pytest.approx(1.2)
    assert contrastive_loss(scores, margin=0.0).item() == pytest.approx(0.1 + 0.1 + 0.05)


@pytest.mark.parametrize("n", [6, 16])
def test_matches_original_implementation(golden_expected, n):
    scores = torch.from_numpy(golden_expected[f"loss{n}/scores"])
    sems = torch.from_numpy(golden_expected[f"loss{n}/sems"])
    expected = {name: float(golden_expected[f"loss{n}/{name}"])
                for name in ("contrastive", "contrastive_sum", "daa_i2t", "daa_t2i")}
    assert contrastive_loss(scores).item() == pytest.approx(expected["contrastive"], abs=1e-5)
    assert contrastive_loss(scores, max_violation=False).item() == pytest.approx(expected["contrastive_sum"], abs=1e-5)
    assert daa_loss(scores, sems).item() == pytest.approx(expected["daa_i2t"], abs=1e-5)
    assert daa_loss(scores.t(), sems.t()).item() == pytest.approx(expected["daa_t2i"], abs=1e-5)
    both = training_objective(scores, sems, daa_weight=10)
    weighted = expected["contrastive"] + 10 * (expected["daa_i2t"] + expected["daa_t2i"])
    assert both["loss"].item() == pytest.approx(weighted, abs=1e-4)


@pytest.mark.parametrize("form", ["released", "row"])
def test_daa_gradient_is_finite_and_non_zero(golden_expected, form):
    scores = torch.from_numpy(golden_expected["loss16/scores"]).clone().requires_grad_(True)
    sems = torch.from_numpy(golden_expected["loss16/sems"])  # many exact zeros (ties)
    (daa_loss(scores, sems, form=form) + daa_loss(scores.t(), sems.t(), form=form)).backward()
    assert torch.isfinite(scores.grad).all()
    assert scores.grad.abs().sum() > 0


def test_daa_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        daa_loss(torch.rand(3, 3), torch.rand(3, 4))
    with pytest.raises(ValueError):
        soft_ranks(torch.rand(3, 3), 0.001, "columns")
