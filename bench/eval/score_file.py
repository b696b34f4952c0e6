"""A score matrix from any retrieval model (a `.npy` file or an array), checked before any metric.

The file's header is read first, by itself: an object array (a pickle inside the `.npy`) is
refused without a byte of it being loaded. The matrix is then memory-mapped in the dtype it was
saved in (a coco-5k float32 matrix is 500 MB; it is never copied whole), and only the blocks the
protocol uses are checked for NaN and inf (coco-1k from a whole matrix: the diagonal blocks).
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common.errors import BenchError
from bench.common.inputs import require_file
from bench.eval.protocols import Protocol, fold_blocks, fold_bounds
from bench.model.checkpoint import sha256_of

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
CHECK_ELEMENTS = 1 << 22  # scores checked for NaN/inf at a time (a 4 MB boolean temporary)
HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


@dataclass(frozen=True)
class ScoreFile:
    """The scores as given (a memory map for a file) and what provenance records of them."""

    sims: np.ndarray  # (n_images, n_captions), or coco-1k's (folds, n/folds, 5n/folds) blocks
    source: str  # the file's path, or "array"
    sha256: str  # of the file's bytes; for an array, of its dtype, shape and C-order bytes

    @property
    def label(self) -> str:
        return Path(self.source).name if self.source != "array" else "array"

    def facts(self) -> dict:
        return {"file": None if self.source == "array" else self.source, "sha256": self.sha256,
                "shape": list(self.sims.shape), "dtype": str(self.sims.dtype)}


def _header_dtype(path: Path) -> tuple[tuple, np.dtype]:
    """Shape and dtype from the `.npy` header alone (numpy parses it as a literal, loads nothing)."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(NPY_MAGIC))
            if start != NPY_MAGIC:
                kind = "an .npz archive" if start.startswith(ZIP_MAGIC) else "not a .npy file"
                raise BenchError(f"{path}: {kind}; save the score matrix with numpy.save(path, matrix)")
            handle.seek(0)
            version = np.lib.format.read_magic(handle)
            if version not in HEADER_READERS:
                raise BenchError(f"{path}: .npy format version {version} is not a plain matrix's (1.0 or 2.0)")
            shape, _, dtype = HEADER_READERS[version](handle)
    except ValueError as err:
        raise BenchError(f"{path}: unreadable .npy header ({err})") from None
    return shape, dtype


def _check_dtype(dtype: np.dtype, source: str) -> None:
    if dtype.hasobject:
        raise BenchError(f"{source}: holds Python objects (a pickle), which are never loaded; "
                         "save a floating-point matrix")
    if dtype.kind != "f":
        raise BenchError(f"{source}: scores are {dtype}; expected a real floating-point matrix "
                         "(float16, float32 or float64): cast with .astype(numpy.float32)")


def expected_shapes(protocol: Protocol, n_images: int) -> list[tuple[int, ...]]:
    """The whole (images x captions) matrix; for folded protocols also the stacked fold blocks."""
    shapes = [(n_images, protocol.captions_per_image * n_images)]
    if protocol.folds > 1:
        per_fold = n_images // protocol.folds
        shapes.append((protocol.folds, per_fold, protocol.captions_per_image * per_fold))
    return shapes


def _check_shape(shape: tuple, protocol: Protocol, n_images: int, source: str) -> None:
    shapes = expected_shapes(protocol, n_images)
    if tuple(shape) not in shapes:
        wanted = " or ".join(str(s) for s in shapes)
        raise BenchError(f"{source}: scores have shape {tuple(shape)}, but {protocol.name} on this split "
                         f"needs {wanted} (images x captions in the split's order: `bench order`)")


def _check_finite(sims: np.ndarray, protocol: Protocol, n_images: int, source: str) -> None:
    """Refuse NaN/inf in the blocks the protocol reads, naming the first one's image and caption."""
    bad, first = 0, None
    for block, (images, captions) in zip(fold_blocks(protocol, sims), fold_bounds(protocol, n_images)):
        step = max(1, CHECK_ELEMENTS // block.shape[1])
        for start in range(0, block.shape[0], step):
            invalid = ~np.isfinite(block[start:start + step])
            count = int(np.count_nonzero(invalid))
            if count and first is None:
                row, column = np.argwhere(invalid)[0]
                value = block[start + row, column]
                first = (images.start + start + int(row), captions.start + int(column), value)
            bad += count
    if bad:
        image, caption, value = first
        raise BenchError(f"{source}: {bad:,} score(s) are NaN or infinite; the first is {value} "
                         f"at image {image}, caption {caption} (split order)")


def _array_sha256(sims: np.ndarray) -> str:
    digest = hashlib.sha256(f"{sims.dtype.str} {sims.shape}\n".encode())
    rows = sims.reshape(-1, sims.shape[-1])
    step = max(1, CHECK_ELEMENTS // max(1, rows.shape[1]))
    for start in range(0, rows.shape[0], step):
        digest.update(np.ascontiguousarray(rows[start:start + step]).tobytes())
    return digest.hexdigest()


def open_scores(scores, protocol: Protocol, n_images: int) -> ScoreFile:
    """A `.npy` path (memory-mapped) or an array, checked: dtype, shape, finite where used."""
    if isinstance(scores, (str, Path)):
        path = require_file(scores, "score file")
        shape, dtype = _header_dtype(path)
        _check_dtype(dtype, str(path))
        _check_shape(shape, protocol, n_images, str(path))
        try:
            sims = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as err:
            raise BenchError(f"{path}: cannot map the score matrix ({str(err).splitlines()[0]})") from None
        source = str(path)
    else:
        sims = scores if isinstance(scores, np.ndarray) else np.asarray(scores)
        _check_dtype(sims.dtype, "scores")
        _check_shape(sims.shape, protocol, n_images, "scores")
        source = "array"
    _check_finite(sims, protocol, n_images, source)
    return ScoreFile(sims, source, sha256_of(source) if source != "array" else _array_sha256(sims))
