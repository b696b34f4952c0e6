"""Bad input, one thing wrong at a time: exit 2, one stderr line naming the culprit, nothing written.

Every case starts from a valid `eval` run (checked to succeed below) and changes one thing.
Each asserts: exit status 2, exactly one stderr line that names the file or flag at fault, no
traceback, no output file and no temporary left, and every input byte-identical afterwards.
"""

import csv
import json
import os
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from bad_input_harness import (
    N_IMAGES,
    VOCAB,
    Case,
    assert_refused,
    base,
    dead_pid,
    eval_args,
    ids,
    replace_arg,
    tree_state,
    work,
)

from bench.cli.main import main
from bench.common import atomic
from bench.data import synthetic
from bench.model import random_weights

# ---- ways to spoil one input ------------------------------------------------------------------

def rewrite_checkpoint(path: Path, change: Callable[[dict], None]) -> None:
    raw = torch.load(path, map_location="cpu", weights_only=False)
    change(raw)
    torch.save(raw, path)


def set_opt(field: str, value) -> Callable[[dict], None]:
    return lambda raw: setattr(raw["opt"], field, value)


def set_weight(part: int, key: str, value) -> Callable[[dict], None]:
    def change(raw):
        raw["model"][part]["module." + key] = value(raw["model"][part]["module." + key])
    return change


def flip_tensor_byte(path: Path) -> None:
    """Flip one byte inside the largest tensor's data (not a header): only the CRC can tell."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


def write_features(root: Path, array: np.ndarray) -> None:
    np.save(root / "data" / "f30k_precomp" / "test_ims.npy", array)


def features(root: Path) -> np.ndarray:
    return np.load(root / "data" / "f30k_precomp" / "test_ims.npy")


def write_vocab_document(root: Path, document) -> None:
    (root / "data" / "vocab" / "f30k_precomp_vocab.json").write_text(json.dumps(document))


def valid_word2idx() -> dict:
    return {w: i for i, w in enumerate(synthetic.vocabulary_words())}


def h5_with_group(root: Path) -> None:
    import h5py

    split = root / "data" / "f30k_precomp"
    (split / "test_ims.npy").unlink()
    with h5py.File(split / "test.h5", "w") as handle:
        handle.create_group("feat")


def caption_lines(root: Path, change: Callable[[list[str]], list[str]]) -> None:
    path = root / "data" / "f30k_precomp" / "test_caps.txt"
    path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")


def symlink_to_checkpoint(root: Path) -> list[str]:
    (root / "results" / "link.json").symlink_to(root / "models" / "f30k_sgr.pth.tar")
    return replace_arg(eval_args(root), "--json", root / "results" / "link.json")


def plot_onto_its_csv(root: Path) -> list[str]:
    (root / "runs").mkdir()
    (root / "runs" / "run.csv").write_text("run_id\n")
    return ["plot", str(root / "runs" / "run.csv"), "--out", str(root / "runs" / "run.csv")]


def markdown_onto_a_result(root: Path) -> list[str]:
    (root / "runs").mkdir()
    (root / "runs" / "a.json").write_text("{}")
    return ["table", "--table", "1", "--results", str(root / "runs"), "--markdown", str(root / "runs" / "a.json")]


def spoil(change: Callable[[Path], object], *extra, **kwargs) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        change(root)
        return eval_args(root, *extra, **kwargs)
    return setup


def ckpt(change: Callable[[dict], None], name: str = "f30k_sgr") -> Callable[[Path], object]:
    return lambda root: rewrite_checkpoint(root / "models" / f"{name}.pth.tar", change)


SGR = "models/f30k_sgr.pth.tar"
FEATURES = "test_ims.npy"
VOCAB_FILE = "f30k_precomp_vocab.json"
CASES = [
    # 1. outputs that would destroy an input or each other, or cannot be files
    Case("json-equals-csv", lambda r: replace_arg(eval_args(r), "--csv", r / "results" / "run.json"), "--json"),
    Case("sims-equals-json", lambda r: replace_arg(eval_args(r), "--save-sims", r / "results" / "run.json"),
         "--save-sims"),
    Case("json-is-checkpoint", lambda r: replace_arg(eval_args(r), "--json", r / SGR), "--json"),
    Case("csv-is-features", lambda r: replace_arg(eval_args(r), "--csv", r / "data/f30k_precomp" / FEATURES),
         "--csv"),
    Case("json-links-to-checkpoint", symlink_to_checkpoint, "--json"),
    Case("csv-is-directory", lambda r: replace_arg(eval_args(r), "--csv", r / "results"), "--csv"),
    Case("json-under-a-file", lambda r: replace_arg(eval_args(r), "--json", r / SGR / "run.json"), "--json"),
    Case("plot-out-is-its-csv", plot_onto_its_csv, "--out"),
    Case("markdown-is-a-result", markdown_onto_a_result, "--markdown"),
    # 4. plausible wrong results
    Case("flipped-byte", spoil(lambda r: flip_tensor_byte(r / SGR)), SGR),
    Case("coco-checkpoint-on-f30k", spoil(lambda r: None, checkpoints=("coco_saf",)), "coco_saf.pth.tar"),
    Case("sgraf-of-two-datasets", spoil(lambda r: None, checkpoints=("f30k_sgr", "coco_saf")), "coco_saf.pth.tar"),
    Case("captions-5x", spoil(lambda r: caption_lines(r, lambda lines: lines * 5)), "test_caps.txt"),
    Case("int32-features", spoil(lambda r: write_features(r, features(r).astype(np.int32))), FEATURES),
    Case("bool-features", spoil(lambda r: write_features(r, features(r) > 0)), FEATURES),
    Case("nan-weight", spoil(ckpt(set_weight(2, "sim_eval_w.weight", lambda w: w * float("nan")))), SGR),
    Case("int64-weight", spoil(ckpt(set_weight(0, "fc.weight", lambda w: w.long()))), SGR),
    # 5. a hostile or malformed opt, tensors that do not fit it
    Case("embed-size-1e7", spoil(ckpt(set_opt("embed_size", 10**7))), SGR),
    Case("sgr-step-1e6", spoil(ckpt(set_opt("sgr_step", 10**6))), SGR),
    Case("num-layers-1e4", spoil(ckpt(set_opt("num_layers", 10**4))), SGR),
    Case("embed-size-string", spoil(ckpt(set_opt("embed_size", "32"))), SGR),
    Case("embed-size-float", spoil(ckpt(set_opt("embed_size", 32.0))), SGR),
    Case("embed-size-none", spoil(ckpt(set_opt("embed_size", None))), SGR),
    Case("bi-gru-string", spoil(ckpt(set_opt("bi_gru", "False"))), SGR),
    Case("embed-size-contradicts-weights", spoil(ckpt(set_opt("embed_size", 64))), SGR),
    Case("opt-not-namespace", spoil(ckpt(lambda raw: raw.update(opt={"embed_size": 32}))), SGR),
    # 6. everything else that used to crash
    Case("truncated-checkpoint", spoil(lambda r: (r / SGR).write_bytes((r / SGR).read_bytes()[:5000])), SGR),
    Case("empty-checkpoint", spoil(lambda r: (r / SGR).write_bytes(b"")), SGR),
    Case("non-tensor-weight", spoil(ckpt(set_weight(0, "fc.bias", lambda w: w.tolist()))), SGR),
    Case("epoch-not-a-number", spoil(ckpt(lambda raw: raw.update(epoch="three"))), SGR),
    Case("vocab-word2idx-list", spoil(lambda r: write_vocab_document(r, {"word2idx": list(valid_word2idx())})),
         VOCAB_FILE),
    Case("vocab-word2idx-string", spoil(lambda r: write_vocab_document(r, {"word2idx": "dog"})), VOCAB_FILE),
    Case("vocab-mixed-id-types", spoil(lambda r: write_vocab_document(
        r, {"word2idx": valid_word2idx() | {"dog": "4"}})), VOCAB_FILE),
    Case("vocab-deep-nesting", spoil(lambda r: (r / "data/vocab" / VOCAB_FILE).write_text(
        "[" * 100_000 + "]" * 100_000)), VOCAB_FILE),
    Case("empty-npy-file", spoil(lambda r: (r / "data/f30k_precomp" / FEATURES).write_bytes(b"")), FEATURES),
    Case("npy-without-rows", spoil(lambda r: write_features(r, np.zeros((0, 36, 40), np.float32))), FEATURES),
    Case("string-features", spoil(lambda r: write_features(r, np.full((50, 36, 40), "x"))), FEATURES),
    Case("object-features", spoil(lambda r: write_features(r, np.empty((50, 36, 40), dtype=object))), FEATURES),
    Case("structured-features", spoil(lambda r: write_features(
        r, np.zeros((50, 36, 40), dtype=[("a", "f4"), ("b", "i4")]))), FEATURES),
    Case("h5-feat-is-group", spoil(h5_with_group), "test.h5"),
    Case("ids-not-utf8", spoil(lambda r: (r / "data/f30k_precomp/test_ids.txt").write_bytes(
        b"\xff\xfe\n" * (5 * N_IMAGES))), "test_ids.txt"),
    Case("captions-not-utf8", spoil(lambda r: (r / "data/f30k_precomp/test_caps.txt").write_bytes(
        b"\xff caption\n" * (5 * N_IMAGES))), "test_caps.txt"),
    Case("device-meta", lambda r: eval_args(r, "--device", "meta"), "--device"),
    Case("image-shard-0", lambda r: eval_args(r, "--image-shard", "0"), "--image-shard"),
    Case("caption-of-100k-tokens", spoil(lambda r: caption_lines(
        r, lambda lines: [" ".join(["dog"] * 100_000)] + lines[1:])), "test_caps.txt"),
]


def test_the_unspoiled_run_succeeds(base, tmp_path):
    """Each case differs from this run in one thing. Outputs get the umask's permissions, and the
    temporaries a killed run left are swept (those of a live writer are not)."""
    root = tmp_path / "w"
    shutil.copytree(base, root, symlinks=True)
    stale = root / "results" / atomic.partial_name("run.json", ".json", pid=dead_pid())
    live = root / "results" / atomic.partial_name("run.json", ".json", pid=os.getppid())
    for partial in (stale, live):
        partial.write_text("{")
    assert main(eval_args(root)) == 0
    assert not stale.exists() and live.exists()
    for name in ("run.json", "run.csv", "sims.npy"):
        assert (root / "results" / name).stat().st_mode & 0o777 == atomic.umask_mode()


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input_is_one_line_and_changes_nothing(work, capsys, case):
    assert_refused(main, case.setup(work), work, capsys, case.names)


def test_mismatch_allowed_marks_every_figure_without_reference(base, tmp_path):
    root = tmp_path / "w"
    shutil.copytree(base, root, symlinks=True)
    assert main(eval_args(root, "--allow-mismatch", checkpoints=("coco_saf",))) == 0
    rows = list(csv.DictReader((root / "results" / "run.csv").open()))
    assert rows and {row["status"] for row in rows} == {"no-reference"}
    assert json.loads((root / "results" / "run.json").read_text())["provenance"]["mismatch"]


def test_a_failing_output_leaves_none_of_the_others(base, tmp_path, capsys, monkeypatch):
    """The CSV fails after the score matrix was written: none of the outputs appears."""
    import bench.results.run_result

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    root = tmp_path / "w"
    shutil.copytree(base, root, symlinks=True)
    before = tree_state(root)
    monkeypatch.setattr(bench.results.run_result, "csv_text", fail)
    assert main(eval_args(root)) == 2
    assert "No space left" in capsys.readouterr().err
    assert tree_state(root) == before


def test_outputs_checked_by_resolved_path(tmp_path):
    from bench.common.errors import BenchError
    from bench.common.outputs import check_outputs
    from bench.common.replace_rule import RESULT_JSON

    (tmp_path / "a").mkdir()
    kinds = {"--json": RESULT_JSON, "--csv": RESULT_JSON}
    with pytest.raises(BenchError, match="--csv"):
        check_outputs({"--json": tmp_path / "x.json", "--csv": tmp_path / "a" / ".." / "x.json"}, kinds)
    check_outputs({"--json": tmp_path / "x.json", "--csv": tmp_path / "x.csv"}, kinds,
                  inputs={"checkpoint": [tmp_path / "c.pth.tar"], "vocabulary": None})


def test_opt_validation_refuses_before_building(tmp_path):
    """A hostile opt is refused from its fields alone: no module is built."""
    from bench.common.errors import BenchError
    from bench.model.config import ModelConfig

    opt = random_weights.small_config("SGR", "f30k_precomp", VOCAB).to_opt()
    opt.sgr_step = 10**6
    with pytest.raises(BenchError, match=r"opt.sgr_step is 1000000"):
        ModelConfig.from_opt(opt, source="x")


def test_a_file_another_tool_wrote_gets_umask_permissions(tmp_path):
    """gdown's part files are mkstemp's 0600; the kept archive and checkpoints must not be."""
    part = tmp_path / "data.zip.part"
    part.write_bytes(b"zip")
    part.chmod(0o600)
    atomic.move_into_place(part, tmp_path / "data.zip")
    assert (tmp_path / "data.zip").stat().st_mode & 0o777 == atomic.umask_mode() and not part.exists()
