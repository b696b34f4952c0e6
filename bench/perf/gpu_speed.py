"""The speed part of `make gpu-check`: COCO-5K-sized scoring (5,000 x 25,000) of full-size SGR and SAF.

Each (model, precision) run scores all images against the first K captions, K as many as fit the
run's time (a probe measures the rate first). When K < 25,000 the row says so: `measured_fraction`
< 1 and `seconds` is the full size's time extrapolated from the measured rate (labelled in
`detail`). Agreement of tf32 / bf16 with fp32 is taken on the captions both runs scored. Each model
also runs fp32 through the opt-in compiled step (BENCH_COMPILE=1, bench.model.fused) beside the
plain path, its compilation timed apart. Each row is on disk as soon as it is measured
(CheckContext.save_rows).
"""

import numpy as np
import torch

from bench.eval.scoring import GPU_CAPTION_CHUNK, score_matrix
from bench.eval.tolerances import PRECISIONS
from bench.model.fused import compile_enabled
from bench.model.random_weights import random_model, small_config
from bench.perf.measure import peak_memory_mb, reset_peak_memory, timed
from bench.perf.workload import agreement, calibrate_spread, embeddings, flops_per_pair, full_size_model

COCO_5K = (5000, 25000)
QUICK = (2, 32)
SPEED_MODELS = ("SGR", "SAF")
PROBE_CAPTIONS = 2 * GPU_CAPTION_CHUNK
SAFETY = 0.8  # of a run's seconds planned for the timed scoring (the probe takes the rest)


def captions_that_fit(rate: float, n_images: int, n_captions: int, seconds: float) -> int:
    """How many captions (whole chunks, at least one chunk) score in `seconds` at `rate` pairs/s."""
    fit = int(rate * seconds * SAFETY / n_images) // GPU_CAPTION_CHUNK * GPU_CAPTION_CHUNK
    return max(min(fit, n_captions), min(GPU_CAPTION_CHUNK, n_captions))


def run_seconds(ctx, runs_left: int) -> float:
    """Each remaining run's share of what is left of the check's budget, capped at --speed-seconds."""
    return max(1.0, min(ctx.speed_seconds, ctx.seconds_left() / max(runs_left, 1)))


def measure(model, inputs, precision: str, seconds: float, device: torch.device) -> tuple[np.ndarray, dict]:
    """(scores of the captions measured, figures) of one (model, precision) run."""
    images, words, lens = inputs
    n_images, n_captions = images.shape[0], words.shape[0]

    def score(k: int) -> np.ndarray:
        return score_matrix(model, images, words[:k], lens[:k], precision=precision)

    probe = min(PROBE_CAPTIONS, n_captions)
    _, probe_seconds = timed(lambda: score(probe), device, warmup=True)
    k = captions_that_fit(n_images * probe / probe_seconds, n_images, n_captions, seconds)
    reset_peak_memory(device)
    sims, measured = timed(lambda: score(k), device, warmup=False)
    rate = n_images * k / measured
    figures = {"pairs": n_images * n_captions, "measured_fraction": round(k / n_captions, 4),
               "seconds": round(n_images * n_captions / rate, 2), "measured_seconds": round(measured, 2),
               "pairs_per_s": round(rate, 1), "peak_memory_mb": round(peak_memory_mb(device) or 0, 1)}
    return sims, figures


def detail(figures: dict, versus: dict | None) -> str:
    fraction = figures["measured_fraction"]
    how = "measured" if fraction >= 1 else f"extrapolated from {fraction:.0%} of the captions"
    text = (f"{figures['pairs_per_s']:.3g} pairs/s, {figures['seconds']:.1f} s {how}, "
            f"peak {figures['peak_memory_mb'] / 1024:.1f} GiB")
    if versus:
        text += f"; vs fp32 max |diff| {versus['max_abs_diff']:.1e}, top-1 i2t {versus['top1_i2t']:.3f}"
    return text


def speed_model(module: str, quick: bool):
    """Full-size random weights; when quick, the tests' small model (the wiring, in seconds on a CPU)."""
    return random_model(small_config(module, "coco_precomp", 50)) if quick else full_size_model(module)


def compiled_row(model, inputs, plain: np.ndarray, module: str, seconds: float, device: torch.device,
                 backend: str) -> dict:
    """fp32 through the opt-in compiled step (bench.model.fused), beside the plain path: its first call
    (the compilation, on one probe's captions) timed apart, then the same measurement as the plain rows.
    `backend`: inductor; the --quick wiring check on a CPU takes "eager" (no C++ build)."""
    images, words, lens = inputs
    probe = min(PROBE_CAPTIONS, words.shape[0])
    with compile_enabled(backend):
        _, first_call = timed(lambda: score_matrix(model, images, words[:probe], lens[:probe]), device, warmup=False)
        sims, figures = measure(model, inputs, "fp32", seconds, device)
    common = min(sims.shape[1], plain.shape[1])
    versus = agreement(sims[:, :common], plain[:, :common])
    figures |= {"compile_seconds": round(first_call, 1), **{f"vs_fp32_{key}": value for key, value in versus.items()}}
    return {"check": f"{module} {images.shape[0]}x{words.shape[0]} fp32 compiled", "status": "info",
            "precision": "fp32", **figures,
            "detail": f"torch.compile'd step ({backend}), first call {first_call:.0f} s; " + detail(figures, versus)}


def speed_part(ctx) -> list[dict]:
    n_images, n_captions = QUICK if ctx.quick else COCO_5K
    torch.manual_seed(0)
    rows, runs_left, inputs = [], len(SPEED_MODELS) * (len(PRECISIONS) + 1), None  # + the compiled fp32 run
    for module in SPEED_MODELS:
        model = speed_model(module, ctx.quick).to(ctx.device)
        config = model.config
        if inputs is None:  # the models share their dimensions: one set of embeddings for all
            inputs = embeddings(n_images, n_captions, embed=config.embed_size, regions=config.num_regions,
                                device=ctx.device)
        calibrate_spread(model, *inputs)
        flops = flops_per_pair(module, float(inputs[2].float().mean()), embed=config.embed_size,
                               sim=config.sim_dim, regions=config.num_regions, sgr_steps=config.sgr_step,
                               executed=True)  # the batched engine's own work, not the original's
        fp32 = None
        for precision in PRECISIONS:
            sims, figures = measure(model, inputs, precision, run_seconds(ctx, runs_left), ctx.device)
            runs_left -= 1
            versus = None
            if fp32 is None:
                fp32 = sims
            else:
                common = min(sims.shape[1], fp32.shape[1])
                versus = agreement(sims[:, :common], fp32[:, :common])
                figures |= {f"vs_fp32_{key}": value for key, value in versus.items()}
            rows.append({"check": f"{module} {n_images}x{n_captions} {precision}", "status": "info",
                         "precision": precision, **figures,
                         "model_tflops": round(figures["pairs_per_s"] * flops / 1e12, 2),
                         "detail": detail(figures, versus)})
            ctx.save_rows(rows)
        backend = "eager" if ctx.quick else "inductor"
        rows.append(compiled_row(model, inputs, fp32, module, run_seconds(ctx, runs_left), ctx.device, backend))
        runs_left -= 1
        ctx.save_rows(rows)
        del model
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    return rows
