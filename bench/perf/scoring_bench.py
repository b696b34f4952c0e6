"""Scoring speed: the per-caption reference loop vs the batched engine, fp32 / tf32 / bf16.

model_gflops is the rate of matrix-product work each path actually executes (workload.flops_per_pair:
the reference loop the original's count, the batched engine its own, smaller for SGR), and
of_matmul_peak divides it by a matmul peak timed in the same rounds as the paths, so a busy spell of
a shared machine lowers both alike; all_products_of_peak counts every matrix product the engine's
call executes (PyTorch's FLOP counter: the per-pair work and the per-image and per-caption encoders).
After each model, one line says how fast bf16 ran against fp32 and which is faster on this host.
The host's CPU features are printed and kept with the rows.

    python -m bench.perf.scoring_bench --device cpu                 # make bench
    python -m bench.perf.scoring_bench --device cuda --coco5k       # make bench-gpu

Every figure comes from this process: speed-ups are ratios of runs on the same inputs.
"""

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common.host import cpu_model, features_text
from bench.common.terminal import summary
from bench.eval.scoring import score_matrix
from bench.model.reference_loop import reference_scores
from bench.perf.measure import matmul_work, peak_memory_mb, reset_peak_memory, timed
from bench.perf.report import publish
from bench.perf.workload import agreement, calibrate_spread, embeddings, flops_per_pair, full_size_model

PEAK_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16}


def _row(device_name, model, path, precision, pairs, seconds, reference_rate, flops, peak_gflops, **extra):
    rate = pairs / seconds
    return {"device": device_name, "model": model, "path": path, "precision": precision, "pairs": pairs,
            "seconds": round(seconds, 4), "pairs_per_s": round(rate, 1),
            "speedup_vs_reference": round(rate / reference_rate, 3) if reference_rate else None,
            "mflop_per_pair": round(flops / 1e6, 2), "model_gflops": round(rate * flops / 1e9, 2),
            "of_matmul_peak": round(rate * flops / 1e9 / peak_gflops, 3) if peak_gflops else None, **extra}


def fastest_runs(runners: dict, device: torch.device, repeats: int, warmup: bool) -> dict:
    """{key: (result, fastest seconds, peak memory MB)}, the runners interleaved so that a slow
    spell of a shared machine hits every path alike. Memory: CPU process RSS, CUDA allocated."""
    best = {}
    for key, fn in runners.items():
        if warmup:
            fn()
    for _ in range(repeats):
        for key, fn in runners.items():
            reset_peak_memory(device)
            result, seconds = timed(fn, device, warmup=False)
            if key not in best or seconds < best[key][1]:
                best[key] = (result, seconds, round(peak_memory_mb(device) or 0, 1))
    return best


def executed_flops(run) -> int:
    """Every matrix-product FLOP one call executes, by PyTorch's own counter: the per-pair work and the
    per-image and per-caption encoders (self-attention) that model_gflops leaves out."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def say_faster_precision(module: str, seconds: dict) -> None:
    """One line: how fast bf16 ran against fp32 on this host, and which precision is faster here."""
    if "fp32" not in seconds or "bf16" not in seconds:
        return
    ratio = seconds["fp32"] / seconds["bf16"]
    faster = "bf16" if ratio > 1 else "fp32"
    print(f"{module} on this host ({cpu_model()}, {torch.get_num_threads()} threads): bf16 ran at {ratio:.2f}x "
          f"of fp32's speed: {faster} is faster here (fp32 is the default, and the only precision compared with "
          "the paper)", flush=True)


def bench_model(module: str, args, device: torch.device, device_name: str) -> list[dict]:
    """The reference loop, the batched engine in each precision and the matmul peaks, interleaved."""
    model = full_size_model(module).to(device)
    images, words, lens = embeddings(args.images, args.captions, device=device)
    calibrate_spread(model, images, words, lens)
    mean_tokens = float(lens.float().mean())
    original_flops = flops_per_pair(module, mean_tokens)
    engine_flops = flops_per_pair(module, mean_tokens, executed=True)
    ref_pairs = args.reference_images * args.reference_captions
    runners = {("reference", "fp32"): lambda: reference_scores(
        model.sim_enc, images[:args.reference_images], words[:args.reference_captions], lens[:args.reference_captions])}
    for precision in args.precisions:
        runners[("batched", precision)] = lambda p=precision: score_matrix(model, images, words, lens, precision=p)
    peak_flops = {}
    for precision in {"fp32", *args.precisions}:
        runners[("peak", precision)], peak_flops[precision] = matmul_work(device, PEAK_DTYPES[precision],
                                                                          args.peak_size)
    best = fastest_runs(runners, device, args.repeats, warmup=not args.coco5k)
    peaks = {p: flops / best[("peak", p)][1] / 1e9 for p, flops in peak_flops.items()}
    ref_rate = ref_pairs / best[("reference", "fp32")][1]
    rows = [_row(device_name, module, "reference", "fp32", ref_pairs, best[("reference", "fp32")][1], ref_rate,
                 original_flops, peaks["fp32"])]
    baseline = best[("batched", args.precisions[0])][0]
    counted = executed_flops(lambda: score_matrix(model, images, words, lens, precision=args.precisions[0]))
    for precision in args.precisions:
        sims, seconds, peak_mb = best[("batched", precision)]
        extra = {"peak_memory_mb": peak_mb,
                 "all_products_of_peak": round(counted / seconds / 1e9 / peaks[precision], 3)}
        if precision != args.precisions[0]:
            extra |= agreement(sims, baseline)
        rows.append(_row(device_name, module, "batched", precision, sims.size, seconds, ref_rate, engine_flops,
                         peaks[precision], **extra))
    say_faster_precision(module, {p: best[("batched", p)][1] for p in args.precisions})
    for precision, value in sorted(peaks.items()):
        rows.append({"device": device_name, "model": module, "path": f"matmul {args.peak_size}^3 peak",
                     "precision": precision, "model_gflops": round(value, 1)})
    return rows


def parse_args(argv):
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=["SGR", "SAF"])
    parser.add_argument("--precisions", nargs="+", default=None, help="first one is the agreement baseline")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--captions", type=int, default=100)
    parser.add_argument("--reference-images", type=int, default=48)
    parser.add_argument("--reference-captions", type=int, default=100)
    parser.add_argument("--coco5k", action="store_true", help="5,000 images x 25,000 captions (GPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path; the fastest counts")
    parser.add_argument("--peak-size", type=int, default=2048, help="matmul size for the peak measurement")
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.precisions = args.precisions or (["fp32", "tf32", "bf16"] if cuda else ["fp32", "bf16"])
    if args.coco5k:
        args.images, args.captions = 5000, 25000
        args.reference_images, args.reference_captions = 100, 500
        args.repeats = 1
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_model()} x{torch.get_num_threads()}"
    print(f"host: {cpu_model()}, {torch.get_num_threads()} threads; CPU features: {features_text()}", flush=True)
    rows = [row for module in args.models for row in bench_model(module, args, device, name)]
    publish(rows, args.out, f"{device.type}-scoring", f"scoring on {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
