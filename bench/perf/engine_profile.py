"""Where the engine's time goes: a per-operator profile of one scoring call at `make bench`'s workload.

Operators are sorted into matrix products (each shape with its own GFLOP/s and its share of the fp32
matmul peak timed in the same process), softmax and normalisation, other element-wise work, copies
(copy, cat, index_select, ...) and Python overhead (the wall time no operator accounts for).

    python -m bench.perf.engine_profile --models SGR SAF          # docs/performance.md's tables
"""

import argparse
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from bench.common.host import cpu_model, features_text
from bench.eval.scoring import score_matrix
from bench.perf.measure import matmul_work
from bench.perf.report import publish
from bench.perf.workload import calibrate_spread, embeddings, full_size_model

NORMALISATION_OPS = {"aten::softmax", "aten::_softmax", "aten::linalg_vector_norm", "aten::sigmoid", "aten::sum",
                     "aten::div", "aten::div_", "aten::native_batch_norm", "aten::mean", "aten::abs"}
COPY_OPS = {"aten::copy_", "aten::cat", "aten::index_select", "aten::clone", "aten::_to_copy", "aten::stack",
            "aten::index", "aten::contiguous"}
MAX_WORDS, REGIONS = 32, 36  # the workload's longest caption (with start/end) is 22 tokens
MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addmv", "aten::mv"}


def _size(value: int) -> str:
    """A dimension as a label: word-dependent sizes (up to MAX_WORDS) read `n`, the others as they are."""
    return "n" if value <= MAX_WORDS and value != REGIONS else str(value)


def matmul_shape(name: str, shapes: list) -> tuple[str, int]:
    """(`rows x K @ K x N`, FLOPs) of one matrix-product call from its recorded input shapes; calls that
    differ only in rows (images x captions x words) or caption length share a label."""
    if name in ("aten::addmm", "aten::addmv", "aten::baddbmm"):
        shapes = shapes[1:]
    a, b = shapes[0], shapes[1]
    if name in ("aten::bmm", "aten::baddbmm"):
        (batch, m, k), n = a, b[2]
        return f"batch x ({_size(m)} x {_size(k)} @ {_size(k)} x {_size(n)})", 2 * batch * m * k * n
    if name in ("aten::addmv", "aten::mv"):
        return f"{a[0]} x {a[1]} @ {a[1]}", 2 * a[0] * a[1]
    return f"rows x {a[1]} @ {a[1]} x {_size(b[1]) if b[1] > REGIONS else b[1]}", 2 * a[0] * a[1] * b[1]


def category(name: str) -> str:
    if name in MATMUL_OPS:
        return "matrix products"
    if name in NORMALISATION_OPS:
        return "softmax / normalisation"
    if name in COPY_OPS:
        return "copies"
    return "element-wise"


def profile_call(run) -> tuple[list, float]:
    """Leaf events of one call of `run` under the profiler, and the call's wall time."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiler:
        started = time.perf_counter()
        run()
        wall = time.perf_counter() - started
    return [e for e in profiler.events() if e.name.startswith("aten::") and e.self_cpu_time_total > 0], wall


def summarise(events: list, wall: float, peak_gflops: float, top: int) -> list[dict]:
    """One row per category, then one per matrix-product shape (the `top` slowest), with FLOP rates."""
    seconds, shapes = defaultdict(float), defaultdict(lambda: [0.0, 0, 0])
    for event in events:
        kind, spent = category(event.name), event.self_cpu_time_total / 1e6
        seconds[kind] += spent
        if kind == "matrix products":
            label, flops = matmul_shape(event.name, event.input_shapes)
            entry = shapes[(event.name.removeprefix("aten::"), label)]
            entry[0], entry[1], entry[2] = entry[0] + spent, entry[1] + flops, entry[2] + 1
    seconds["Python overhead (wall - operators)"] = max(wall - sum(seconds.values()), 0.0)
    rows = [{"part": kind, "seconds": round(spent, 4), "share": round(spent / wall, 3)}
            for kind, spent in sorted(seconds.items(), key=lambda item: -item[1])]
    matmul_seconds = seconds["matrix products"]
    total_flops = sum(flops for _, flops, _ in shapes.values())
    rows.append({"part": "matrix products, all shapes", "seconds": round(matmul_seconds, 4),
                 "gflops": round(total_flops / matmul_seconds / 1e9, 1),
                 "of_peak": round(total_flops / matmul_seconds / 1e9 / peak_gflops, 3)})
    for (op, label), (spent, flops, calls) in sorted(shapes.items(), key=lambda item: -item[1][0])[:top]:
        rate = flops / spent / 1e9
        rows.append({"part": f"{op} {label}", "calls": calls, "seconds": round(spent, 4),
                     "share": round(spent / wall, 3), "gflops": round(rate, 1),
                     "of_peak": round(rate / peak_gflops, 3)})
    return rows


def profile_model(module: str, args) -> list[dict]:
    model = full_size_model(module)
    images, words, lens = embeddings(args.images, args.captions)
    calibrate_spread(model, images, words, lens)
    run = lambda: score_matrix(model, images, words, lens, precision="fp32")  # noqa: E731
    peak_run, peak_flops = matmul_work(torch.device("cpu"), torch.float32, args.peak_size)
    run()
    best_wall, best_events, best_peak = float("inf"), None, 0.0
    for _ in range(args.repeats):  # the least disturbed of a few profiled calls, with a peak beside each
        started = time.perf_counter()
        peak_run()
        best_peak = max(best_peak, peak_flops / (time.perf_counter() - started) / 1e9)
        events, wall = profile_call(run)
        if wall < best_wall:
            best_wall, best_events = wall, events
    rows = summarise(best_events, best_wall, best_peak, args.top)
    host = f"{cpu_model()} x{torch.get_num_threads()}, torch {torch.__version__}"
    return [{"model": module, **row, "peak_gflops": round(best_peak, 1), "host": host} for row in rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["SGR", "SAF"])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--captions", type=int, default=100)
    parser.add_argument("--peak-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=12, help="matrix-product shapes listed, slowest first")
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print(f"host: {cpu_model()}, {torch.get_num_threads()} threads; CPU features: {features_text()}", flush=True)
    rows = [row for module in args.models for row in profile_model(module, args)]
    publish(rows, args.out, "cpu-engine-profile", "where a scoring call's time goes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
