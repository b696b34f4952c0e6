"""What `make demo` will do and how much work that is, known before torch is imported.

The demo's one progress count covers all of it in training steps: each training step of SGR and
SAF is one, and the steps around them (generating a split, scoring the test split with one
network) count as the training steps they cost, so the percentage and the ETA stay even from the
first split to the last evaluation.
"""

from dataclasses import dataclass

from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.training.settings import batches_per_epoch

TRAINED = ("SGR", "SAF")
EVALUATED = (("SGR", ("SGR",)), ("SAF", ("SAF",)), ("SGRAF", ("SGR", "SAF")))  # run label, networks it scores
DEMO_TRAINING = dict(
    batch_size=32, learning_rate=0.004, lr_update=6, daa_weight=2.0, seed=0, workers=0, device="cpu",
    # From random weights on a few hundred images the hardest-negative hinge stalls (VSE++ saw
    # the same); the demo sums all violations instead. The paper runs keep max_violation on.
    max_violation=False,
)
# The work around training in training steps' worth, measured on the default plan with one thread
# (2026-12-07, shared 2-core Xeon, torch 2.13 CPU): a training step took 0.12 s with its share of the
# epoch's validation, scoring the 100 test images with one network 0.85 s (about 7 steps), and
# generating a split well under a step.
STEPS_PER_SPLIT = 1
STEPS_PER_NETWORK_SCORED = 7


@dataclass(frozen=True)
class DemoPlan:
    """Sizes chosen so that both models train in well under a minute each on two CPU cores."""

    train_images: int = 400
    dev_images: int = 50
    test_images: int = 100
    regions: int = 8
    num_epochs: int = 8


@dataclass(frozen=True)
class DemoWork:
    """The demo's work in training steps, part by part; `total` is what its progress counts to."""

    generating: int
    training: dict[str, int]  # steps per trained model
    evaluating: dict[str, int]  # per evaluated run

    @property
    def total(self) -> int:
        return self.generating + sum(self.training.values()) + sum(self.evaluating.values())


def demo_work(plan: DemoPlan) -> DemoWork:
    """Every caption of the train split is a sample: its batches, over every epoch, for each model."""
    steps = plan.num_epochs * batches_per_epoch(CAPTIONS_PER_IMAGE * plan.train_images, DEMO_TRAINING["batch_size"])
    return DemoWork(generating=3 * STEPS_PER_SPLIT, training={name: steps for name in TRAINED},
                    evaluating={label: STEPS_PER_NETWORK_SCORED * len(networks) for label, networks in EVALUATED})


def plan_line(plan: DemoPlan, data_root, models_root, results) -> str:
    """The demo's first line, printed before anything heavy loads."""
    return (f"demo: 1/3 generating data -> {data_root}; 2/3 training SGR, then SAF, with DAA ({plan.num_epochs} epochs "
            f"each) -> {models_root}; 3/3 evaluating SGR, SAF, SGRAF -> {results}; "
            f"{demo_work(plan).total:,} steps' work in all")
