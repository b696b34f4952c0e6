"""Structural checks and the streaming HDF5 conversion, on generated files (no network)."""

import json
import subprocess
import sys
import tarfile
import zipfile

import h5py
import numpy as np
import pytest

from bench.common.errors import BenchError
from bench.data import synthetic
from bench.download import verify
from bench.download.convert import npy_to_hdf5
from bench.download.manifest import Manifest
from bench.model import random_weights
from bench.model.checkpoint import read_checkpoint


def schema_of(path) -> dict:
    """A checkpoint-schema.json entry for a (small, generated) checkpoint."""
    ckpt = read_checkpoint(path)
    parts = [{f"module.{k}": [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()}
             for sd in ckpt.state_dicts]
    return {f"{ckpt.config.data_name}/{ckpt.config.module_name}": parts}


def test_sniff_tells_torch_files_from_archives_and_html(tmp_path, make_checkpoint):
    ckpt = make_checkpoint("SGR")
    archive = tmp_path / "models.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(ckpt, "runs/coco_SGR/model_best.pth.tar")
    tar = tmp_path / "models.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        tf.add(ckpt, "model_best.pth.tar")
    page = tmp_path / "page"
    page.write_bytes(b"\n  <!DOCTYPE html><html><body>Quota exceeded</body></html>")
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00" * 600)
    assert [verify.sniff(p) for p in (ckpt, archive, tar, page, junk)] == ["torch", "zip", "tar", "html", "unknown"]
    with pytest.raises(BenchError, match="HTML page"):
        verify.refuse_html(page, "http://mirror")


def test_zip_check_names_missing_members_truncation_and_crc(tmp_path):
    good = tmp_path / "a.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("data/coco_precomp/testall_caps.txt", b"a dog\n" * 1000)
    verify.check_zip(good, ("coco_precomp/testall_caps.txt",))
    with pytest.raises(BenchError, match="no member 'f30k_precomp/test_caps.txt'"):
        verify.check_zip(good, ("f30k_precomp/test_caps.txt",))
    data = good.read_bytes()
    truncated = tmp_path / "t.zip"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(BenchError, match="not a complete zip"):
        verify.check_zip(truncated)
    corrupt = tmp_path / "c.zip"
    corrupt.write_bytes(data.replace(b"a dog\n", b"a cat\n", 1))
    with pytest.raises(BenchError, match="CRC error"):
        verify.check_zip(corrupt)
    verify.check_zip(corrupt, full_crc=False)  # the quick check reads the directory only


def test_checkpoint_check_against_schema_and_expected_module(make_checkpoint):
    ckpt = make_checkpoint("SAF", data_name="f30k_precomp")
    schema = schema_of(ckpt)
    verify.check_checkpoint(ckpt, "f30k_precomp", "SAF", schema)
    with pytest.raises(BenchError, match="is a f30k_precomp SAF checkpoint, expected f30k_precomp SGR"):
        verify.check_checkpoint(ckpt, "f30k_precomp", "SGR", schema)
    # The packaged schema has the published sizes: a small model has the right keys, wrong shapes.
    with pytest.raises(BenchError, match=r"module.fc.weight|fc.weight is float32\(32, 40\)"):
        verify.check_checkpoint(ckpt, "f30k_precomp", "SAF")


def test_packaged_schema_keys_are_those_of_the_model(make_checkpoint):
    for module in ("SGR", "SAF"):
        ckpt = read_checkpoint(make_checkpoint(module))
        wanted = verify.packaged_schema()[f"coco_precomp/{module}"]
        assert [sorted(k.removeprefix("module.") for k in part) for part in wanted] == \
            [sorted(sd) for sd in ckpt.state_dicts]


def test_scan_split_check_catches_layout_errors(tmp_path):
    synthetic.write_split(tmp_path, "test", 4, img_dim=40)
    verify.check_scan_split(tmp_path, "test", (36, 40), 20)
    with pytest.raises(BenchError, match=r"shape \(20, 36, 40\), expected \(rows, 36, 2048\)"):
        verify.check_scan_split(tmp_path, "test", (36, 2048), None)
    with pytest.raises(BenchError, match="20 rows, SCAN's release has 5000"):
        verify.check_scan_split(tmp_path, "test", (36, 40), 5000)
    (tmp_path / "test_caps.txt").write_text("one caption\n" * 7)
    with pytest.raises(BenchError, match="20 rows but 7 captions"):
        verify.check_scan_split(tmp_path, "test", (36, 40), None)


def test_npy_to_hdf5_streams_in_blocks_and_refuses_truncated_input(tmp_path):
    array = np.random.default_rng(0).normal(size=(23, 36, 8)).astype(np.float32)
    np.save(tmp_path / "dev_ims.npy", array)
    shape = npy_to_hdf5(tmp_path / "dev_ims.npy", tmp_path / "dev.h5", block_bytes=5 * 36 * 8 * 4)
    assert shape == (23, 36, 8)
    with h5py.File(tmp_path / "dev.h5") as h5:
        assert h5["feat"].chunks == (1, 36, 8)
        np.testing.assert_array_equal(h5["feat"][:], array)
    raw = (tmp_path / "dev_ims.npy").read_bytes()
    (tmp_path / "cut_ims.npy").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(BenchError, match="truncated"):
        npy_to_hdf5(tmp_path / "cut_ims.npy", tmp_path / "cut.h5", block_bytes=5 * 36 * 8 * 4)
    assert not (tmp_path / "cut.h5").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_manifest_trusts_on_first_use_and_rehashes_only_changed_files(tmp_path, monkeypatch):
    manifest = Manifest(tmp_path)
    target = tmp_path / "f.bin"
    target.write_bytes(b"first")
    manifest.verify_or_record(target, "item")
    assert manifest.is_current(target)
    target.write_bytes(b"other!")
    assert not manifest.is_current(target)
    with pytest.raises(BenchError, match="differs from .* recorded"):
        manifest.verify_or_record(target, "item")
    manifest.forget(target)
    manifest.verify_or_record(target, "item")
    assert manifest.entry(target)["size"] == 6 and Manifest(tmp_path).is_current(target)
    assert manifest.key(target) == "f.bin"


def test_torch_zip_member_detection():
    assert verify._is_torch_pickle("archive/data.pkl")
    assert not verify._is_torch_pickle("runs/coco/data.pkl")
    assert not verify._is_torch_pickle("data.pkl")


def test_a_full_size_checkpoint_matches_the_packaged_schema(tmp_path):
    """A model built by bench.model.network at the published sizes (COCO vocabulary, 2048-d, E=1024, S=256) passes."""
    config = random_weights.small_config("SGR", "coco_precomp", 11353, img_dim=2048, word_dim=300, embed_size=1024,
                                    sim_dim=256)
    path = random_weights.write_checkpoint(tmp_path / "full.pth.tar", config)
    verify.check_checkpoint(path, "coco_precomp", "SGR")
    verify.check_zip(path)
    assert verify.sniff(path) == "torch"


def test_conversion_benchmark_reports_its_figures(tmp_path):
    """The output format only: memory and time are machine-dependent and belong to `make bench`."""
    from bench.perf import convert_bench as perf_convert

    done = subprocess.run([sys.executable, "-m", "bench.perf.convert_bench", "--gib", "0.01", "--workdir",
                           str(tmp_path), "--json", str(tmp_path / "p.json")], capture_output=True, text=True)
    figures = json.loads((tmp_path / "p.json").read_text())
    assert done.returncode == (0 if figures["ok"] else 1), done.stderr
    assert figures["rows"] == int(0.01 * 2**30 // perf_convert.ROW_BYTES) and figures["peak_rss_bytes"] > 0
    assert figures["ok"] == (figures["peak_rss_bytes"] < figures["limit_bytes"])
    assert list(tmp_path.iterdir()) == [tmp_path / "p.json"]  # the generated files are gone
