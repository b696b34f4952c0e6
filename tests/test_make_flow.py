"""The user's flow through `make`, against a loopback mirror of small stand-ins in the real layout.

`make download` (evaluation only), `make reproduce-f30k-saf`, `make train-f30k-saf` (a short run),
`make eval-trained-f30k-saf`, `make report`; then the CSVs. Output is captured without a terminal,
so the plain progress lines must appear in it. The make targets run on this interpreter: the
install stamp is satisfied by a folder holding only `.installed`, and PY names sys.executable.
"""

import csv
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from test_download import Mirror, handler_for

from bench.data import synthetic
from bench.model import random_weights

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def zipped(path: Path, members: dict[str, Path | bytes]) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, content in members.items():
            archive.writestr(name, content.read_bytes() if isinstance(content, Path) else content)
    return path.read_bytes()


def stand_ins(work: Path) -> dict[str, bytes]:
    """data.zip, vocab.zip, annotations, punkt_tab and the checkpoints, under their registry names."""
    src, files = work / "src", {}
    for split, images, per_caption in (("train", 40, False), ("dev", 8, True), ("test", 10, True)):
        synthetic.write_split(src / "f30k_precomp", split, images, rows_per_caption=per_caption, seed=len(split))
    synthetic.write_split(src / "coco_precomp", "testall", 10, seed=7)
    files["data.zip"] = zipped(work / "data.zip", {f"data/{p.relative_to(src)}": p for p in sorted(src.rglob("*.*"))})
    vocab = synthetic.write_vocab(work / "vocab.json")
    files["vocab.zip"] = zipped(work / "vocab.zip", {f"vocab/{d}_precomp_vocab.json": work / "vocab.json"
                                                     for d in ("coco", "f30k")})
    files["annotations_trainval2014.zip"] = zipped(work / "ann.zip", {
        "annotations/captions_val2014.json": b'{"annotations": []}',
        "annotations/instances_val2014.json": b'{"images": []}'})
    files["punkt_tab.zip"] = zipped(work / "punkt.zip", {
        "punkt_tab/english/collocations.tab": b"", "punkt_tab/english/sent_starters.txt": b"the\n",
        "punkt_tab/english/abbrev_types.txt": b"mr\n", "punkt_tab/english/ortho_context.tab": b""})
    for family in ("daa", "sgraf"):
        for dataset in ("coco", "f30k"):
            paths = {m: random_weights.write_checkpoint(
                work / f"{family}_{dataset}_{m.lower()}.pth.tar",
                random_weights.small_config(m, f"{dataset}_precomp", vocab["idx"]), seed=len(family) + len(m))
                for m in ("SGR", "SAF")}
            if family == "daa":
                files.update({p.name: p.read_bytes() for p in paths.values()})
            else:
                files[f"sgraf_{dataset}_models.zip"] = zipped(work / f"sgraf_{dataset}.zip", {
                    f"runs/{dataset}_{m}/model_best.pth.tar": p for m, p in paths.items()})
    return files


@pytest.fixture
def served(tmp_path):
    mirror = Mirror()
    mirror.files = stand_ins(tmp_path / "stand-ins")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_for(mirror))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield mirror
    server.shutdown()
    server.server_close()


def test_download_reproduce_train_evaluate_report_through_make(tmp_path, served):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # newer than pyproject.toml: make installs nothing
    data, models, results = tmp_path / "data", tmp_path / "models", tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if k not in ("NLTK_DATA", "BENCH_QUIET", "MAKEFLAGS", "MFLAGS")}
    env.update(PYTHONPATH=str(REPO), BENCH_STAND_IN_DATA="1", BENCH_PROGRESS_INTERVAL="0", OMP_NUM_THREADS="1")
    settings = [f"VENV={venv}", f"PY={sys.executable}", f"DATA_ROOT={data}", f"MODELS_ROOT={models}",
                f"RESULTS={results}", "DEVICE=cpu", f"DOWNLOAD_FLAGS=--mirror {served.url}"]

    def make(*args: str) -> str:
        done = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args, *settings], env=env,
                              capture_output=True, text=True, timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-3000:]
        return output

    log = make("download")
    assert (data / "f30k_precomp/test_ims.npy").is_file() and (data / "coco_precomp/testall_ims.npy").is_file()
    assert not (data / "f30k_precomp/train_ims.npy").exists()  # evaluation only
    assert (data / "nltk_data/tokenizers/punkt_tab/english/abbrev_types.txt").is_file()
    assert (models / "daa_f30k_saf.pth.tar").is_file() and (models / "sgraf_f30k_saf.pth.tar").is_file()

    log += make("reproduce-f30k-saf")
    provenance = json.loads((results / "daa_f30k_saf_f30k-1k.json").read_text())["provenance"]
    assert provenance["tokenizer"] == "punkt_tab"  # found under the data root, where download put it
    released = list(csv.DictReader(open(results / "daa_f30k_saf_f30k-1k.csv")))
    assert released and {row["status"] for row in released} <= {"ok", "off", "no-reference"}
    assert {row["status"] for row in released} & {"ok", "off"}  # compared with the paper

    short = "--max-steps 3 --train-captions 100 --batch-size 20 --embed-size 32 --word-dim 16 --sim-dim 16 --workers 0"
    log += make("train-f30k-saf", f"TRAIN_FLAGS={short}")
    assert (data / "f30k_precomp/train_ims.npy").is_file()  # the training target fetched train + dev
    best = models / "trained/f30k_precomp_saf/model_best.pth.tar"
    assert best.is_file()

    log += make("eval-trained-f30k-saf")
    trained = list(csv.DictReader(open(results / "trained_f30k_saf_f30k-1k.csv")))
    assert trained and {row["status"] for row in trained} <= {"own", "no-reference"} and "own" in {
        row["status"] for row in trained}
    assert json.loads((results / "trained_f30k_saf_f30k-1k.json").read_text())["provenance"]["checkpoints"][0][
        "path"] == str(best)

    log += make("report")
    summary = list(csv.DictReader(open(results / "summary.csv")))
    assert {row["run_id"] for row in summary} >= {"daa_f30k_saf_f30k-1k", "trained_f30k_saf_f30k-1k"}

    for step in (r"encoding images: \d+/\d+ images", r"scoring SAF on test: [\d,]+/[\d,]+ pairs \(\d+%\), .*ETA",
                 r"epoch \d+: \d+/\d+ steps"):  # plain progress lines, though no terminal
        assert re.search(step, log), step
    assert "Traceback" not in log
