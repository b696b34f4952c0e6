"""The eccv_caption adapter on a generated id mapping and generated ECCV/CxC annotations."""

import json
import sys

import numpy as np
import pytest

from bench.common.errors import BenchError
from bench.data.coco_ids import build_id_map
from bench.eval import eccv

pytest.importorskip("eccv_caption")

N_IMAGES = 10  # COCO 1K folds of 2 images


def _write(path, i2t, t2i, name):
    for direction, mapping in (("image_to_caption", i2t), ("caption_to_image", t2i)):
        (path / f"{name}_{direction}.json").write_text(
            json.dumps({str(k): [int(v) for v in values] for k, values in mapping.items()}))
    return str(path / f"{name}_image_to_caption.json"), str(path / f"{name}_caption_to_image.json")


@pytest.fixture
def generated(tmp_path):
    """(id map, library loaded with generated COCO / CxC / ECCV annotations, rng)."""
    rng = np.random.default_rng(0)
    image_ids = rng.choice(10**6, size=N_IMAGES, replace=False)
    caption_ids = rng.choice(10**6, size=5 * N_IMAGES, replace=False)
    owner = {int(c): int(image_ids[j // 5]) for j, c in enumerate(caption_ids)}
    own = {int(i): [int(c) for c in caption_ids[5 * k:5 * k + 5]] for k, i in enumerate(image_ids)}
    extra_caption = {i: caps + [int(rng.choice(caption_ids))] for i, caps in own.items()}
    extra_image = {c: [i, int(rng.choice(image_ids))] for c, i in owner.items()}
    library = eccv.new_library()
    library.set_coco_gts(*_write(tmp_path, own, {c: [i] for c, i in owner.items()}, "coco"))
    library.set_cxc_gts(*_write(tmp_path, extra_caption, extra_image, "cxc"))
    eccv_i2t = {i: sorted(set(extra_caption[i])) for i in list(own)[:4]}
    eccv_t2i = {c: sorted(set(extra_image[c])) for c in list(owner)[:6]}
    library.set_eccv_gts(*_write(tmp_path, eccv_i2t, eccv_t2i, "eccv"))
    return build_id_map(image_ids, caption_ids), library, rng


def make_sims(rng, tied=False):
    sims = rng.standard_normal((N_IMAGES, 5 * N_IMAGES))
    sims[np.arange(5 * N_IMAGES) // 5, np.arange(5 * N_IMAGES)] += 1.5
    return np.round(sims) if tied else sims.astype(np.float32)


def direct_scores(sims, id_map, positives, direction):
    """R@1/5/10, R-precision and mAP@R of one direction, from stable full rankings."""
    scores = sims if direction == "i2t" else sims.T
    queries = id_map.image_ids if direction == "i2t" else id_map.caption_ids
    gallery = id_map.caption_ids if direction == "i2t" else id_map.image_ids
    rows = {int(q): scores[k] for k, q in enumerate(queries)}
    found = {"r1": [], "r5": [], "r10": [], "rprecision": [], "map_at_r": []}
    for query, relevant in positives.items():
        ranked = gallery[np.argsort(-rows[query], kind="stable")].tolist()
        hits = [item in relevant for item in ranked]
        for k in (1, 5, 10):
            found[f"r{k}"].append(any(hits[:k]))
        r = len(relevant)
        found["rprecision"].append(sum(hits[:r]) / r)
        found["map_at_r"].append(np.mean([sum(hits[:i + 1]) / (i + 1) * hits[i] for i in range(r)]))
    return {name: 100 * np.mean(values) for name, values in found.items()}


@pytest.mark.parametrize("tied", [False, True])
def test_agrees_with_our_recalls_and_direct_definitions(generated, tied):
    id_map, library, rng = generated
    sims = make_sims(rng, tied)
    result = eccv.eccv_metrics(sims, id_map, library)
    assert result["recall_agreement"] < 1e-9
    assert result["library"] == f"eccv_caption {eccv.library_version()}"
    for direction in ("i2t", "t2i"):
        cxc = direct_scores(sims, id_map, {q: set(v) for q, v in library.cxc_gts[direction].items()}, direction)
        ecc = direct_scores(sims, id_map, {q: set(v) for q, v in library.eccv_gts[direction].items()}, direction)
        got = result[direction]
        assert [got["cxc_r1"], got["cxc_r5"], got["cxc_r10"]] == pytest.approx([cxc["r1"], cxc["r5"], cxc["r10"]])
        assert got["eccv_r1"] == pytest.approx(ecc["r1"])
        assert got["eccv_rprecision"] == pytest.approx(ecc["rprecision"])  # present despite the quirk
        assert got["eccv_map_at_r"] == pytest.approx(ecc["map_at_r"])


def test_short_lists_give_what_full_lists_give(generated):
    id_map, library, rng = generated
    sims = make_sims(rng, tied=True)
    library.coco_ids = id_map.caption_ids
    depth = max(len(v) for gts in (library.cxc_gts, library.eccv_gts) for d in gts.values() for v in d.values())
    short = eccv.ranked_lists(sims, id_map, depth=max(depth, 10))
    full = eccv.ranked_lists(sims, id_map)
    assert len(short[0][int(id_map.image_ids[0])]) < len(full[0][int(id_map.image_ids[0])])
    computed = [library.compute_all_metrics(*lists, target_metrics=eccv.TARGETS) for lists in (short, full)]
    assert computed[0] == computed[1]


def test_wrong_mapping_is_caught(generated):
    id_map, library, rng = generated
    rolled = build_id_map(id_map.image_ids, np.roll(id_map.caption_ids, 5))  # captions of the next image
    with pytest.raises(BenchError, match="mapping is wrong"):
        eccv.eccv_metrics(make_sims(rng), rolled, library)


def test_needs_every_annotated_query(generated):
    id_map, library, rng = generated
    partial = build_id_map(id_map.image_ids[:5], id_map.caption_ids[:25])
    with pytest.raises(BenchError, match="whole COCO 5K test set"):
        eccv.eccv_metrics(make_sims(rng)[:5, :25], partial, library)
    with pytest.raises(BenchError, match="does not match"):
        eccv.eccv_metrics(make_sims(rng)[:5], id_map, library)


def test_missing_package_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "eccv_caption", None)
    with pytest.raises(BenchError, match="pip install eccv_caption"):
        eccv.new_library()


def test_testall_entry_point_validates_caption_ids(generated, tmp_path):
    id_map, library, rng = generated
    np.save(tmp_path / "ids.npy", id_map.caption_ids)
    sims = make_sims(rng)
    result = eccv.testall_eccv_metrics(sims, id_map.image_ids, tmp_path / "ids.npy", library)
    assert result["i2t"] == eccv.eccv_metrics(sims, id_map, library)["i2t"]
    np.save(tmp_path / "rolled.npy", np.roll(id_map.caption_ids, 1))
    with pytest.raises(BenchError, match="caption 0 .* belongs to image"):
        eccv.testall_eccv_metrics(sims, id_map.image_ids, tmp_path / "rolled.npy", library)
