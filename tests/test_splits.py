"""Reading SCAN-format splits: both row layouts, HDF5, and every malformed input."""

import h5py
import numpy as np
import pytest

from bench.common.errors import BenchError
from bench.data.splits import load_split, load_text_split
from bench.data.synthetic import write_split


def test_per_caption_layout_gives_one_row_per_image(tmp_path):
    write_split(tmp_path / "coco_precomp", "testall", 6, rows_per_caption=True)
    split = load_split(tmp_path, "coco_precomp", "testall")
    raw = np.load(tmp_path / "coco_precomp" / "testall_ims.npy")
    assert split.rows_per_image == 5 and split.n_images == 6 and split.n_captions == 30
    assert np.array_equal(split.image_rows(1, 4), raw[5:20:5])
    assert split.image_ids == [str(100000 + 7 * i) for i in range(6)]
    assert isinstance(split.features, np.memmap)


@pytest.mark.parametrize("per_caption", [True, False])
def test_a_text_split_reads_captions_and_ids_without_features(tmp_path, per_caption):
    write_split(tmp_path / "coco_precomp", "testall", 6, rows_per_caption=per_caption)
    (tmp_path / "coco_precomp" / "testall_ims.npy").unlink()
    split = load_text_split(tmp_path, "coco_precomp", "testall")
    assert split.features is None and split.n_images == 6 and split.rows_per_image == (5 if per_caption else 1)
    assert split.image_ids == [str(100000 + 7 * i) for i in range(6)]
    (tmp_path / "coco_precomp" / "testall_caps.txt").write_text("one\ntwo\n")
    with pytest.raises(BenchError, match="2 captions is not a positive multiple of 5"):
        load_text_split(tmp_path, "coco_precomp", "testall")


def test_per_image_layout_and_hdf5(tmp_path):
    directory = tmp_path / "coco_precomp"
    write_split(directory, "train", 4, rows_per_caption=False)
    raw = np.load(directory / "train_ims.npy")
    with h5py.File(directory / "train.h5", "w") as handle:
        handle.create_dataset("feat", data=raw, chunks=(1, 36, 40))
    (directory / "train_ims.npy").unlink()
    split = load_split(tmp_path, "coco_precomp", "train")
    assert split.rows_per_image == 1 and split.n_images == 4
    assert np.array_equal(split.image_rows(0, 4), raw)


def _write(directory, rows, captions, ids=None, dims=(36, 8)):
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "test_ims.npy", np.ones((rows, *dims), dtype=np.float32))
    (directory / "test_caps.txt").write_text("".join(f"caption {i}\n" for i in range(captions)))
    if ids is not None:
        (directory / "test_ids.txt").write_text("".join(f"{i}\n" for i in range(ids)))


@pytest.mark.parametrize("rows,captions,ids,message", [
    (7, 10, None, "7 feature rows do not fit 10 captions"),
    (10, 12, None, "not a positive multiple of 5"),
    (10, 10, 9, "9 ids for 10 feature rows"),
])
def test_layout_mismatches_are_named(tmp_path, rows, captions, ids, message):
    _write(tmp_path / "f30k_precomp", rows, captions, ids)
    with pytest.raises(BenchError, match=message):
        load_split(tmp_path, "f30k_precomp", "test")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(BenchError, match="test_ims.npy: features not found"):
        load_split(tmp_path, "f30k_precomp", "test")
    _write(tmp_path / "f30k_precomp", 10, 10)
    (tmp_path / "f30k_precomp" / "test_caps.txt").unlink()
    with pytest.raises(BenchError, match="test_caps.txt: captions file not found"):
        load_split(tmp_path, "f30k_precomp", "test")


def test_wrong_rank_and_non_finite_features(tmp_path):
    directory = tmp_path / "f30k_precomp"
    _write(directory, 10, 10)
    np.save(directory / "test_ims.npy", np.ones((10, 8), dtype=np.float32))
    with pytest.raises(BenchError, match=r"must be \(rows, regions, dim\)"):
        load_split(tmp_path, "f30k_precomp", "test")
    features = np.ones((10, 36, 8), dtype=np.float32)
    features[5, 3, 2] = np.nan
    np.save(directory / "test_ims.npy", features)
    split = load_split(tmp_path, "f30k_precomp", "test")
    with pytest.raises(BenchError, match="non-finite feature values in image 1"):
        split.image_rows(0, 2)


def test_h5_without_feat_and_non_utf8_captions(tmp_path):
    directory = tmp_path / "f30k_precomp"
    _write(directory, 10, 10)
    (directory / "test_ims.npy").unlink()
    with h5py.File(directory / "test.h5", "w") as handle:
        handle.create_dataset("features", data=np.ones((10, 36, 8)))
    with pytest.raises(BenchError, match="has no dataset 'feat'"):
        load_split(tmp_path, "f30k_precomp", "test")
    _write(directory, 10, 10)
    (directory / "test_caps.txt").write_bytes(b"ok\n" * 9 + b"bad \xff\n")
    with pytest.raises(BenchError, match="line 10 is not UTF-8"):
        load_split(tmp_path, "f30k_precomp", "test")
