"""TF32 on a CPU: every float32 matrix product with its inputs cut to TF32's 10 mantissa bits.

With `--precision tf32` a CUDA GPU converts the inputs of each float32 matrix product (linear layers,
SCAN's attention products, SGR's graph products, the GRU's) to TF32 and accumulates in float32.
Kernels convert in one of two ways: rounding to nearest (cuBLAS), or truncation (kernels that hand
float32 bits straight to the tensor cores, which ignore the low 13). `EmulatedTF32(conversion)` does
either to the inputs of every such product run on a CPU, at the level of PyTorch's dispatcher, so
composite operations (linear, matmul, the GRU) are reached through the products they are made of.
Products written as an elementwise product and a sum (the score head) are not matrix products on a
GPU either, and stay exact here too.

    python -m bench.perf.tf32_emulation     # the goldens' max |score - the original's| per conversion

bench.eval.tolerances derives the tf32 tolerance from these figures.
"""

import argparse

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

CONVERSIONS = ("nearest", "truncate")
DROPPED_BITS = 13  # float32 stores 23 mantissa bits, TF32 10
aten = torch.ops.aten
# The matrix products cuBLAS runs on tensor cores under TF32, and which arguments are their factors.
MATRIX_PRODUCTS = {aten.mm: (0, 1), aten.bmm: (0, 1), aten.addmm: (1, 2), aten.baddbmm: (1, 2)}


def to_tf32(values: torch.Tensor, conversion: str) -> torch.Tensor:
    """float32 values as TF32 holds them: the low 13 mantissa bits rounded away (to nearest, ties to
    even) or cut off (towards zero), on the bit pattern."""
    bits = values.contiguous().view(torch.int32)
    if conversion == "nearest":
        bits = bits + ((1 << (DROPPED_BITS - 1)) - 1) + ((bits >> DROPPED_BITS) & 1)
    return (bits & ~((1 << DROPPED_BITS) - 1)).view(torch.float32)


class EmulatedTF32(TorchDispatchMode):
    """Inside `with EmulatedTF32("nearest" | "truncate"):` float32 matrix products take TF32 inputs."""

    def __init__(self, conversion: str):
        super().__init__()
        if conversion not in CONVERSIONS:
            raise ValueError(f"conversion {conversion!r}: expected one of {CONVERSIONS}")
        self.conversion = conversion
        self.products = 0  # how many products were converted (tests check that the model's were)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        factors = MATRIX_PRODUCTS.get(func.overloadpacket, ())
        if factors and all(args[i].dtype == torch.float32 for i in factors):
            args = tuple(to_tf32(a, self.conversion) if i in factors else a for i, a in enumerate(args))
            self.products += 1
        return func(*args, **(kwargs or {}))


def golden_differences(conversion: str, cases=None) -> dict:
    """{(dataset, model): max |emulated tf32 score - the original's CPU score|} on the golden fixtures."""
    from bench.data.splits import load_split
    from bench.eval.score_split import score_split
    from bench.perf.gpu_correctness import GOLDEN, GOLDEN_CASES

    expected = np.load(GOLDEN / "expected.npz")
    differences = {}
    for dataset, split_name, model in cases or GOLDEN_CASES:
        split = load_split(GOLDEN, f"{dataset}_precomp", split_name)
        with EmulatedTF32(conversion):
            sims = score_split([str(GOLDEN / f"{dataset}_{model}.pth.tar")], split, GOLDEN, None,
                               torch.device("cpu"), "tf32").sims
        differences[(dataset, model)] = float(np.abs(sims - expected[f"{dataset}_{model}/sims"]).max())
    return differences


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="tf32-emulation", description=__doc__.splitlines()[0]).parse_args(argv)
    for conversion in CONVERSIONS:
        for (dataset, model), difference in golden_differences(conversion).items():
            print(f"{conversion:9s} {dataset} {model.upper()}: max |diff| {difference:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
