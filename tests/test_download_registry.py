"""The registry: every source in sources.md is there, ids have Drive's form, selection works."""

import re

import pytest

from bench.common.errors import BenchError
from bench.download import registry

DRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{25,50}$")


def test_drive_ids_have_the_form_of_google_drive_ids():
    ids = [s.ref for item in registry.ITEMS for s in item.sources if s.kind.startswith("drive")]
    assert len(ids) >= 7
    for file_id in ids:
        assert DRIVE_ID.match(file_id), file_id


def test_every_source_in_sources_md_is_listed():
    refs = {s.ref for item in registry.ITEMS for s in item.sources}
    for expected in ("1hCiXyQBrYF7eP7JtNTaHQoqSZ18-mb2X", "1o-Wch7pJMwOyf-RqEvsXgAUBhIO9fv8g",
                     "1Q0Ttw4yViWnupJA1whTAYGYHr-O56D4L", "1hvixWqDDCbkbBYK28dyZeEI6Nlc0qfAx",
                     "1OBRIn1-Et49TDu8rk0wgP0wKXlYRk4Uj", "1SpuORBkTte_LqOboTgbYRN5zXhn4M7ag",
                     "1os1Kr7HeTbh8FajBNegW8rjJf6GIhFqC", "https://iudata.blob.core.windows.net/scan/data.zip",
                     "https://iudata.blob.core.windows.net/scan/vocab.zip",
                     "http://images.cocodataset.org/annotations/annotations_trainval2014.zip"):
        assert expected in refs


@pytest.mark.parametrize("item", registry.ITEMS, ids=lambda item: item.name)
def test_entries_are_well_formed(item):
    assert item.kind in registry.KINDS and item.root in registry.ROOTS
    assert set(item.groups) <= set(registry.GROUPS) and item.sources and item.outputs
    assert all(s.kind in ("drive", "drive-folder", "url") for s in item.sources)
    assert "/" not in item.filename


def test_outputs_match_the_layout_the_rest_of_the_project_reads():
    outputs = {out for item in registry.ITEMS for out in item.outputs}
    for name in ("daa_coco_sgr.pth.tar", "daa_f30k_saf.pth.tar", "sgraf_coco_sgr.pth.tar", "sgraf_f30k_saf.pth.tar",
                 "coco_precomp/testall_ims.npy", "f30k_precomp/test_caps.txt", "vocab/coco_precomp_vocab.json",
                 "coco_annotations/instances_val2014.json", "tokenizers/punkt_tab/english/collocations.tab"):
        assert name in outputs
    assert len(outputs) == sum(len(item.outputs) for item in registry.ITEMS)


def test_select_by_group_name_and_default():
    assert {i.name for i in registry.select([], "checkpoints")} == {
        "daa-coco-sgr", "daa-coco-saf", "daa-f30k-sgr", "daa-f30k-saf", "sgraf-coco", "sgraf-f30k"}
    assert [i.name for i in registry.select(["scan-vocab"], None)] == ["scan-vocab"]
    assert len(registry.select([], None)) == len(registry.ITEMS) == len(registry.select([], "all"))
    with pytest.raises(BenchError, match="unknown item nope"):
        registry.select(["nope"], None)


def test_splits_restrict_scan_members_and_unknown_split_is_refused():
    items = registry.with_splits(registry.select([], "coco"), ["testall"])
    scan = next(i for i in items if i.name == "scan-coco")
    assert scan.outputs == tuple(f"coco_precomp/testall_{part}" for part in ("ims.npy", "caps.txt", "ids.txt"))
    assert any(i.name == "scan-vocab" for i in items)
    with pytest.raises(BenchError, match="no split val"):
        registry.with_splits(items, ["val"])
