"""Which COCO image and caption each row and column of a COCO testall score matrix is.

SCAN's `testall_ids.txt` holds one COCO image id per feature row (5 rows per image); the
COCO caption annotation ids of the 25,000 testall captions, in SCAN's caption order, are
`coco_test_ids.npy` (shipped by PyPI's `eccv_caption`, or given as a file). PMRP and ECCV
Caption both key on these ids, so the mapping is validated before any metric uses it:
counts, uniqueness, five captions per image and, when COCO's caption annotations are at
hand, that caption j really describes image j // 5.
"""

import importlib.util
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common.errors import BenchError
from bench.common.inputs import require_file
from bench.data.splits import CAPTIONS_PER_IMAGE

ECCV_CAPTION_IDS = "coco_test_ids.npy"


@dataclass(frozen=True)
class CocoIdMap:
    """image_ids[i]: COCO id of score-matrix row i; caption_ids[j]: COCO caption id of column j."""

    image_ids: np.ndarray  # (n_images,) int64
    caption_ids: np.ndarray  # (5 n_images,) int64


def _whole(value) -> int:
    """int(value) for an integer, or a float that is one (3.0); 3.7 or nan is refused, never truncated."""
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _as_int_ids(values: Sequence, source: str) -> np.ndarray:
    try:
        ids = np.array([_whole(v) for v in values], dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as err:  # OverflowError: beyond int64 (20 digits)
        raise BenchError(f"{source}: ids must be integers of at most 18 digits ({str(err)[:80]})") from None
    if (ids < 0).any():
        raise BenchError(f"{source}: id {ids[ids < 0][0]} is negative; COCO ids are positive")
    return ids


def _check_unique(ids: np.ndarray, what: str, source: str) -> None:
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise BenchError(f"{source}: {what} {values[counts > 1][0]} appears more than once")


def image_ids_from_rows(row_ids: Sequence, source: str = "row ids") -> np.ndarray:
    """One COCO image id per image from per-row ids: 5 equal consecutive rows per image."""
    rows = _as_int_ids(row_ids, source)
    if rows.size == 0 or rows.size % CAPTIONS_PER_IMAGE:
        raise BenchError(f"{source}: {rows.size} rows; expected {CAPTIONS_PER_IMAGE} per image")
    groups = rows.reshape(-1, CAPTIONS_PER_IMAGE)
    uneven = np.flatnonzero((groups != groups[:, :1]).any(axis=1))
    if uneven.size:
        first = uneven[0] * CAPTIONS_PER_IMAGE
        raise BenchError(f"{source}: rows {first}..{first + CAPTIONS_PER_IMAGE - 1} name different "
                         f"images; each image must fill {CAPTIONS_PER_IMAGE} consecutive rows")
    _check_unique(groups[:, 0], "image id", source)
    return groups[:, 0].copy()


def load_image_ids(precomp_dir, split: str = "testall") -> np.ndarray:
    """Per-image COCO ids from SCAN's `{split}_ids.txt` (one id per feature row)."""
    path = Path(precomp_dir) / f"{split}_ids.txt"
    if os.path.lexists(path):
        require_file(path, "image id file")
    else:
        raise BenchError(f"{path} is missing: COCO image ids of the {split} rows are needed for "
                         f"PMRP and ECCV Caption; run `make download-coco`")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return image_ids_from_rows(lines, str(path))


def caption_ids_path(path=None) -> Path:
    """The caption ids file: the one given, else eccv_caption's copy."""
    if path is None:
        package = importlib.util.find_spec("eccv_caption")  # locate only: importing it warns
        if package is None:
            raise BenchError(f"caption ids: {ECCV_CAPTION_IDS} comes with `pip install eccv_caption`; "
                             f"install it, or give the path of a copy of that file")
        path = Path(package.submodule_search_locations[0]) / "data" / ECCV_CAPTION_IDS
    return Path(path)


def load_caption_ids(path=None) -> np.ndarray:
    """COCO caption ids of the testall captions, in SCAN order (eccv_caption's copy by default)."""
    path = require_file(caption_ids_path(path), "caption ids file")
    try:
        values = np.load(path) if path.suffix == ".npy" else path.read_text(encoding="utf-8").split()
    except ValueError as err:
        raise BenchError(f"{path}: not a NumPy array of caption ids ({err})") from err
    if np.ndim(values) != 1:  # a (n, k) array would be read as n*k ids in an order nobody chose
        raise BenchError(f"{path}: caption ids must be one list (1-D), got shape {np.shape(values)}")
    ids = _as_int_ids(values, str(path))
    _check_unique(ids, "caption id", str(path))
    return ids


def read_annotation_pairs(path: Path, first: str, second: str, purpose: str) -> list[tuple[int, int]]:
    """The (`first`, `second`) integer fields of every annotation of a COCO annotation file."""
    if os.path.lexists(path):  # there but a folder, a FIFO, unreadable: an error, never PMRP silently dropped
        require_file(path, f"{purpose}'s annotations file")
    else:
        raise BenchError(f"{purpose} needs COCO's {path.name} (annotations_trainval2014.zip) at "
                         f"{path}; run `make download-coco` or pass --annotations DIR")
    try:
        with open(path, encoding="utf-8") as handle:
            return [(int(a[first]), int(a[second])) for a in json.load(handle)["annotations"]]
    except (ValueError, KeyError, TypeError) as err:
        raise BenchError(f"{path} is not a COCO annotations file ({err})") from err


def build_id_map(image_ids: np.ndarray, caption_ids: np.ndarray,
                 caption_owners: Mapping[int, int] | None = None, source: str = "caption ids") -> CocoIdMap:
    """Validate and pair the two id lists; `caption_owners` (caption -> image) checks each pair.
    `source` names the files the ids came from, for the messages."""
    image_ids = np.asarray(image_ids, dtype=np.int64)
    caption_ids = np.asarray(caption_ids, dtype=np.int64)
    if caption_ids.size != CAPTIONS_PER_IMAGE * image_ids.size:
        raise BenchError(f"{source}: {caption_ids.size} caption ids for {image_ids.size} images; expected "
                         f"{CAPTIONS_PER_IMAGE * image_ids.size} (five per image, in SCAN order)")
    _check_unique(image_ids, "image id", "image ids")
    _check_unique(caption_ids, "caption id", "caption ids")
    if caption_owners is not None:
        expected = np.repeat(image_ids, CAPTIONS_PER_IMAGE)
        actual = np.array([caption_owners.get(int(c), -1) for c in caption_ids])
        wrong = np.flatnonzero(actual != expected)
        if wrong.size:
            j = wrong[0]
            raise BenchError(f"{source}: caption {j} (COCO caption id {caption_ids[j]}) belongs to image "
                             f"{actual[j]}, not to row {j // CAPTIONS_PER_IMAGE}'s image "
                             f"{expected[j]} ({wrong.size} mismatches): the id lists are not in "
                             f"SCAN's testall order")
    return CocoIdMap(image_ids, caption_ids)
