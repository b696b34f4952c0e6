"""The arithmetic a score matrix may be computed in (the `--precision` choices), without torch.

fp32: exact IEEE float32 matmuls (the reference); tf32: TF32 tensor cores on CUDA (faster,
about 1e-3 relative error); bf16: autocast to bfloat16 (fastest on recent GPUs, coarser).
The score head and what feeds it stay float32 in every precision, so scores keep float32's
resolution and ties stay as rare as in fp32.
"""

PRECISIONS = ("fp32", "tf32", "bf16")

# Unit roundoff (half an ulp at 1) of each format: 24, 11 and 8 significant bits.
UNIT_ROUNDOFF = {"fp32": 2.0**-24, "tf32": 2.0**-11, "bf16": 2.0**-8}
# Largest |score - the original's CPU float32 score| accepted, scores in (0, 1). The one home of these
# figures: `make gpu-check`, its tests and docs/gpu-check.md read them from here.
# bf16: the four golden checkpoints scored on a CPU differ from the original by at most 0.044 (11 bf16
# unit roundoffs; bf16 matmuls inside, float32 score head); allowed: 24 roundoffs = 0.094, about twice.
# tf32: the same 24 roundoffs of TF32's finer mantissa = 0.012 (a CPU has no TF32: not measurable here).
# fp32: measured 1.7e-6 on a CPU; a GPU sums in another order, so 1e-4 (still below any score gap
# that could flip a golden ranking).
ROUNDOFFS_ALLOWED = 24
SCORE_TOLERANCE = {"fp32": 1e-4, **{p: ROUNDOFFS_ALLOWED * UNIT_ROUNDOFF[p] for p in ("tf32", "bf16")}}
# Smallest share of queries whose top-ranked item must equal the reference's, per direction. On the golden
# splits (25-30 images, 125-150 captions) one flipped near-tie moves it by 3-4 points; measured on a CPU:
# bf16 0.88-1.0, fp32 and tf32 1.0.
TOP1_AGREEMENT = {"fp32": 0.95, "tf32": 0.9, "bf16": 0.8}
