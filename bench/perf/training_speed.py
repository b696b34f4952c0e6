"""Training-step speed at the paper's batch (128): the original's per-caption forward against the engine's.

Both steps run in this process on the same full-size model (36 regions, E = 1024, S = 256, COCO's
vocabulary) and the same batch, interleaved, each with its own copy of the weights and its own Adam:
forward, the paper's loss (contrastive + DAA), backward, gradient clipping, the optimizer step
(bench.training.loop's step). The reference path is bench.model.reference_loop.reference_columns:
one caption at a time against every image, as the original's training forward, with the original's
for-loop Adam; the engine's path is the training loop's own (fused Adam). Dropout is off in
both (the two paths draw their masks in different orders); batch norms train. The first step of
each path starts from the same weights, so its losses are compared; the later steps are timed.

    python -m bench.perf.training_speed                  # part of make bench (about 10 min on 2 cores)
    python -m bench.perf.training_speed --batch 32       # a quicker look
"""

import argparse
import copy
import statistics
import time
from types import SimpleNamespace

import torch
from torch import nn

from bench.common.host import cpu_model, features_text
from bench.eval.scoring import CPU_CAPTION_CHUNK
from bench.model.reference_loop import reference_columns
from bench.perf.measure import peak_memory_mb, reset_peak_memory
from bench.perf.report import publish
from bench.perf.training_bench import coco_like_batch
from bench.perf.workload import full_size_model
from bench.training.loop import BatchScorer, _step, adam
from bench.training.settings import TrainSettings
from bench.training.start import set_dropout

LR = 0.0002


class ReferenceScorer(nn.Module):
    """The original's training forward: encoders, then one caption at a time against all images."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, regions: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        img_emb = self.model.img_enc(regions)
        cap_emb = self.model.txt_enc(tokens, lengths)
        return reference_columns(self.model.sim_enc, img_emb, cap_emb, lengths)


def training_paths(model) -> dict[str, SimpleNamespace]:
    """{path: what bench.training.loop._step needs}, both from this model's weights, dropout off."""
    set_dropout(model, 0.0)
    settings = TrainSettings(data_name="coco_precomp", module_name=model.config.module_name, num_epochs=1,
                             learning_rate=LR, lr_update=10, daa_weight=10)
    reference = ReferenceScorer(copy.deepcopy(model).train())
    engine = BatchScorer(copy.deepcopy(model).train(), caption_chunk=CPU_CAPTION_CHUNK)
    device = torch.device("cpu")
    return {"reference": SimpleNamespace(scorer=reference, optimizer=torch.optim.Adam(reference.parameters(), lr=LR),
                                         settings=settings, device=device),
            "engine": SimpleNamespace(scorer=engine, optimizer=adam(engine.parameters(), lr=LR), settings=settings,
                                      device=device)}


def timed_steps(runs: dict, batch, repeats: int) -> dict:
    """{path: (first step's values, step seconds, peak RSS MB)}. Each path's first step, from the same
    weights, gives the compared losses and the peak memory (freed memory handed back and the high-water
    mark restarted before it); the later steps, interleaved, are timed with nothing reset between them."""
    first, memory = {}, {}
    for path, run in runs.items():
        reset_peak_memory(run.device, hand_back=True)
        first[path] = _step(run, batch)
        memory[path] = peak_memory_mb(run.device) or 0.0
    seconds = {path: [] for path in runs}
    for _ in range(repeats):
        for path, run in runs.items():
            started = time.perf_counter()
            _step(run, batch)
            seconds[path].append(time.perf_counter() - started)
    return {path: (first[path], seconds[path], memory[path]) for path in runs}


def bench_module(module_name: str, batch_size: int, repeats: int) -> list[dict]:
    torch.manual_seed(0)
    batch = coco_like_batch(batch_size, img_dim=2048, vocab=11353)
    results = timed_steps(training_paths(full_size_model(module_name)), batch, repeats)
    reference_loss = float(results["reference"][0][0])
    reference_seconds = statistics.median(results["reference"][1])
    host = f"{cpu_model()} x{torch.get_num_threads()}, torch {torch.__version__}"
    rows = []
    for path, (values, seconds, memory) in results.items():
        median = statistics.median(seconds)
        rows.append({"model": module_name, "path": path, "batch": batch_size, "step_seconds": round(median, 3),
                     "step_seconds_all": " ".join(f"{s:.2f}" for s in seconds),
                     "speedup_vs_reference": round(reference_seconds / median, 3),
                     "peak_rss_mb": round(memory, 1), "first_loss": f"{float(values[0]):.7f}",
                     "loss_diff_vs_reference": f"{abs(float(values[0]) - reference_loss):.2e}", "host": host})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["SGR", "SAF"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per path after the compared first one")
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    print(f"host: {cpu_model()}, {torch.get_num_threads()} threads; CPU features: {features_text()}", flush=True)
    rows = [row for module in args.models for row in bench_module(module, args.batch, args.repeats)]
    publish(rows, args.out, "cpu-training-speed", f"training step at batch {args.batch}: original's forward vs engine")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
