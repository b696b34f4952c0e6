"""Downloads end to end against a loopback HTTP server the test starts (gdown does the transfers).

The server serves generated stand-ins (a SCAN-format data.zip, vocab.zip, an annotations zip,
punkt_tab.zip, a DAA checkpoint, an SGRAF archive) and misbehaves on request: drops the
connection halfway, answers with an HTML page, a 404, or a file with one corrupted byte.
"""

import hashlib
import http.server
import json
import re
import tarfile
import threading
import zipfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import gdown
import pytest
from test_download_verify import schema_of

from bench.cli.main import main
from bench.common.errors import BenchError
from bench.data import synthetic
from bench.download import fetch as fetch_module
from bench.download import manifest as manifest_module
from bench.download import registry, verify
from bench.download.fetch import FetchOptions, fetch, partial_files
from bench.download.registry import Source


class Mirror:
    """What the loopback server serves, how it misbehaves, and what it was asked."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.html: set[str] = set()
        self.drop_once: set[str] = set()
        self.ignore_range = False  # like `python -m http.server`: every GET answered 200 with the whole file
        self.log: list[tuple[str, str | None]] = []
        self.url = ""


def handler_for(mirror: Mirror):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            name, wanted = self.path.lstrip("/"), self.headers.get("Range")
            mirror.log.append((name, wanted))
            if name not in mirror.files:
                self.send_error(404, "Not Found")
                return
            body = mirror.files[name]
            start = int(re.match(r"bytes=(\d+)-", wanted).group(1)) if wanted and not mirror.ignore_range else 0
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Type", "text/html" if name in mirror.html else "application/octet-stream")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            payload = body[start:]
            if name in mirror.drop_once:
                mirror.drop_once.discard(name)
                payload = payload[: len(payload) // 2]  # then hang up: the client sees a short body
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def mirror():
    served = Mirror()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_for(served))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield served
    server.shutdown()
    server.server_close()


def zip_of(path: Path, members: dict[str, bytes | Path]) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, content in members.items():
            zf.writestr(name, content.read_bytes() if isinstance(content, Path) else content)
    return path.read_bytes()


@pytest.fixture
def stand_ins(tmp_path, make_checkpoint, mirror, monkeypatch):
    """Generated files on the mirror under their registry names, and a registry that expects them."""
    src = tmp_path / "src"
    synthetic.write_split(src / "coco_precomp", "testall", 6, seed=1)
    synthetic.write_split(src / "coco_precomp", "dev", 4, seed=2)
    split_files = {f"data/coco_precomp/{p.name}": p for p in sorted((src / "coco_precomp").iterdir())}
    mirror.files["data.zip"] = zip_of(tmp_path / "data.zip", split_files)
    vocab = synthetic.write_vocab(src / "vocab.json")
    mirror.files["vocab.zip"] = zip_of(tmp_path / "vocab.zip", {
        "vocab/coco_precomp_vocab.json": src / "vocab.json", "vocab/f30k_precomp_vocab.json": src / "vocab.json"})
    mirror.files["annotations_trainval2014.zip"] = zip_of(tmp_path / "ann.zip", {
        "annotations/captions_val2014.json": json.dumps({"annotations": []}).encode(),
        "annotations/instances_val2014.json": json.dumps({"images": []}).encode()})
    mirror.files["punkt_tab.zip"] = zip_of(tmp_path / "punkt.zip", {
        "punkt_tab/english/collocations.tab": b"", "punkt_tab/english/sent_starters.txt": b"the\n",
        "punkt_tab/english/abbrev_types.txt": b"mr\n", "punkt_tab/english/ortho_context.tab": b""})
    sgr, saf = make_checkpoint("SGR", seed=1), make_checkpoint("SAF", seed=2)
    older = make_checkpoint("SGR", seed=3)
    mirror.files["daa_coco_sgr.pth.tar"] = sgr.read_bytes()
    mirror.files["sgraf_coco_models.zip"] = zip_of(tmp_path / "sgraf.zip", {
        "runs/coco_SGR/checkpoint_2.pth.tar": older, "runs/coco_SGR/model_best.pth.tar": sgr,
        "runs/coco_SAF/model_best.pth.tar": saf, "runs/coco_SAF/train.log": b"epoch 1 rsum 400\n"})
    monkeypatch.setattr(verify, "packaged_schema", lambda: {**schema_of(sgr), **schema_of(saf)})
    table = registry.select([], None)
    by_name = {item.name: item for item in table}
    items = (by_name["daa-coco-sgr"], by_name["sgraf-coco"], by_name["coco-annotations"], by_name["nltk-punkt-tab"],
             replace(by_name["scan-vocab"], vocab_sizes=()),
             registry._scan("coco_precomp", "coco", {"testall": 30, "dev": None}, description="test COCO",
                            feature_shape=(36, 40), approx_bytes=1 << 20))
    monkeypatch.setattr(registry, "ITEMS", items)
    assert vocab["idx"] > 4
    return {"sgr": sgr, "saf": saf, "older": older}


def roots(tmp_path) -> list[str]:
    return ["--data-root", str(tmp_path / "data"), "--models-root", str(tmp_path / "models"),
            "--nltk-dir", str(tmp_path / "nltk")]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(root: Path) -> list[str]:
    """Temporary files of atomic writes; part files of gdown are kept on purpose for resuming."""
    return [str(p) for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_killed_download_resumes_where_it_stopped(tmp_path, mirror):
    mirror.files["big.bin"] = bytes(range(256)) * 12000  # gdown keeps whole 512 KB chunks
    mirror.drop_once.add("big.bin")
    item = replace(registry.select(["scan-vocab"], None)[0], filename="big.bin", approx_bytes=1)
    source = (Source("url", f"{mirror.url}/big.bin"),)
    with pytest.raises(BenchError, match="interrupted.*run the same command again to resume"):
        fetch(item, tmp_path, source, FetchOptions(retries=0))
    assert not (tmp_path / "big.bin").exists()
    [part] = partial_files(tmp_path / "big.bin")
    kept = part.stat().st_size
    assert 0 < kept < len(mirror.files["big.bin"])
    path, digest, origin = fetch(item, tmp_path, source, FetchOptions(retries=0))
    assert path.read_bytes() == mirror.files["big.bin"] and digest == sha(mirror.files["big.bin"])
    assert mirror.log[-1] == ("big.bin", f"bytes={kept}-") and origin.endswith("/big.bin")
    assert partial_files(tmp_path / "big.bin") == []


def test_dropped_connection_is_retried_within_one_run(tmp_path, mirror):
    mirror.files["x.bin"] = b"0123456789" * 5000
    mirror.drop_once.add("x.bin")
    item = replace(registry.select(["scan-vocab"], None)[0], filename="x.bin", approx_bytes=1)
    path, digest, _ = fetch(item, tmp_path, (Source("url", f"{mirror.url}/x.bin"),), FetchOptions(retries=2))
    assert digest == sha(mirror.files["x.bin"]) and path.read_bytes() == mirror.files["x.bin"]
    assert len(mirror.log) == 2  # the short first answer, then the retry


def test_sources_are_tried_in_order_and_each_failure_is_named(tmp_path, mirror):
    mirror.files.update({"page": b"<!DOCTYPE html><html>Sign in</html>", "good.zip": b"PK-ish"})
    mirror.html.add("page")
    item = replace(registry.select(["scan-vocab"], None)[0], filename="got.zip", approx_bytes=1)
    bad = (Source("url", f"{mirror.url}/gone"), Source("url", f"{mirror.url}/page"))
    path, _, origin = fetch(item, tmp_path, bad + (Source("url", f"{mirror.url}/good.zip"),), FetchOptions(retries=0))
    assert origin.endswith("/good.zip") and path.read_bytes() == b"PK-ish"
    path.unlink()
    with pytest.raises(BenchError) as err:
        fetch(item, tmp_path, bad, FetchOptions(retries=0))
    message = str(err.value)
    assert "HTTP 404" in message and "HTML page" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # the HTML page was not kept as if it were the file


def test_google_drive_quota_page_becomes_one_line_with_what_to_do(tmp_path, monkeypatch):
    def refuse(**kwargs):
        raise gdown.exceptions.FileURLRetrievalError("Too many users have viewed or downloaded this file recently")

    monkeypatch.setattr(gdown, "download", refuse)
    monkeypatch.setattr(fetch_module, "reachable", lambda source, timeout: None)  # as if online
    item = registry.select(["daa-coco-sgr"], None)[0]
    with pytest.raises(BenchError, match=r"quota.*1hCiXyQBrYF7eP7JtNTaHQoqSZ18-mb2X/view in a browser.*--from PATH"):
        fetch(item, tmp_path, item.sources, FetchOptions(retries=0))


def test_make_download_all_from_a_mirror_then_quick_and_offline(tmp_path, mirror, stand_ins, monkeypatch, capsys):
    assert main(["download", "--group", "all", "--mirror", mirror.url, "--retries", "0", *roots(tmp_path)]) == 0
    data, models = tmp_path / "data", tmp_path / "models"
    for name in ("testall_ims.npy", "testall_caps.txt", "dev_ids.txt"):
        assert (data / "coco_precomp" / name).is_file()
    assert (data / "vocab/coco_precomp_vocab.json").is_file()
    assert (data / "coco_annotations/instances_val2014.json").is_file()
    assert (tmp_path / "nltk/tokenizers/punkt_tab/english/abbrev_types.txt").is_file()
    assert (models / "daa_coco_sgr.pth.tar").read_bytes() == stand_ins["sgr"].read_bytes()
    assert (models / "sgraf_coco_sgr.pth.tar").read_bytes() == stand_ins["sgr"].read_bytes()  # model_best chosen
    assert (models / "sgraf_coco_saf.pth.tar").read_bytes() == stand_ins["saf"].read_bytes()
    assert not (models / "downloads/daa_coco_sgr.pth.tar").exists()  # moved into place, not copied
    recorded = json.loads((models / "download-manifest.json").read_text())["files"]
    assert recorded["daa_coco_sgr.pth.tar"]["sha256"] == sha(stand_ins["sgr"].read_bytes())
    assert leftovers(tmp_path) == []

    # Everything present and verified: no request, no hashing.
    requests_before = len(mirror.log)
    monkeypatch.setattr(manifest_module, "sha256_of", lambda path: pytest.fail(f"re-hashed {path}"))
    assert main(["download", "--group", "all", "--mirror", mirror.url, *roots(tmp_path)]) == 0
    assert main(["download", "--group", "all", "--offline", *roots(tmp_path)]) == 0
    assert len(mirror.log) == requests_before
    capsys.readouterr()
    assert main(["download", "--list", *roots(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert listing.count("verified") == 6 and "missing" not in listing


def test_offline_reports_missing_items_without_fetching(tmp_path, mirror, stand_ins, capsys):
    assert main(["download", "scan-vocab", "--offline", "--mirror", mirror.url, *roots(tmp_path)]) == 2
    assert "scan-vocab: missing or incomplete" in capsys.readouterr().err and mirror.log == []


def test_corrupted_byte_is_caught_and_nothing_half_written_survives(tmp_path, mirror, stand_ins, capsys):
    good = mirror.files["data.zip"]
    at = good.index(b"dog")
    mirror.files["data.zip"] = good[:at] + b"cat" + good[at + 3:]
    assert main(["download", "scan-coco", "--mirror", mirror.url, "--retries", "0", *roots(tmp_path)]) == 2
    assert "CRC error" in capsys.readouterr().err
    data = tmp_path / "data"
    assert not (data / "coco_precomp").exists() and not (data / "downloads/data.zip").exists()
    assert list((data / "downloads/.partial").iterdir()) == [] and leftovers(tmp_path) == []
    mirror.files["data.zip"] = good  # the mirror is fixed: the next run starts afresh and succeeds
    assert main(["download", "scan-coco", "--mirror", mirror.url, *roots(tmp_path)]) == 0


def test_truncated_zip_html_page_and_404_each_end_in_one_line(tmp_path, mirror, stand_ins, capsys):
    mirror.files["vocab.zip"] = mirror.files["vocab.zip"][:-200]
    mirror.files["annotations_trainval2014.zip"] = b"<html><body>Service unavailable</body></html>"
    del mirror.files["punkt_tab.zip"]
    for item, expected in (("scan-vocab", "not a complete zip archive"), ("coco-annotations", "HTML page"),
                           ("nltk-punkt-tab", "HTTP 404")):
        assert main(["download", item, "--mirror", mirror.url, "--retries", "0", *roots(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err
    assert not (tmp_path / "data/vocab").exists() and not (tmp_path / "data/coco_annotations").exists()
    assert not (tmp_path / "nltk/tokenizers").exists()


def test_from_a_file_fetched_by_hand_and_only_the_asked_split(tmp_path, mirror, stand_ins, capsys):
    given = tmp_path / "Downloads" / "whatever.zip"
    given.parent.mkdir()
    given.write_bytes(mirror.files["data.zip"])
    args = ["download", "scan-coco", "--from", str(given), "--split", "testall", "--hdf5", *roots(tmp_path)]
    assert main(args) == 0 and mirror.log == [] and given.is_file()
    folder = tmp_path / "data/coco_precomp"
    assert sorted(p.name for p in folder.iterdir()) == ["testall.h5", "testall_caps.txt", "testall_ids.txt",
                                                        "testall_ims.npy"]
    assert main(["download", "--group", "coco", "--from", str(given), *roots(tmp_path)]) == 2
    assert "name the one item" in capsys.readouterr().err


def test_a_wrong_checkpoint_is_refused_by_content(tmp_path, stand_ins, capsys):
    saf = stand_ins["saf"]
    assert main(["download", "daa-coco-sgr", "--from", str(saf), *roots(tmp_path)]) == 2
    assert "holds no coco_precomp SGR checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "models/daa_coco_sgr.pth.tar").exists()


def test_a_changed_file_is_rehashed_and_a_mismatch_refused(tmp_path, mirror, stand_ins, capsys):
    assert main(["download", "daa-coco-sgr", "--mirror", mirror.url, *roots(tmp_path)]) == 0
    target = tmp_path / "models/daa_coco_sgr.pth.tar"
    target.write_bytes(stand_ins["older"].read_bytes())  # same layout, different weights
    assert main(["download", "daa-coco-sgr", "--mirror", mirror.url, *roots(tmp_path)]) == 2
    assert "differs from" in capsys.readouterr().err


def test_corrupted_or_truncated_checkpoint_is_refused_and_removed(tmp_path, mirror, stand_ins, capsys):
    good = mirror.files["daa_coco_sgr.pth.tar"]
    middle = len(good) // 2
    mirror.files["daa_coco_sgr.pth.tar"] = good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1:]
    assert main(["download", "daa-coco-sgr", "--mirror", mirror.url, "--retries", "0", *roots(tmp_path)]) == 2
    assert "CRC error" in capsys.readouterr().err
    mirror.files["daa_coco_sgr.pth.tar"] = good[:middle]
    assert main(["download", "daa-coco-sgr", "--mirror", mirror.url, "--retries", "0", *roots(tmp_path)]) == 2
    assert "neither a checkpoint nor" in capsys.readouterr().err
    models = tmp_path / "models"
    assert not (models / "daa_coco_sgr.pth.tar").exists() and not (models / "downloads/daa_coco_sgr.pth.tar").exists()
    assert not (models / "download-manifest.json").exists()  # nothing corrupt was ever trusted


def test_baseline_archive_may_be_a_tarball(tmp_path, mirror, stand_ins):
    with tarfile.open(tmp_path / "sgraf.tar.gz", "w:gz") as tar:
        tar.add(stand_ins["saf"], "SGRAF/coco_SAF/model_best.pth.tar")
        tar.add(stand_ins["sgr"], "SGRAF/coco_SGR/model_best.pth.tar")
    mirror.files["sgraf_coco_models.zip"] = (tmp_path / "sgraf.tar.gz").read_bytes()
    assert main(["download", "sgraf-coco", "--mirror", mirror.url, *roots(tmp_path)]) == 0
    assert (tmp_path / "models/sgraf_coco_saf.pth.tar").read_bytes() == stand_ins["saf"].read_bytes()


def test_a_file_in_a_drive_folder_is_found_by_name(monkeypatch):
    listing = [SimpleNamespace(id="1abc", path="scan/vocab.zip", local_path="x"),  # gdown's listing entries
               SimpleNamespace(id="1def", path="scan/data.zip", local_path="y")]
    monkeypatch.setattr(gdown, "download_folder", lambda **kwargs: listing)
    assert fetch_module._file_in_folder("folder", "data.zip") == "1def"
    with pytest.raises(BenchError, match="lists no punkt_tab.zip"):
        fetch_module._file_in_folder("folder", "punkt_tab.zip")


def test_bench_mirror_environment_variable_and_disk_space_check(tmp_path, mirror, stand_ins, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_MIRROR", mirror.url)
    with monkeypatch.context() as full_disk:
        full_disk.setattr(fetch_module.shutil, "disk_usage", lambda path: SimpleNamespace(free=10 << 20))
        assert main(["download", "scan-coco", *roots(tmp_path)]) == 2
    assert "needs about" in capsys.readouterr().err and mirror.log == []
    assert main(["download", "scan-vocab", *roots(tmp_path)]) == 0
    assert mirror.log == [("vocab.zip", None)]


def test_a_published_hash_in_the_registry_is_enforced(tmp_path, mirror, stand_ins, monkeypatch, capsys):
    items = tuple(replace(i, sha256="0" * 64) if i.name == "scan-vocab" else i for i in registry.ITEMS)
    monkeypatch.setattr(registry, "ITEMS", items)
    assert main(["download", "scan-vocab", "--mirror", mirror.url, *roots(tmp_path)]) == 2
    assert "is not the published 000000000000" in capsys.readouterr().err
    assert not (tmp_path / "data/downloads/vocab.zip").exists() and not (tmp_path / "data/vocab").exists()
    monkeypatch.setattr(registry, "ITEMS", tuple(replace(i, sha256=sha(mirror.files["vocab.zip"])) for i in items))
    assert main(["download", "scan-vocab", "--mirror", mirror.url, *roots(tmp_path)]) == 0
