"""SCAN testall rows -> COCO image and caption ids: reading and validation."""

import importlib.util
import json

import numpy as np
import pytest

from bench.common.errors import BenchError
from bench.data.coco_ids import build_id_map, image_ids_from_rows, load_caption_ids, load_image_ids


def test_golden_mapping_is_valid(golden_dir):
    image_ids = load_image_ids(golden_dir / "coco_precomp")
    captions = json.loads((golden_dir / "coco_annotations" / "captions_val2014.json").read_text())
    caption_ids = [a["id"] for a in captions["annotations"]]  # in testall_caps.txt order
    owners = {a["id"]: a["image_id"] for a in captions["annotations"]}
    id_map = build_id_map(image_ids, caption_ids, owners)
    assert id_map.image_ids.shape == (30,) and id_map.caption_ids.shape == (150,)
    assert id_map.image_ids[0] == 100000


def test_rows_to_images():
    assert image_ids_from_rows(["7"] * 5 + ["3"] * 5).tolist() == [7, 3]


@pytest.mark.parametrize("rows, message", [
    ([1] * 4, "5 per image"),
    ([], "5 per image"),
    ([1] * 4 + [2] + [3] * 5, "rows 0..4 name different images"),
    ([1] * 5 + [1] * 5, "image id 1 appears more than once"),
    (["x"] * 5, "must be integers"),
])
def test_bad_row_ids(rows, message):
    with pytest.raises(BenchError, match=message):
        image_ids_from_rows(rows)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(BenchError, match="testall_ids.txt is missing"):
        load_image_ids(tmp_path)
    with pytest.raises(BenchError, match="coco_test_ids.npy: caption ids file not found"):
        load_caption_ids(tmp_path / "coco_test_ids.npy")


def test_caption_ids_from_npy_and_text(tmp_path):
    np.save(tmp_path / "ids.npy", np.arange(10, 20))
    (tmp_path / "ids.txt").write_text("\n".join(map(str, range(10, 20))))
    assert load_caption_ids(tmp_path / "ids.npy").tolist() == list(range(10, 20))
    assert load_caption_ids(tmp_path / "ids.txt").tolist() == list(range(10, 20))
    np.save(tmp_path / "dup.npy", np.array([1, 2, 2]))
    with pytest.raises(BenchError, match="caption id 2 appears more than once"):
        load_caption_ids(tmp_path / "dup.npy")


def test_mapping_validation():
    images = np.array([5, 6])
    captions = np.arange(100, 110)
    owners = {100 + j: 5 if j < 5 else 6 for j in range(10)}
    assert build_id_map(images, captions, owners).caption_ids.tolist() == captions.tolist()
    with pytest.raises(BenchError, match="9 caption ids for 2 images"):
        build_id_map(images, captions[:9])
    with pytest.raises(BenchError, match="image id 5 appears"):
        build_id_map(np.array([5, 5]), captions)
    swapped = owners | {100: 6}
    with pytest.raises(BenchError, match="caption 0 .* belongs to image 6"):
        build_id_map(images, captions, swapped)


@pytest.mark.skipif(importlib.util.find_spec("eccv_caption") is None, reason="eccv_caption not installed")
def test_packaged_caption_ids_group_five_per_image():
    """eccv_caption's coco_test_ids.npy: 25,000 unique ids, 5 consecutive per COCO 5K image."""
    spec = importlib.util.find_spec("eccv_caption")
    data = spec.submodule_search_locations[0] + "/data/original_caption_to_image.json"
    with open(data) as handle:
        owners = {int(k): v[0] for k, v in json.load(handle).items()}
    caption_ids = load_caption_ids()
    image_ids = image_ids_from_rows([owners[int(c)] for c in caption_ids], "packaged ids")
    assert build_id_map(image_ids, caption_ids, owners).image_ids.size == 5000


def test_default_caption_ids_need_the_package(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BenchError, match="pip install eccv_caption"):
        load_caption_ids()
