"""The arithmetic a score matrix may be computed in (the `--precision` choices), without torch.

fp32: exact IEEE float32 matmuls (the reference); tf32: TF32 tensor cores on CUDA (faster,
about 1e-3 relative error); bf16: autocast to bfloat16 (fastest on recent GPUs, coarser).
"""

PRECISIONS = ("fp32", "tf32", "bf16")
