"""The queries whose rank changed most between two runs, with what each run retrieved for them.

A query's rank is the 0-based position of its first correct item (shown 1-based). For each
direction, the queries run B improved most and those it worsened most, with the caption text
(t2i) or the image (i2t; COCO ids link to the public COCO explorer) and the 3 best-scored items
of each run: captions for i2t, images for t2i; a check mark flags a correct item.
"""

import numpy as np

from bench.data.semantics import CAPTIONS_PER_IMAGE
from bench.eval.protocols import DIRECTIONS
from bench.results.compare import ComparedRun
from bench.results.rows import dict_csv

COCO_PAGE = "http://cocodataset.org/#explore?id={}"
FIELDS = ("direction", "change", "query_index", "query", "coco_id", "coco_url", "rank_a", "rank_b",
          "top3_a", "top3_b")
ITEM_SEPARATOR = " | "
CORRECT = "✓ "


def coco_url(coco_id) -> str:
    return "" if coco_id is None else COCO_PAGE.format(int(coco_id))


def _image_ids(run: ComparedRun) -> dict[int, int]:
    """Image index -> COCO id (empty when the run has no COCO ids)."""
    images = run.queries["i2t"]
    if "coco_id" not in images:
        return {}
    return dict(zip(images["index"].tolist(), images["coco_id"].tolist()))


def _image_label(index: int, image_ids: dict[int, int]) -> str:
    return f"COCO {image_ids[index]} {coco_url(image_ids[index])}" if index in image_ids else f"image {index}"


def _items(run: ComparedRun, direction: str, row: int, image_ids: dict[int, int]) -> str:
    """The run's 3 best-scored items for one query, correct ones marked."""
    query = int(run.queries[direction]["index"][row])
    labels = []
    for item in run.queries[direction]["top"][row].tolist():
        if direction == "i2t":
            correct, label = item // CAPTIONS_PER_IMAGE == query, run.queries["captions"][item]
        else:
            correct, label = item == query // CAPTIONS_PER_IMAGE, _image_label(item, image_ids)
        labels.append((CORRECT if correct else "") + label)
    return ITEM_SEPARATOR.join(labels)


def _query_row(a: ComparedRun, b: ComparedRun, direction: str, row: int, change: str,
               image_ids: dict[int, int]) -> dict:
    values = a.queries[direction]
    index = int(values["index"][row])
    coco_id = int(values["coco_id"][row]) if "coco_id" in values else None
    text = a.queries["captions"][index] if direction == "t2i" else _image_label(index, image_ids)
    return {"direction": direction, "change": change, "query_index": index, "query": text,
            "coco_id": "" if coco_id is None else coco_id, "coco_url": coco_url(coco_id),
            "rank_a": int(values["rank"][row]) + 1, "rank_b": int(b.queries[direction]["rank"][row]) + 1,
            "top3_a": _items(a, direction, row, image_ids), "top3_b": _items(b, direction, row, image_ids)}


def biggest_changes(a: ComparedRun, b: ComparedRun, top: int = 10) -> list[dict]:
    """Per direction, up to `top` queries B improved most, then up to `top` it worsened most
    (the same query sets are assumed: bench.results.compare.check_same_queries)."""
    image_ids = _image_ids(a)
    rows = []
    for direction in DIRECTIONS:
        gain = a.queries[direction]["rank"] - b.queries[direction]["rank"]  # > 0: B ranks it higher
        for change, order in (("improved", np.argsort(-gain, kind="stable")),
                              ("worsened", np.argsort(gain, kind="stable"))):
            chosen = [r for r in order[:top].tolist() if (gain[r] > 0 if change == "improved" else gain[r] < 0)]
            rows += [_query_row(a, b, direction, r, change, image_ids) for r in chosen]
    return rows


def changes_csv(rows: list[dict]) -> str:
    return dict_csv(rows, FIELDS)
