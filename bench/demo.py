"""`make demo`: the whole pipeline on generated data, on a CPU, with nothing to download.

Generates a small SCAN-format dataset whose captions name the concepts its region features
mix, trains SGR and SAF with the DAA loss for a few epochs (the same loop as `bench train`),
scores the test split with each model and their SGRAF ensemble (the same engine and metrics
as `bench eval`), and writes `results/demo/demo-{sgr,saf,sgraf}.{csv,json}`, marked in their
provenance as runs on generated data so that `table`, `report` and `plot` never set them beside
the paper's Flickr30K figures.

    python -m bench demo --data-root data/demo --models-root models/demo --results results/demo
"""

import math
import shutil
import time
from pathlib import Path

import torch
from rich import box
from rich.console import Console
from rich.table import Table

from bench.common.progress import whole_run
from bench.data import synthetic
from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.demo_plan import DEMO_TRAINING, EVALUATED, STEPS_PER_SPLIT, TRAINED, DemoPlan, demo_work, plan_line
from bench.model import random_weights
from bench.results.evaluate import evaluate
from bench.training.loop import train
from bench.training.settings import TrainSettings

DATA_NAME = "f30k_precomp"  # the demo poses as Flickr30K so that the f30k-1k protocol scores it
PROTOCOL = "f30k-1k"


def write_demo_data(root: Path, plan: DemoPlan, advance=lambda n: None) -> None:
    """train: one row per image (like SCAN's train); dev and test: one row per caption; `advance(n)`
    after each split."""
    synthetic.write_vocab(root / "vocab" / f"{DATA_NAME}_vocab.json")
    directory = root / DATA_NAME
    for split, n_images, per_caption, seed in (("train", plan.train_images, False, 1),
                                               ("dev", plan.dev_images, True, 2),
                                               ("test", plan.test_images, True, 3)):
        synthetic.write_split(directory, split, n_images, regions=plan.regions, rows_per_caption=per_caption,
                              seed=seed, first_id=100000 * seed)
        synthetic.mark_generated(directory, split, synthetic.__name__)
        advance(STEPS_PER_SPLIT)


def train_demo_model(module_name: str, data_root: Path, models_root: Path, plan: DemoPlan) -> Path:
    out_dir = models_root / module_name.lower()
    Console(stderr=True).print(f"demo: training {module_name} with DAA, {plan.num_epochs} epochs -> {out_dir}",
                               highlight=False)
    shutil.rmtree(out_dir, ignore_errors=True)  # the demo's own previous run
    dims = random_weights.small_config(module_name, DATA_NAME, 1)
    settings = TrainSettings(data_name=DATA_NAME, module_name=module_name, out_dir=out_dir, data_root=data_root,
                             num_epochs=plan.num_epochs, embed_size=dims.embed_size, word_dim=dims.word_dim,
                             sim_dim=dims.sim_dim, **DEMO_TRAINING)
    return train(settings)


def chance_rsum(n_images: int) -> float:
    """Expected rsum of random scores: i2t finds one of its captions, t2i the one image."""
    n_captions = CAPTIONS_PER_IMAGE * n_images
    i2t = [1 - math.comb(n_captions - CAPTIONS_PER_IMAGE, k) / math.comb(n_captions, k) for k in (1, 5, 10)]
    t2i = [min(k / n_images, 1.0) for k in (1, 5, 10)]
    return 100 * (sum(i2t) + sum(t2i))


def evaluate_demo(label: str, checkpoints: list[Path], data_root: Path, results: Path) -> dict:
    """Score the test split with bench.evaluate (as `bench eval` does); write <results>/demo-<label>.*."""
    run_id = f"demo-{label.lower()}"
    result = evaluate(checkpoints, PROTOCOL, data_root=data_root, device="cpu", run_id=run_id)  # marked generated
    result.write(json_path=results / f"{run_id}.json", csv_path=results / f"{run_id}.csv")
    return result.metrics


def print_summary(metrics: dict[str, dict], chance: float, results: Path, console: Console | None = None) -> None:
    table = Table(title=f"demo: {PROTOCOL} protocol on generated data", box=box.SIMPLE_HEAD)
    columns = [("i2t", "r1"), ("i2t", "r5"), ("i2t", "r10"), ("t2i", "r1"), ("t2i", "r5"), ("t2i", "r10")]
    for name in ["model", *(f"{d} {k.upper()}" for d, k in columns), "ASP i2t", "ASP t2i", "rsum"]:
        table.add_column(name, justify="left" if name == "model" else "right")
    for label, m in metrics.items():
        table.add_row(label, *(f"{m[d][k]:.1f}" for d, k in columns), f"{m['i2t']['asp']:.1f}",
                      f"{m['t2i']['asp']:.1f}", f"{m['rsum']:.1f}")
    table.caption = f"chance rsum {chance:.1f}; rows per figure in {results / 'demo-*.csv'}"
    (console or Console(width=120)).print(table)


def run_demo(data_root: Path, models_root: Path, results: Path, plan: DemoPlan = DemoPlan(),
             announced: bool = False) -> dict:
    """Generate, train both models, evaluate SGR, SAF and SGRAF; returns metrics per model.

    One progress count covers all of it (bench.demo_plan); `announced`: the caller has already
    printed the plan's line (the command does, before torch loads)."""
    started = time.perf_counter()
    # Tensors this small gain nothing from a second thread, and on a busy machine OpenMP's
    # spinning threads made epochs up to 40x slower; one thread keeps the demo predictable.
    torch.set_num_threads(1)
    if not announced:
        Console(stderr=True).print(plan_line(plan, data_root, models_root, results), highlight=False)
    previous = sorted(p.name for p in results.glob("demo-*.json")) if results.is_dir() else []
    if previous:
        Console(stderr=True).print(f"demo: replacing the previous demo's files in {results} ({', '.join(previous)}, "
                                   f"their .csv and .queries.npz) and its models in {models_root}", highlight=False)
    work = demo_work(plan)
    with whole_run("demo", work.total, unit="steps") as advance:
        write_demo_data(data_root, plan, advance=lambda n: advance(n, stage="1/3 generating data"))
        best = {}
        for name in TRAINED:
            advance(0, stage=f"2/3 training {name}")
            best[name] = train_demo_model(name, data_root, models_root, plan)
        metrics = {}
        for label, networks in EVALUATED:
            advance(0, stage=f"3/3 evaluating {label}")
            metrics[label] = evaluate_demo(label, [best[name] for name in networks], data_root, results)
            advance(work.evaluating[label])
    print_summary(metrics, chance_rsum(plan.test_images), results)
    Console().print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return metrics
