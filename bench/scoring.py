"""Whole score matrices: image shards x length-grouped caption chunks, on any device."""

import contextlib

import numpy as np
import torch

from bench.engine import pair_scores
from bench.errors import BenchError
from bench.model import SimilarityModel
from bench.progress import progress_bar

PRECISIONS = ("fp32", "tf32", "bf16")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return torch.device(name)


@contextlib.contextmanager
def precision_context(precision: str, device: torch.device):
    """fp32: exact IEEE matmuls; tf32: TF32 tensor cores on CUDA; bf16: autocast to bfloat16."""
    if precision not in PRECISIONS:
        raise BenchError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    try:
        if precision == "bf16":
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.set_float32_matmul_precision(previous)


@torch.no_grad()
def score_matrix(model: SimilarityModel, img_emb: torch.Tensor, cap_emb: torch.Tensor, cap_lens: torch.Tensor,
                 *, precision: str = "fp32", image_shard: int = 128, caption_chunk: int = 8) -> np.ndarray:
    """float32 (n_images, n_captions) similarity matrix, computed shard by shard."""
    sim_enc = model.sim_enc
    device = img_emb.device
    out = np.empty((img_emb.shape[0], cap_emb.shape[0]), dtype=np.float32)
    with precision_context(precision, device), progress_bar("scoring", img_emb.shape[0]) as advance:
        img_glo = sim_enc.v_global_w(img_emb)
        for start in range(0, img_emb.shape[0], image_shard):
            stop = min(start + image_shard, img_emb.shape[0])
            block = pair_scores(sim_enc, img_emb[start:stop], cap_emb, cap_lens,
                                img_glo=img_glo[start:stop], caption_chunk=caption_chunk)
            out[start:stop] = block.float().cpu().numpy()
            advance(stop - start)
    return out
