"""Kernel launches and host syncs per training step, counted on the CPU.

A GPU step costs at least one kernel launch per compute operator, and every value read back to
the host (`float()`, `.item()`, a data-dependent shape) makes the host wait for the device. Both
counts depend on the code path, not on the device, so the CPU measures them: operators with the
PyTorch profiler (leaf operators that compute; views and other metadata-only operators launch
nothing), syncs with a dispatch mode (reads of floating-point values; the caption lengths and
their length groups are integer bookkeeping that stays on the host by design). The step is
bench.training.loop's, on a COCO-like batch of 128 captions with small layer sizes (sizes change
the work per operator, not the number of operators, with one exception: at full size a CPU runs the
local alignment in blocks of a few images, a GPU always as one, as the CPU does here); each row also
names the caption chunk, the CPU's (8) and the GPU's (32).

    python -m bench.perf.training_bench      # part of make bench
"""

import argparse
import platform
from types import SimpleNamespace

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

from bench.common.host import cpu_model
from bench.common.terminal import summary
from bench.eval.scoring import CPU_CAPTION_CHUNK, GPU_CAPTION_CHUNK
from bench.model.network import SimilarityModel, init_weights
from bench.model.random_weights import small_config
from bench.perf.report import publish
from bench.training.batches import Batch
from bench.training.loop import STEPS_PER_WRITE, BatchScorer, _step, adam
from bench.training.settings import TrainSettings

# operators that only describe memory (views, shapes, no-op casts): no kernel on a GPU
METADATA_OPS = {
    "aten::view", "aten::_unsafe_view", "aten::reshape", "aten::_reshape_alias", "aten::as_strided", "aten::t",
    "aten::transpose", "aten::permute", "aten::expand", "aten::slice", "aten::select", "aten::unsqueeze",
    "aten::squeeze", "aten::detach", "aten::alias", "aten::empty", "aten::empty_like", "aten::empty_strided",
    "aten::resize_", "aten::unbind", "aten::split", "aten::split_with_sizes", "aten::chunk", "aten::narrow",
    "aten::to", "aten::lift_fresh", "aten::result_type", "aten::size", "aten::stride", "aten::numel",
    "aten::contiguous", "aten::expand_as", "aten::view_as", "aten::flatten", "aten::unflatten", "aten::movedim",
    "aten::set_", "aten::_local_scalar_dense", "aten::is_same_size", "aten::_has_compatible_shallow_copy_type",
    "aten::resolve_conj", "aten::resolve_neg", "aten::promote_types", "aten::as_strided_",
}
# operators that read device data on the host (the host waits for every kernel before them)
SYNC_OPS = {"_local_scalar_dense", "nonzero", "_unique2", "unique_dim", "unique_consecutive", "masked_select",
            "is_nonzero", "equal"}
BATCH, REGIONS, IMG_DIM, VOCAB = 128, 36, 64, 400


class CountSyncs(TorchDispatchMode):
    """Counts SYNC_OPS on floating-point tensors: on a GPU, device values read by the host. Adam's step
    counters are left out: PyTorch keeps them on the host (unless `capturable`)."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        super().__init__()
        self.host_counters = {id(state["step"]) for state in optimizer.state.values() if "step" in state}
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in SYNC_OPS and any(
                isinstance(a, torch.Tensor) and a.is_floating_point() and id(a) not in self.host_counters
                for a in args):
            self.count += 1
        return func(*args, **(kwargs or {}))


def coco_like_batch(size: int = BATCH, seed: int = 0, img_dim: int = IMG_DIM, vocab: int = VOCAB) -> Batch:
    """Captions of COCO's lengths (8 to 20 tokens with <start>/<end>), sorted as the collate sorts them."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(8, 21, (size,), generator=generator).sort(descending=True).values
    tokens = torch.randint(4, vocab, (size, int(lengths.max())), generator=generator)
    return Batch(torch.rand(size, REGIONS, img_dim, generator=generator), tokens, lengths, torch.arange(size),
                 torch.rand(size, size, generator=generator))


def _run(module_name: str, chunk: int) -> SimpleNamespace:
    """What bench.training.loop._step needs: a scorer, its optimizer, the settings and the device."""
    torch.manual_seed(0)
    model = SimilarityModel(small_config(module_name, "coco_precomp", VOCAB, img_dim=IMG_DIM, num_regions=REGIONS))
    init_weights(model)
    scorer = BatchScorer(model.train(), caption_chunk=chunk)
    settings = TrainSettings(data_name="coco_precomp", module_name=module_name, num_epochs=1,
                             learning_rate=0.0002, lr_update=10, daa_weight=10)
    return SimpleNamespace(scorer=scorer, optimizer=adam(scorer.parameters(), lr=0.0002),
                           settings=settings, device=torch.device("cpu"))


def launched_operators(events) -> int:
    """Leaf operators that compute: roughly one kernel launch each on a GPU."""
    return sum(1 for event in events if not event.cpu_children and event.name not in METADATA_OPS
               and event.name.startswith("aten::"))


def text_encoder_operators(run: SimpleNamespace, batch: Batch) -> int:
    """The GRU's forward and backward alone: on the CPU a loop of small operators per time step, on a
    GPU a few cuDNN kernels; given apart so that the rest reads as a GPU would launch it."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        run.scorer.model.txt_enc(batch.tokens, batch.lengths).sum().backward()
    return launched_operators(profiler.events())


def operators_per_step(run: SimpleNamespace, batch: Batch, steps: int) -> int:
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            _step(run, batch)
    return launched_operators(profiler.events()) // steps


def syncs_per_step(run: SimpleNamespace, batch: Batch, steps: int) -> float:
    """Host syncs of the steps themselves, plus the step log's one transfer per STEPS_PER_WRITE steps."""
    syncs = CountSyncs(run.optimizer)
    with syncs:
        for _ in range(steps):
            _step(run, batch)
    return syncs.count / steps + 1 / STEPS_PER_WRITE


def prepared(module_name: str, chunk: int, batch_size: int = BATCH) -> tuple[SimpleNamespace, Batch]:
    """A run and a batch after one warm-up step (first-call allocations, optimizer state, lazy set-up)."""
    run, batch = _run(module_name, chunk), coco_like_batch(batch_size)
    _step(run, batch)
    return run, batch


def measure_step(module_name: str, chunk: int, steps: int = 3) -> dict:
    run, batch = prepared(module_name, chunk)
    operators, gru = operators_per_step(run, batch, steps), text_encoder_operators(run, batch)
    return {"module": module_name, "caption_chunk": chunk, "batch": BATCH,
            "operators_per_step": operators, "of_which_text_encoder": gru,
            "operators_without_text_encoder": operators - gru,
            "host_syncs_per_step": round(syncs_per_step(run, batch, steps), 2),
            "host": platform.node(), "cpu": cpu_model(), "torch": torch.__version__}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    rows = [measure_step(module, chunk) for module in ("SGR", "SAF")
            for chunk in (CPU_CAPTION_CHUNK, GPU_CAPTION_CHUNK)]
    publish(rows, args.out, "cpu-training-launches", "kernel launches and host syncs per training step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
