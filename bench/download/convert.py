"""Stream `{split}_ims.npy` into chunked HDF5 (`{split}.h5`, dataset `feat`), as the original
pipeline prepared its features, without ever holding the array: COCO train is 33 GB.

Rows are read with plain `readinto` into one reusable buffer (a memory map would count every
page it touched towards the process's resident memory); peak memory stays near one block.
Measure it: `python -m bench.perf.convert_bench --gib 3`.
"""

from pathlib import Path

import h5py
import numpy as np

from bench.common.atomic import atomic_path
from bench.common.errors import BenchError
from bench.common.progress import byte_progress
from bench.common.replace_rule import DOWNLOAD

BLOCK_BYTES = 64 << 20  # rows read per step; the only large allocation


def read_npy_header(handle, origin) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from a .npy stream positioned at its start; data follows."""
    try:
        version = np.lib.format.read_magic(handle)
        reader = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, fortran, dtype = reader(handle)
    except ValueError as err:
        raise BenchError(f"{origin}: not a .npy array ({err})") from None
    return tuple(shape), fortran, np.dtype(dtype)


def npy_to_hdf5(source: Path, dest: Path, block_bytes: int = BLOCK_BYTES) -> tuple[int, ...]:
    """Copy the array in `source` to `dest`:/feat (chunked by image row); returns its shape."""
    with open(source, "rb") as handle:
        shape, fortran, dtype = read_npy_header(handle, source)
        if fortran or len(shape) < 1:
            raise BenchError(f"{source}: expected a C-ordered array with rows, got shape {shape}")
        row_items = int(np.prod(shape[1:], dtype=np.int64))
        rows_per_block = max(1, block_bytes // max(1, row_items * dtype.itemsize))
        buffer = np.empty((rows_per_block, *shape[1:]), dtype=dtype)
        with atomic_path(dest, DOWNLOAD, suffix=".h5") as tmp, h5py.File(tmp, "w") as out, \
                byte_progress(f"convert {source.name} -> {dest.name}", shape[0] * row_items * dtype.itemsize) as update:
            feat = out.create_dataset("feat", shape=shape, dtype=dtype, chunks=(1, *shape[1:]) if shape[1:] else None)
            for start in range(0, shape[0], rows_per_block):
                rows = min(rows_per_block, shape[0] - start)
                block = buffer[:rows]
                if handle.readinto(memoryview(block).cast("B")) != block.nbytes:
                    raise BenchError(f"{source}: ends before its header's {shape[0]} rows; the file is truncated")
                feat[start:start + rows] = block
                update((start + rows) * row_items * dtype.itemsize)
    return shape
