"""Per-query results: the values every figure is a mean (or median) of, kept beside the figures.

For each direction (i2t: one query per image; t2i: one per caption), in split order:
`index` (the query's row or column in the split), `fold` (coco-1k fold, else 0), `rank`
(0-based rank of the first correct item within the protocol's gallery), `asp` (ASP_q as a
fraction), `top` (the gallery indices of the 3 best-scored items, split-wide), and, when
computed, `pmrp` ((queries, 3) R-precisions, NaN where left out) and `coco_id`. The bootstrap
(bench.eval.bootstrap) resamples these; `compare --queries` reads `top` and the captions.

Saved as `<run>.queries.npz` (arrays named "<direction>/<field>", plus the protocol and the
split's captions as UTF-8 bytes); `load_queries` reads it back without pickle.
"""

import hashlib
import io

import numpy as np

from bench.common.errors import BenchError
from bench.common.inputs import require_file
from bench.data.splits import CAPTIONS_PER_IMAGE
from bench.eval.asp import indexed_keys
from bench.eval.protocols import DIRECTIONS

TOP_K = 3
ROW_BUDGET = 1 << 20  # scores keyed at a time while picking the top items (8 MB of uint64 keys)
FORMAT = "daa-bench per-query results v1"


def top_items(scores: np.ndarray, axis: int = 1, k: int = TOP_K) -> np.ndarray:
    """(queries, k) gallery indices of each query's k best scores, best first; ties to the lower index.

    Queries are rows (axis=1, i2t) or columns (axis=0, t2i). Each score becomes a uint64 key
    (bench.eval.asp.indexed_keys), so the best item is a plain minimum,
    a reduction numpy runs fast along either axis; a picked key is then set to the maximum.
    """
    scores = np.asarray(scores)
    n_gallery, n_queries = scores.shape[axis], scores.shape[1 - axis]
    k = min(k, n_gallery)
    top = np.empty((n_queries, k), dtype=np.int32)
    step = max(1, ROW_BUDGET // max(1, n_gallery))
    for start in range(0, n_queries, step):
        window = slice(start, start + step)
        keys = indexed_keys(scores[window] if axis == 1 else scores[:, window], axis)
        queries = np.arange(keys.shape[1 - axis])
        for place in range(k):
            best = (keys.min(axis=axis) & np.uint64(0xFFFFFFFF)).astype(np.int64)
            top[start + queries, place] = best
            keys[(queries, best) if axis == 1 else (best, queries)] = np.iinfo(np.uint64).max
    return top


def fold_queries(scores: np.ndarray, i2t_rank: np.ndarray, t2i_rank: np.ndarray,
                 i2t_asp: np.ndarray, t2i_asp: np.ndarray, fold: int) -> dict:
    """Per-query arrays of one fold's (images x captions) block; indices are split-wide."""
    n_images, n_captions = scores.shape
    image_offset = fold * n_images
    arrays = {}
    for direction, n, rank, asp_q, axis, gallery_offset in (
            ("i2t", n_images, i2t_rank, i2t_asp, 1, fold * n_captions),
            ("t2i", n_captions, t2i_rank, t2i_asp, 0, image_offset)):
        query_offset = image_offset if direction == "i2t" else fold * n_captions
        arrays[direction] = {
            "index": np.arange(query_offset, query_offset + n, dtype=np.int64),
            "fold": np.full(n, fold, dtype=np.int16),
            "rank": np.asarray(rank, dtype=np.int64),
            "top": top_items(scores, axis) + gallery_offset,
        }
        if asp_q is not None:  # no ASP with one caption per image (CC152K)
            arrays[direction]["asp"] = np.asarray(asp_q, dtype=np.float64)
    return arrays


def join_folds(folds: list[dict]) -> dict:
    """One per-query dict from the folds' dicts, folds one after another (split order)."""
    return {d: {field: np.concatenate([fold[d][field] for fold in folds]) for field in folds[0][d]}
            for d in DIRECTIONS}


def add_pmrp(queries: dict, per_query: dict) -> None:
    """Attach PMRP's per-query R-precisions ({"i2t", "t2i"} in split order)."""
    for direction in DIRECTIONS:
        values = np.asarray(per_query[direction], dtype=np.float64)
        if len(values) != len(queries[direction]["index"]):
            raise BenchError(f"PMRP has {len(values)} {direction} queries; the run has "
                             f"{len(queries[direction]['index'])}")
        queries[direction]["pmrp"] = values


def add_coco_ids(queries: dict, image_ids) -> None:
    """Each query's COCO image id (t2i: the image its caption describes)."""
    image_ids = np.asarray(image_ids, dtype=np.int64)
    queries["i2t"]["coco_id"] = image_ids[queries["i2t"]["index"]]
    queries["t2i"]["coco_id"] = image_ids[queries["t2i"]["index"] // CAPTIONS_PER_IMAGE]


def to_npz_bytes(queries: dict, protocol: str, captions) -> bytes:
    """The compressed .npz of a run's per-query arrays, its protocol and its captions."""
    arrays = {f"{d}/{field}": values for d in DIRECTIONS for field, values in queries[d].items()}
    arrays["format"] = np.array(FORMAT)
    arrays["protocol"] = np.array(protocol)
    arrays["captions_utf8"] = np.frombuffer("\n".join(captions).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_queries(path) -> dict:
    """{"protocol", "captions", "i2t": {...}, "t2i": {...}} from a `<run>.queries.npz`."""
    path = require_file(path, "per-query file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError) as err:
        raise BenchError(f"cannot read per-query results {path}: {err}") from None
    if arrays.get("format") is None or str(arrays["format"]) != FORMAT:
        raise BenchError(f"{path} is not a daa-bench per-query file ({FORMAT})")
    result = {"protocol": str(arrays["protocol"]),
              "captions": arrays["captions_utf8"].tobytes().decode("utf-8").split("\n")}
    for direction in DIRECTIONS:
        prefix = f"{direction}/"
        result[direction] = {name[len(prefix):]: values for name, values in arrays.items()
                             if name.startswith(prefix)}
    return result
