"""Training losses: VSE++ hinge (contrastive) and DAA, the paper's differentiable ASP.

`scores[i, j]` scores the image of batch sample i against the caption of sample j, so the
matching pairs lie on the diagonal; `sems[i, j]` is their TF-IDF relevance (docs/training.md).

    python -c "import torch; from bench.training.losses import daa_loss; \
s = torch.rand(8, 8); print(daa_loss(s, torch.rand(8, 8)))"
"""

import torch

from bench.training.settings import DAA_FORMS

SIGMOID_CLAMP = 50.0  # the released code clamps the exponent, so tau = 0.001 never overflows


def contrastive_loss(scores: torch.Tensor, margin: float = 0.2, max_violation: bool = True) -> torch.Tensor:
    """Hinge on both directions; with `max_violation` only the hardest negative per query counts."""
    positives = scores.diagonal()
    cost_caption = (margin + scores - positives.unsqueeze(1)).clamp(min=0)  # row i: image i's negatives
    cost_image = (margin + scores - positives.unsqueeze(0)).clamp(min=0)  # column j: caption j's negatives
    off_diagonal = ~torch.eye(scores.shape[0], dtype=torch.bool, device=scores.device)
    cost_caption = cost_caption * off_diagonal
    cost_image = cost_image * off_diagonal
    if max_violation:
        return cost_caption.max(dim=1).values.sum() + cost_image.max(dim=0).values.sum()
    return cost_caption.sum() + cost_image.sum()


def _soft_step(x: torch.Tensor, temperature: float) -> torch.Tensor:
    """1 / (1 + exp(clamp(-x / tau, -50, 50))), as released, in one fused sigmoid."""
    return torch.sigmoid(torch.clamp(x / temperature, -SIGMOID_CLAMP, SIGMOID_CLAMP))


def soft_ranks(x: torch.Tensor, temperature: float, form: str = "released") -> torch.Tensor:
    """Differentiable 1-based rank of every entry (b, c): 1 + soft count of a != c ranked above it.

    "row" compares x[b, a] with x[b, c], the rank of item c within row b. "released" compares
    x[a, b] (a column entry) with x[b, c], exactly what the released DAA code computes and what
    the published checkpoints were trained with (its index mix-up; see docs/training.md).
    """
    if form not in DAA_FORMS:
        raise ValueError(f"DAA form {form!r}: expected one of {DAA_FORMS}")
    others = x.t() if form == "released" else x  # others[b, a] is compared with x[b, c]
    diff = others.unsqueeze(1) - x.unsqueeze(2)  # diff[b, c, a]
    not_self = ~torch.eye(x.shape[0], x.shape[1], dtype=torch.bool, device=x.device)  # a != c
    return 1.0 + (_soft_step(diff, temperature) * not_self).sum(dim=2)


def daa_loss(scores: torch.Tensor, sems: torch.Tensor, temperature: float = 0.001,
             form: str = "released") -> torch.Tensor:
    """1 - ASP~ for one direction (rows are queries), unweighted."""
    if scores.shape != sems.shape or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"DAA needs square matrices of one shape, got {tuple(scores.shape)} and {tuple(sems.shape)}")
    rank_scores = soft_ranks(scores, temperature, form)
    rank_sems = soft_ranks(sems.to(scores.dtype), temperature, form)
    precision = torch.minimum(rank_scores, rank_sems) / torch.maximum(rank_scores, rank_sems)
    return 1.0 - precision.sum() / scores.numel()


def training_objective(scores: torch.Tensor, sems: torch.Tensor, *, margin: float = 0.2,
                       max_violation: bool = True, daa_weight: float = 0.0, form: str = "released") -> dict:
    """contrastive + w * DAA(S, M) + w * DAA(S^T, M^T), the paper's loss, with its terms for logging
    (`i2t` and `t2i` are the weighted DAA directions, as the original logs them)."""
    contrastive = contrastive_loss(scores, margin, max_violation)
    if not daa_weight:
        zero = torch.zeros((), dtype=scores.dtype, device=scores.device)
        return {"loss": contrastive, "contrastive": contrastive.detach(), "i2t": zero, "t2i": zero}
    i2t = daa_weight * daa_loss(scores, sems, form=form)
    t2i = daa_weight * daa_loss(scores.t(), sems.t(), form=form)
    return {"loss": contrastive + i2t + t2i, "contrastive": contrastive.detach(), "i2t": i2t.detach(),
            "t2i": t2i.detach()}
