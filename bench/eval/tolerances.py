"""The arithmetic a score matrix may be computed in (the `--precision` choices), without torch.

fp32: exact IEEE float32 matmuls (the reference); tf32: TF32 tensor cores on CUDA (faster,
inputs of matrix products at 10 mantissa bits); bf16: autocast to bfloat16 (fastest on recent GPUs, coarser).
The score head and what feeds it stay float32 in every precision, so scores keep float32's
resolution and ties stay as rare as in fp32.
"""

import math

PRECISIONS = ("fp32", "tf32", "bf16")

# Unit roundoff (half an ulp at 1) of each format: 24, 11 and 8 significant bits.
UNIT_ROUNDOFF = {"fp32": 2.0**-24, "tf32": 2.0**-11, "bf16": 2.0**-8}
# Largest |score - the original's CPU float32 score| accepted, scores in (0, 1). The one home of these
# figures: `make gpu-check`, its tests and docs/gpu-check.md read them from here.
# bf16: the four golden checkpoints scored on a CPU differ from the original by at most 0.044 (11 bf16
# unit roundoffs; bf16 matmuls inside, float32 score head); allowed: 24 roundoffs = 0.094, about twice.
# tf32: a CPU has no TF32, so it is emulated (bench.perf.tf32_emulation: the inputs of every float32
# matrix product, attention and GRU products included, cut to 10 mantissa bits) in both ways GPU kernels
# convert: rounding to nearest and truncation. Measured max |diff| per golden below (`python -m
# bench.perf.tf32_emulation`); truncation's error always points the same way, so it adds up instead of
# cancelling (0.019 on coco SGR, 4x rounding's; measured after the engine folded SGR's products).
# Allowed: about twice the larger, as for bf16.
# fp32: measured 1.7e-6 on a CPU; a GPU sums in another order, so 1e-4 (still below any score gap
# that could flip a golden ranking).
ROUNDOFFS_ALLOWED = 24
TF32_EMULATED = {  # {conversion: {golden: max |emulated tf32 score - the original's|}}
    "nearest": {"coco sgr": 0.0046, "coco saf": 0.0024, "f30k sgr": 0.0033, "f30k saf": 0.0013},
    "truncate": {"coco sgr": 0.0194, "coco saf": 0.0018, "f30k sgr": 0.0131, "f30k saf": 0.0020},
}
TF32_TOLERANCE = math.ceil(2000 * max(max(by_golden.values()) for by_golden in TF32_EMULATED.values())) / 1000
SCORE_TOLERANCE = {"fp32": 1e-4, "tf32": TF32_TOLERANCE, "bf16": ROUNDOFFS_ALLOWED * UNIT_ROUNDOFF["bf16"]}
# Smallest share of queries whose top-ranked item must equal the reference's, per direction. On the golden
# splits (25-30 images, 125-150 captions) one flipped near-tie moves it by 3-4 points; measured on a CPU:
# bf16 0.88-1.0, fp32 1.0, tf32 emulated 0.97-1.0 (either conversion).
TOP1_AGREEMENT = {"fp32": 0.95, "tf32": 0.9, "bf16": 0.8}
