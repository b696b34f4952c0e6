"""Downloads offline, with wrong or damaged files: fast, one line per item, nothing unrebuildable lost."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from test_download import mirror, roots, stand_ins, zip_of

from bench.cli.main import main
from bench.data import synthetic
from bench.download import registry


def closed_port() -> int:
    """A loopback port with nothing listening: connection refused at once, no network touched."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_offline_fails_in_seconds_with_one_line_per_item_and_no_lock_files(tmp_path, capsys):
    started = time.monotonic()
    mirror_url = f"http://127.0.0.1:{closed_port()}"
    assert main(["download", "--group", "all", "--mirror", mirror_url, *roots(tmp_path)]) == 2
    assert time.monotonic() - started < 20
    err = capsys.readouterr().err.strip().splitlines()
    items = [item.name for item in registry.ITEMS]
    assert len(err) == len(items) + 1 and all(len(line) < 120 for line in err[:-1])
    assert [line.split(":")[0] for line in err[:-1]] == items
    assert sum("refused" in line for line in err) == len(items) - 1  # data.zip tried once for two items
    assert "data.zip not downloaded (see above)" in err[items.index("scan-f30k")]
    assert "--mirror URL or BENCH_MIRROR" in err[-1] and "--from PATH" in err[-1]
    assert not any("lock" in p.name for p in tmp_path.rglob("*")) and "Traceback" not in "".join(err)


def test_list_names_each_file_once_with_its_addresses_in_100_columns(tmp_path, capsys):
    assert main(["download", "--list", *roots(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert max(map(len, out)) <= 100
    [data_zip] = [line for line in out if line.startswith("data.zip")]
    assert "~34.0 GiB" in data_zip and "scan-coco (missing)" in data_zip and "scan-f30k (missing)" in data_zip
    assert out[-1].startswith("total") and "~36.6 GiB" in out[-1] and "estimates" in out[-1]
    at = out.index(data_zip)
    assert out[at + 1].strip() == "https://iudata.blob.core.windows.net/scan/data.zip"
    assert "1os1Kr7HeTbh8FajBNegW8rjJf6GIhFqC" in out[at + 2] and "kuanghueilee/scan-features" in out[at + 3]


def test_for_eval_fetches_only_what_evaluation_reads(tmp_path, mirror, stand_ins):  # noqa: F811
    assert main(["download", "--group", "all", "--for", "eval", "--mirror", mirror.url, *roots(tmp_path)]) == 0
    folder = tmp_path / "data/coco_precomp"
    assert sorted(p.name for p in folder.iterdir()) == ["testall_caps.txt", "testall_ids.txt", "testall_ims.npy"]
    assert (tmp_path / "models/daa_coco_sgr.pth.tar").is_file()
    assert (tmp_path / "data/coco_annotations/instances_val2014.json").is_file()


def test_for_train_leaves_out_checkpoints_and_annotations():
    chosen = registry.for_purpose(registry.select([], "coco"), "train")
    assert [item.name for item in chosen] == ["scan-coco", "scan-vocab", "nltk-punkt-tab"]
    assert {registry.split_of(dest) for _, dest in chosen[0].members} == {"train", "dev"}


def replace_data_zip(mirror, tmp_path, write):  # noqa: F811
    src = tmp_path / "bad"
    synthetic.write_split(src, "testall", 6, seed=1)
    synthetic.write_split(src, "dev", 4, seed=2)
    write(src)
    mirror.files["data.zip"] = zip_of(tmp_path / "bad.zip", {f"data/coco_precomp/{p.name}": p for p in src.iterdir()})


def _nan_dev_features(src: Path) -> None:
    np.save(src / "dev_ims.npy", np.full((20, 36, 40), np.nan, np.float32))


def test_wrong_row_count_is_caught_inside_the_archive_before_extracting(tmp_path, mirror, stand_ins, capsys):  # noqa: F811
    replace_data_zip(mirror, tmp_path, lambda src: np.save(src / "testall_ims.npy", np.ones((25, 36, 40), np.float32)))
    assert main(["download", "scan-coco", "--mirror", mirror.url, *roots(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "member data/coco_precomp/testall_ims.npy" in err and "25 rows but 30 captions" in err
    assert not (tmp_path / "data/coco_precomp").exists() and (tmp_path / "data/downloads/data.zip").is_file()


def test_nan_features_fail_after_extraction_but_the_archive_is_kept(tmp_path, mirror, stand_ins, capsys):  # noqa: F811
    replace_data_zip(mirror, tmp_path, _nan_dev_features)
    assert main(["download", "scan-coco", "--mirror", mirror.url, *roots(tmp_path)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()[:1]
    assert "dev_ims.npy: holds NaN" in line and "data.zip is kept" in line
    assert not list((tmp_path / "data/coco_precomp").glob("*")) and (tmp_path / "data/downloads/data.zip").is_file()


def test_nan_checkpoint_is_refused(tmp_path, mirror, stand_ins, capsys):  # noqa: F811
    ckpt = torch.load(stand_ins["sgr"], weights_only=False)
    first = next(iter(ckpt["model"][0]))
    ckpt["model"][0][first] = torch.full_like(ckpt["model"][0][first], float("nan"))
    torch.save(ckpt, tmp_path / "nan.pth.tar")
    mirror.files["daa_coco_sgr.pth.tar"] = (tmp_path / "nan.pth.tar").read_bytes()
    assert main(["download", "daa-coco-sgr", "--mirror", mirror.url, *roots(tmp_path)]) == 2
    assert "holds NaN or infinite values" in capsys.readouterr().err
    assert not (tmp_path / "models/daa_coco_sgr.pth.tar").exists()


def test_from_is_recorded_only_after_its_checks_passed(tmp_path, mirror, stand_ins, capsys):  # noqa: F811
    replace_data_zip(mirror, tmp_path, _nan_dev_features)
    given = tmp_path / "by_hand.zip"
    given.write_bytes(mirror.files["data.zip"])
    assert main(["download", "scan-coco", "--from", str(given), *roots(tmp_path)]) == 2
    manifest = tmp_path / "data/download-manifest.json"
    assert not manifest.exists() or str(given) not in json.loads(manifest.read_text())["files"]
    assert given.is_file()


def test_corrupt_deflated_archive_and_malformed_manifest_are_one_line(tmp_path, mirror, stand_ins, capsys):  # noqa: F811
    kept = tmp_path / "data/downloads/vocab.zip"
    kept.parent.mkdir(parents=True)
    with zipfile.ZipFile(kept, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("coco_precomp_vocab.json", "f30k_precomp_vocab.json"):
            zf.writestr(name, json.dumps({"word2idx": {f"w{i}": i for i in range(3000)}}))
    data = bytearray(kept.read_bytes())
    data[100:140] = bytes(40)  # inside the first member's compressed stream
    kept.write_bytes(bytes(data))
    assert main(["download", "scan-vocab", "--offline", *roots(tmp_path)]) == 2  # offline: not looked at
    capsys.readouterr()
    assert main(["download", "scan-vocab", "--mirror", mirror.url, *roots(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "vocab.zip: CRC error" in err[0] and "Traceback" not in "".join(err), err
    assert kept.is_file()  # the user's file is not deleted; the line says what to do
    (tmp_path / "data/download-manifest.json").write_text(json.dumps({"files": {"x": {"sha256": 1}}}))
    assert main(["download", "scan-vocab", "--mirror", mirror.url, *roots(tmp_path)]) == 2
    assert "malformed download manifest" in capsys.readouterr().err


def test_flickr_ids_are_optional(tmp_path, mirror, stand_ins, monkeypatch):  # noqa: F811
    src = tmp_path / "f30k"
    synthetic.write_split(src, "test", 4, seed=1)
    (src / "test_ids.txt").unlink()
    mirror.files["data.zip"] = zip_of(tmp_path / "f.zip", {f"data/f30k_precomp/{p.name}": p for p in src.iterdir()})
    item = registry._scan("f30k_precomp", "f30k", {"test": 20}, description="test F30K", feature_shape=(36, 40),
                          approx_bytes=1 << 20)
    monkeypatch.setattr(registry, "ITEMS", (item,))
    assert main(["download", "scan-f30k", "--mirror", mirror.url, *roots(tmp_path)]) == 0
    assert sorted(p.name for p in (tmp_path / "data/f30k_precomp").iterdir()) == ["test_caps.txt", "test_ims.npy"]


def test_ctrl_c_during_a_download_is_one_line(tmp_path):
    """A server that accepts and never answers; SIGINT once the request arrived."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    command = [sys.executable, "-m", "bench", "download", "scan-vocab", "--retries", "0",
               "--mirror", f"http://127.0.0.1:{listener.getsockname()[1]}", *roots(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        listener.settimeout(120)
        connections = [listener.accept()[0] for _ in range(2)]  # the reachability probe, then gdown's GET
        connections[1].recv(1024)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        listener.close()
    assert process.returncode == 130
    assert err.strip().splitlines() == ["daa-bench download: interrupted; what was complete is kept, and the bytes "
                                        "of an unfinished download: run the same command to resume"]
