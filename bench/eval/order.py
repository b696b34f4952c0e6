"""The order of a protocol's images and captions: the rows and columns a score matrix must follow.

Another model's scores go through `eval --scores` only if row i is image i and column j is
caption j of the split, in SCAN's order (caption j describes image j // 5). This lists both, with
the ids a user needs to line their own data up: COCO image ids from `<split>_ids.txt` (Flickr30K's
SCAN files have none: the position stands in), and COCO caption ids where they are known.
"""

from pathlib import Path

import numpy as np

from bench.common.errors import BenchError
from bench.data.coco_ids import load_caption_ids
from bench.data.splits import Split
from bench.eval.protocols import Protocol, fold_of

FIELDS = ("kind", "index", "image_index", "fold", "image_id", "caption_id", "caption")


def caption_ids_for(protocol: Protocol, split: Split, path: Path | None) -> np.ndarray | None:
    """COCO caption ids of the split's captions: from `path`, else eccv_caption's copy of the testall
    ids when installed and of the right length; None where unknown (Flickr30K, generated data)."""
    if path is None and (protocol.dataset != "coco" or split.name != "testall"):
        return None
    try:
        ids = load_caption_ids(path)
    except BenchError:
        if path is not None:
            raise
        return None
    if len(ids) != split.n_captions:
        if path is not None:
            raise BenchError(f"{path}: {len(ids)} caption ids for the split's {split.n_captions} captions")
        return None
    return ids


def order_rows(protocol: Protocol, split: Split, caption_ids: np.ndarray | None = None) -> list[dict]:
    """One row per image (kind "image"), then one per caption (kind "caption"), in matrix order."""
    image_ids = split.image_ids or [str(i) for i in range(split.n_images)]
    rows = [{"kind": "image", "index": i, "image_index": i, "fold": fold_of(protocol, i, split.n_images),
             "image_id": image_ids[i], "caption_id": "", "caption": ""} for i in range(split.n_images)]
    for j, text in enumerate(split.texts):
        image = j // split.captions_per_image
        rows.append({"kind": "caption", "index": j, "image_index": image,
                     "fold": fold_of(protocol, j, split.n_captions), "image_id": image_ids[image],
                     "caption_id": "" if caption_ids is None else int(caption_ids[j]), "caption": text})
    return rows
