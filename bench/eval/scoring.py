"""Whole score matrices: image shards x length-grouped caption chunks, on any device.

Shards follow the device's free memory, and an out-of-memory error halves the shard and
retries instead of failing. Under torchrun, each process scores a contiguous slice of the
images and rank 0 alone receives the assembled matrix (the others get None).
"""

import os
import sys
import time

import numpy as np
import torch

from bench.common.distributed import active_world, gather_objects
from bench.model.engine import pair_scores
from bench.common.errors import BenchError
from bench.model.network import SimilarityModel
from bench.common.progress import human_duration, note, progress_bar
from bench.eval.precision import precision_context

CPU_IMAGE_SHARD = 128  # on CPU, small shards keep the big intermediates in cache (docs/performance.md)
CPU_CAPTION_CHUNK = 8
GPU_CAPTION_CHUNK = 32
MEMORY_SHARE = 0.5  # of free memory one shard's intermediates may take


def resolve_device(name: str) -> torch.device:
    """auto, cpu, cuda or cuda:N, checked against this machine (meta, mps, ... are refused)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise BenchError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise BenchError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def warn_slow_bf16(precision: str, device: torch.device) -> None:
    """bf16 on a CPU without native bf16 matmuls (AVX512-BF16 / AMX) is far slower than fp32."""
    if precision != "bf16" or device.type != "cpu":
        return
    try:
        native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return
    if not native:
        print("daa-bench: warning: this CPU has no native bf16 matmuls; bf16 will be much slower "
              "than fp32 here", file=sys.stderr)


def free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def bytes_per_image(regions: int, embed: int, sim: int, max_words: int, caption_chunk: int) -> int:
    """float32 intermediates of one image against one caption chunk (attention, context, nodes)."""
    return 4 * caption_chunk * max_words * (2 * regions + 3 * embed + 6 * sim)


def plan_image_shard(device: torch.device, n_images: int, per_image: int) -> int:
    """Images per shard: what half the free memory holds; on CPU also capped for cache reuse."""
    fits = max(1, int(free_memory_bytes(device) * MEMORY_SHARE) // max(per_image, 1))
    cap = CPU_IMAGE_SHARD if device.type == "cpu" else n_images
    return max(1, min(fits, cap, n_images))


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def _score_rows(sim_enc, img_emb, cap_emb, cap_lens, shard: int, chunk: int, advance):
    """Scores of these images, shard by shard; on out-of-memory, halve the shard and retry."""
    img_glo = sim_enc.v_global_w(img_emb)
    blocks, start = [], 0
    while start < img_emb.shape[0]:
        stop = min(start + shard, img_emb.shape[0])
        try:
            block = pair_scores(sim_enc, img_emb[start:stop], cap_emb, cap_lens,
                                img_glo=img_glo[start:stop], caption_chunk=chunk)
        except (torch.OutOfMemoryError, RuntimeError) as error:
            if not is_out_of_memory(error) or shard == 1:
                raise
            shard = max(1, shard // 2)
            if img_emb.device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        blocks.append(block.float().cpu().numpy())
        advance(stop - start)
        start = stop
    return np.concatenate(blocks) if blocks else np.empty((0, cap_emb.shape[0]), dtype=np.float32)


@torch.no_grad()
def score_matrix(model: SimilarityModel, img_emb: torch.Tensor, cap_emb: torch.Tensor, cap_lens: torch.Tensor,
                 *, precision: str = "fp32", image_shard: int | None = None,
                 caption_chunk: int | None = None) -> np.ndarray | None:
    """float32 (n_images, n_captions) similarity matrix; shards planned from free memory.

    Under torchrun each process scores its share of the images and only rank 0 gets the matrix;
    the other ranks get None."""
    sim_enc, device = model.sim_enc, img_emb.device
    n_images = img_emb.shape[0]
    config = model.config
    chunk = caption_chunk or (CPU_CAPTION_CHUNK if device.type == "cpu" else GPU_CAPTION_CHUNK)
    per_image = bytes_per_image(config.num_regions, config.embed_size, config.sim_dim, int(cap_lens.max()), chunk)
    if image_shard is not None and image_shard < 1:
        raise BenchError(f"--image-shard {image_shard}: must be at least 1")
    shard = image_shard or plan_image_shard(device, n_images, per_image)
    world = active_world()
    # whole shards per process, so every image is scored in the same shard as in one process
    n_shards = -(-n_images // shard)
    bounds = np.linspace(0, n_shards, world.world_size + 1).astype(int) * shard
    mine = slice(min(int(bounds[world.rank]), n_images), min(int(bounds[world.rank + 1]), n_images))
    with precision_context(precision, device), progress_bar("scoring", mine.stop - mine.start, unit="images") as advance:
        rows = _score_rows(sim_enc, img_emb[mine], cap_emb, cap_lens, shard, chunk, advance)
    if not world.distributed:
        return rows
    blocks = gather_objects(rows)
    return None if blocks is None else np.concatenate(blocks)


PROBE_IMAGES = CPU_IMAGE_SHARD  # a real shard, so that the per-chunk cost is the real one
PROBE_CAPTIONS = 32
PROBE_FACTOR = 100  # smaller work is over before an estimate would help


def announce_expected_time(model: SimilarityModel, img_emb: torch.Tensor, cap_emb: torch.Tensor,
                           cap_lens: torch.Tensor, pairs: int, what: str, precision: str = "fp32",
                           min_seconds: float = 10.0) -> float:
    """Print `<what>: 125M pairs, about 6.5 h on this CPU`, from a probe of a few hundred pairs.

    The probe scores a handful of images against captions spread over the split (so that their
    lengths are typical); small shards run a little slower than real ones, so the figure errs long.
    Work not much larger than the probe, or expected to take under `min_seconds`, is not announced.
    """
    images = img_emb[:PROBE_IMAGES]
    columns = torch.linspace(0, cap_emb.shape[0] - 1, min(PROBE_CAPTIONS, cap_emb.shape[0])).long()
    if active_world().rank != 0 or pairs < PROBE_FACTOR * images.shape[0] * len(columns):
        return 0.0
    started = time.perf_counter()
    with torch.no_grad(), precision_context(precision, img_emb.device):
        glo = model.sim_enc.v_global_w(images)
        pair_scores(model.sim_enc, images, cap_emb[columns.to(cap_emb.device)], cap_lens[columns.to(cap_lens.device)],
                    img_glo=glo, caption_chunk=CPU_CAPTION_CHUNK)
        if img_emb.device.type == "cuda":
            torch.cuda.synchronize(img_emb.device)
    seconds = pairs * (time.perf_counter() - started) / (images.shape[0] * len(columns))
    where = "this CPU" if img_emb.device.type == "cpu" else f"this GPU ({torch.cuda.get_device_name(img_emb.device)})"
    hint = "; a GPU takes minutes" if img_emb.device.type == "cpu" and seconds > 600 else ""
    if seconds >= min_seconds:
        note(f"{what}: {pairs / 1e6:,.1f}M pairs, about {human_duration(seconds)} on {where}{hint}")
    return seconds
