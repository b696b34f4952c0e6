"""The training losses under the short name the README documents: `from bench.losses import daa_loss`.

They live in bench.training.losses with the rest of training; this module only makes the documented
import path work (`bench.losses.daa_loss` after `import bench` works as well).
"""

from bench.training.losses import contrastive_loss, daa_loss, soft_ranks, training_objective

__all__ = ["contrastive_loss", "daa_loss", "soft_ranks", "training_objective"]
