"""Bad input, round 3: outputs that would destroy files, signals, data oddities, hostile files.

Each refusal asserts what tests/bad_input_harness.py checks: exit status, exactly one stderr line
naming the file or flag, no traceback, every file of the tree byte-identical, no process left.
The cases start from a tree holding one finished run (`results/run.*`).
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bad_input_harness import (
    REPO,
    Case,
    assert_refused,
    base,
    dead_pid,
    descendants,
    eval_args,
    ids,
    live_children,
    one_line,
    replace_arg,
    run_args,
    run_bench,
    tree_state,
    work,
)
from test_download import mirror, roots, stand_ins

from bench.cli.main import main
from bench.common import atomic
from bench.demo import DATA_NAME, DemoPlan, write_demo_data

RESULTS = "results"


@pytest.fixture(scope="module")
def finished(base, tmp_path_factory) -> Path:
    """`base` plus one evaluated run: results/run.json, run.csv, run.queries.npz, sims.npy."""
    root = tmp_path_factory.mktemp("finished") / "w"
    shutil.copytree(base, root, symlinks=True)
    assert main(eval_args(root)) == 0
    return root


@pytest.fixture
def root(finished, tmp_path) -> Path:
    copy = tmp_path / "w"
    shutil.copytree(finished, copy, symlinks=True)
    return copy


def run_file(root: Path, name: str) -> Path:
    return root / RESULTS / name


def fifo(root: Path, name: str) -> Path:
    path = run_file(root, name)
    os.mkfifo(path)
    return path


def plot_onto_a_fifo(root: Path) -> list[str]:
    """`plot run.csv` draws run.png beside it, here a FIFO (which would block a writer)."""
    fifo(root, "run.png")
    return ["plot", str(run_file(root, "run.csv"))]


def second_run(root: Path) -> Path:
    """A copy of the finished run's JSON under another name (same per-query file)."""
    shutil.copy(run_file(root, "run.json"), run_file(root, "b.json"))
    return run_file(root, "b.json")


def report_md_is_a_directory(root: Path) -> list[str]:
    run_file(root, "summary.md").mkdir()
    return ["report", "--results", str(root / RESULTS)]


# ---- 1. outputs that would destroy files ---------------------------------------------------------
OUTPUT_CASES = [
    Case("plot-out-is-the-run-json",
         lambda r: ["plot", str(run_file(r, "run.csv")), "--out", str(run_file(r, "run.json"))], "--out"),
    Case("plot-default-out-is-a-fifo", plot_onto_a_fifo, "run.png"),
    Case("markdown-is-a-per-query-file", lambda r: ["table", "--table", "3", "--results", str(r / RESULTS),
                                                    "--markdown", str(run_file(r, "run.queries.npz"))], "--markdown"),
    Case("gains-csv-is-a-run-csv", lambda r: ["table", "--table", "3", "--results", str(r / RESULTS),
                                              "--gains-csv", str(run_file(r, "run.csv"))], "--gains-csv"),
    Case("compare-csv-is-a-run-json", lambda r: ["compare", str(run_file(r, "run.json")), str(second_run(r)),
                                                 "--csv", str(run_file(r, "run.json"))], "--csv"),
    Case("eval-json-over-a-run-csv", lambda r: replace_arg(eval_args(r), "--json", run_file(r, "run.csv")), "--json"),
    Case("eval-sims-over-a-run-json", lambda r: replace_arg(
        replace_arg(eval_args(r), "--json", run_file(r, "new.json")), "--save-sims", run_file(r, "run.json")),
         "--save-sims"),
    Case("eval-csv-is-a-fifo", lambda r: replace_arg(eval_args(r), "--csv", fifo(r, "new.csv")), "--csv"),
    Case("report-summary-md-is-a-directory", report_md_is_a_directory, "summary.md"),
]


@pytest.mark.parametrize("case", OUTPUT_CASES, ids=ids(OUTPUT_CASES))
def test_an_output_never_destroys_a_file(root, capsys, case):
    assert_refused(main, case.setup(root), root, capsys, case.names)


def test_a_character_device_output_is_written_through_not_replaced(root, capsys):
    """`--csv /dev/null` discards the CSV; /dev/null stays the system's device."""
    args = replace_arg(replace_arg(eval_args(root), "--csv", os.devnull), "--json", run_file(root, "new.json"))
    assert main(replace_arg(args, "--save-sims", os.devnull)) == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert run_file(root, "new.json").is_file() and run_file(root, "new.queries.npz").is_file()


def test_a_library_write_refuses_a_file_of_another_run(root):
    from bench.common.errors import BenchError
    from bench.results.run_result import load_result

    result = load_result(run_file(root, "run.json"))
    before = tree_state(root)
    with pytest.raises(BenchError, match="csv_path .*run.json: is the result JSON of a run, not a results CSV"):
        result.write(csv_path=run_file(root, "run.json"))
    with pytest.raises(BenchError, match="json_path .*f30k_sgr.pth.tar: is an input of this run"):
        result.write(json_path=result.provenance["checkpoints"][0]["path"])  # the tree it was evaluated in
    with pytest.raises(BenchError, match="png_path"):
        from bench.results.plots import plot_run
        plot_run(run_file(root, "run.csv"), run_file(root, "run.queries.npz"))
    assert tree_state(root) == before


# ---- 2. odd names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["sims.bin", "sims", "sims.npz"])
def test_save_sims_writes_exactly_the_name_given(root, name):
    before = set(tree_state(root))
    assert main(replace_arg(eval_args(root), "--save-sims", run_file(root, name))) == 0
    assert set(tree_state(root)) - before == {f"{RESULTS}/{name}"}
    assert np.load(run_file(root, name)).dtype == np.float32


# ---- 3. all or nothing, Ctrl-C and SIGTERM ----------------------------------------------------------

def fail_on_second(monkeypatch, action):
    """Make the second output's final rename do `action` (raise, or signal this process)."""
    real, calls = atomic._put_in_place, []

    def put(tmp, final):
        calls.append(final)
        if len(calls) == 2:
            action()
        real(tmp, final)
    monkeypatch.setattr(atomic, "_put_in_place", put)


def disk_error():
    raise OSError(5, "Input/output error")


def test_a_rename_that_fails_puts_back_the_outputs_already_replaced(root, capsys, monkeypatch):
    fail_on_second(monkeypatch, disk_error)
    assert_refused(main, eval_args(root), root, capsys, "Input/output error")


@pytest.mark.parametrize("signum, status, how", [(signal.SIGINT, 130, "interrupted"),
                                                 (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_a_signal_between_renames_waits_and_the_line_names_what_was_written(root, capsys, monkeypatch, signum,
                                                                            status, how):
    fail_on_second(monkeypatch, lambda: os.kill(os.getpid(), signum))
    capsys.readouterr()
    assert main(eval_args(root)) == status
    line = one_line(capsys.readouterr().err, how)
    written = line.split("; wrote ")[1].removesuffix(" before").split(", ")
    assert sorted(Path(p).name for p in written) == ["run.csv", "run.json", "run.queries.npz", "sims.npy"]
    assert not [p for p in (root / RESULTS).iterdir() if atomic.PARTIAL_MARK in p.name]


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_writing_leaves_no_file(root, capsys, monkeypatch, signum, status):
    import bench.results.run_result

    def interrupted(rows):
        os.kill(os.getpid(), signum)
        return ""
    monkeypatch.setattr(bench.results.run_result, "csv_text", interrupted)
    assert_refused(main, eval_args(root), root, capsys, "no result file was written", status=status)


def test_stale_temporaries_of_any_output_name_are_swept(root):
    stale = run_file(root, atomic.partial_name("other.csv", ".csv", pid=dead_pid()))
    backup = run_file(root, atomic.partial_name("run.json", ".backup", pid=dead_pid()))
    for partial in (stale, backup):
        partial.write_text("x")
    assert main(eval_args(root)) == 0
    assert not stale.exists() and not backup.exists()


# ---- 5, 9, 10. downloads -------------------------------------------------------------------------

def download_refused(args: list[str], root: Path, capsys, names: str) -> None:
    """A failed download: exit 2, the item's line names the culprit, then the summary line; nothing
    written (no manifest, no part file, no extracted member)."""
    before = tree_state(root)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) <= 2 and "Traceback" not in err and names in lines[0], err
    assert tree_state(root) == before


def test_a_server_that_ignores_range_restarts_from_zero(tmp_path, mirror, stand_ins):  # noqa: F811
    mirror.ignore_range = True
    staging = tmp_path / "data" / "downloads" / ".partial"
    staging.mkdir(parents=True)
    (staging / "vocab.zipABCDEFGH.part").write_bytes(b"bytes of another transfer")
    assert main(["download", "scan-vocab", "--mirror", mirror.url, *roots(tmp_path)]) == 0
    assert [wanted for name, wanted in mirror.log if name == "vocab.zip"][-2:] == ["bytes=25-", None]
    assert not list(staging.iterdir()) and (tmp_path / "data/vocab/coco_precomp_vocab.json").is_file()


def vocab_zip_with_a_big_member(mirror, tmp_path):  # noqa: F811
    """A small archive whose vocabulary member unpacks to 5 MiB (the registry allows 4 MiB)."""
    import zipfile

    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("coco_precomp_vocab.json", b" " * (5 << 20))
        archive.writestr("f30k_precomp_vocab.json", b"{}")
    assert path.stat().st_size < 100_000
    mirror.files["vocab.zip"] = path.read_bytes()
    path.unlink()


def test_a_zip_member_is_bounded_before_anything_is_read(tmp_path, mirror, stand_ins, capsys):  # noqa: F811
    vocab_zip_with_a_big_member(mirror, tmp_path)
    download_refused(["download", "scan-vocab", "--mirror", mirror.url, *roots(tmp_path)], tmp_path, capsys,
                     "member coco_precomp_vocab.json declares 5 MiB")


def test_a_zip_member_is_bounded_when_extracting(tmp_path):
    from bench.common.errors import BenchError
    from bench.download.archive import Archive

    vocab = tmp_path / "v.zip"
    import zipfile
    with zipfile.ZipFile(vocab, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.json", b" " * 4096)
    with Archive(vocab) as archive, pytest.raises(BenchError, match="member a.json is larger"):
        archive.extract("a.json", tmp_path / "a.json", limit=1024)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.zip"]


def fifo_from(root: Path) -> list[str]:
    os.mkfifo(root / "by_hand.zip")
    return ["download", "scan-vocab", "--from", str(root / "by_hand.zip"), *roots(root)]


def failing_from(root: Path, mirror) -> list[str]:  # noqa: F811
    vocab_zip_with_a_big_member(mirror, root)
    (root / "by_hand.zip").write_bytes(mirror.files["vocab.zip"])
    return ["download", "scan-vocab", "--from", str(root / "by_hand.zip"), *roots(root)]


DOWNLOAD_CASES = [
    Case("from-is-a-fifo", lambda r, m: fifo_from(r), "not a regular file"),
    Case("mirror-is-a-file-url", lambda r, m: ["download", "scan-vocab", "--mirror", f"file://{r}", *roots(r)],
         "--mirror"),
    Case("failed-from-leaves-no-manifest", failing_from, "by_hand.zip"),
]


@pytest.mark.parametrize("case", DOWNLOAD_CASES, ids=ids(DOWNLOAD_CASES))
def test_a_bad_download_source_is_one_line_and_changes_nothing(tmp_path, mirror, stand_ins, capsys, case):  # noqa: F811
    download_refused(case.setup(tmp_path, mirror), tmp_path, capsys, case.names)


# ---- 11. make -----------------------------------------------------------------------------------------

def make(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "NLTK_DATA")}
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=root)


MAKE_CASES = [
    Case("data-root-with-a-space", lambda r: ["download", f"DATA_ROOT={r}/a b", f"VENV={r}/venv"], "DATA_ROOT"),
    Case("checkpoint-missing-before-downloads", lambda r: [
        "reproduce-f30k-sgr", f"CHECKPOINT={r}/missing.pth.tar", f"VENV={r}/venv", f"DATA_ROOT={r}/data"],
        "missing.pth.tar"),
]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
@pytest.mark.parametrize("case", MAKE_CASES, ids=ids(MAKE_CASES))
def test_make_refuses_before_creating_anything(tmp_path, case):
    done = make(tmp_path, *case.setup(tmp_path))
    assert done.returncode == 2
    one_line(done.stderr, case.names)
    assert list(tmp_path.iterdir()) == []  # no venv, no stray folder, no download


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_download_f30k_skips_present_data(work, tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # newer than pyproject.toml: nothing to install
    punkt = work / "data/nltk_data/tokenizers/punkt_tab/english/collocations.tab"
    punkt.parent.mkdir(parents=True)
    punkt.touch()
    done = make(tmp_path, "download-f30k", f"VENV={venv}", "PY=false", f"DATA_ROOT={work}/data")
    assert done.returncode == 0, done.stderr
    assert "download-f30k: present under" in done.stdout and "bench download" not in done.stdout
    punkt.unlink()  # then the download runs (and PY=false fails it)
    assert make(tmp_path, "download-f30k", f"VENV={venv}", "PY=false", f"DATA_ROOT={work}/data").returncode != 0


# ---- 4, 6, 7, 8. training: settings, a tampered resume state, data that fails mid-run ---------------

TINY_RUN = ["--learning-rate", "0.002", "--batch-size", "16", "--embed-size", "16", "--word-dim", "8", "--sim-dim",
            "8", "--num-epochs", "1", "--workers", "0", "--device", "cpu"]


def train_args(root: Path, *extra: str) -> list[str]:
    return ["train", "--data-name", DATA_NAME, "--module-name", "SAF", "--data-root", str(root / "data"),
            "--out-dir", str(root / "run"), *TINY_RUN, *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Tiny demo data and a run stopped after 2 steps (checkpoint_0_step2.pth.tar)."""
    root = tmp_path_factory.mktemp("trained")
    write_demo_data(root / "data", DemoPlan(train_images=24, dev_images=6, test_images=10, regions=4))
    assert main(train_args(root, "--max-steps", "2")) == 0
    return root


def tamper(change):
    """Rewrite the run's resume state, then resume it."""
    def setup(root: Path) -> list[str]:
        import torch

        path = root / "run" / "checkpoint_0_step2.pth.tar"
        raw = torch.load(path, weights_only=False)
        change(raw)
        torch.save(raw, path)
        return train_args(root, "--resume", "--max-steps", "4")
    return setup


def position(**values):
    return lambda raw: raw["position"].update(values)


def nan_features(root: Path) -> list[str]:
    path = root / "data" / DATA_NAME / "train_ims.npy"
    features = np.load(path)
    features[3, 1, 2] = np.nan
    np.save(path, features)
    return train_args(root, "--out-dir", str(root / "fresh"))


STATE = "checkpoint_0_step2.pth.tar"
TRAIN_CASES = [
    Case("batch-position-negative", tamper(position(batch=-4)), STATE),
    Case("batch-position-huge", tamper(position(batch=10**9)), STATE),
    Case("batch-position-missing", tamper(lambda raw: raw["position"].pop("batch")), STATE),
    Case("epoch-a-string", tamper(position(epoch="0")), STATE),
    Case("rng-state-float",
         tamper(lambda raw: raw["rng_states"][0].update(torch=raw["rng_states"][0]["torch"].float())), STATE),
    Case("rng-state-short", tamper(lambda raw: raw["rng_states"][0].update(torch=raw["rng_states"][0]["torch"][:9])),
         STATE),
    Case("optimizer-without-groups", tamper(lambda raw: raw["optimizer"].update(param_groups=[])), STATE),
    Case("optimizer-other-model", tamper(lambda raw: raw["optimizer"]["param_groups"][0].update(params=[0])), STATE),
    Case("settings-a-list", tamper(lambda raw: raw.update(train_settings=[1, 2])), STATE),
    Case("num-layers-beyond-eval", lambda r: train_args(r, "--num-layers", "100", "--out-dir", str(r / "new")),
         "--num-layers"),
    Case("seed-2-to-70", lambda r: train_args(r, "--seed", str(2**70), "--out-dir", str(r / "new")), "--seed"),
    Case("workers-1000", lambda r: train_args(r, "--workers", "1000", "--out-dir", str(r / "new")), "--workers"),
    Case("resume-with-init-from", lambda r: train_args(r, "--resume", "--init-from", str(r / "run" / STATE)),
         "--init-from"),
    Case("nan-features-leave-no-steps-csv", nan_features, "train_ims.npy"),
]


@pytest.mark.parametrize("case", TRAIN_CASES, ids=ids(TRAIN_CASES))
def test_bad_training_input_is_one_line_and_changes_nothing(trained, tmp_path, capsys, case):
    root = tmp_path / "w"
    shutil.copytree(trained, root, symlinks=True)
    args = case.setup(root)
    assert_refused(main, args, root, capsys, case.names)


# ---- 4, 6, 9. eval inputs: data oddities and files that used to end in a traceback -------------------

SGR = "models/f30k_sgr.pth.tar"
SPLIT = "data/f30k_precomp"


def rewrite_checkpoint(change):
    def setup(root: Path) -> list[str]:
        import torch

        raw = torch.load(root / SGR, weights_only=False)
        change(raw)
        torch.save(raw, root / SGR)
        return eval_args(root)
    return setup


def weight(transform):
    def change(raw):
        raw["model"][0]["module.fc.weight"] = transform(raw["model"][0]["module.fc.weight"])
    return change


def edit_file(name: str, change):
    def setup(root: Path) -> list[str]:
        path = root / name
        path.write_bytes(change(path.read_bytes()))
        return eval_args(root)
    return setup


def symlink_loop(root: Path) -> list[str]:
    (root / "models/a.pth.tar").symlink_to(root / "models/b.pth.tar")
    (root / "models/b.pth.tar").symlink_to(root / "models/a.pth.tar")
    return replace_arg(eval_args(root), "--checkpoint", root / "models/a.pth.tar")


def features_saved_as_npz(root: Path) -> list[str]:
    path = root / SPLIT / "test_ims.npy"
    features = np.load(path)
    with open(path, "wb") as handle:
        np.savez(handle, features=features)
    return eval_args(root)


def later_rows_not_repeats(root: Path) -> list[str]:
    path = root / SPLIT / "test_ims.npy"
    features = np.array(np.load(path))
    features[-3] += 1.0  # the last image's third row; the first image's rows still repeat
    np.save(path, features)
    return eval_args(root)


EVAL_CASES = [
    Case("epoch-nan", rewrite_checkpoint(lambda raw: raw.update(epoch=float("nan"))), SGR),
    Case("epoch-inf", rewrite_checkpoint(lambda raw: raw.update(epoch=float("inf"))), SGR),
    Case("sparse-weight", rewrite_checkpoint(weight(lambda w: w.to_sparse())), SGR),
    Case("meta-weight", rewrite_checkpoint(weight(lambda w: w.to("meta"))), SGR),
    Case("checkpoint-symlink-loop", symlink_loop, "a.pth.tar"),
    Case("npz-saved-as-npy", features_saved_as_npz, "test_ims.npy"),
    Case("vocab-5000-digit-integer", edit_file("data/vocab/f30k_precomp_vocab.json",
                                               lambda b: b.replace(b": 4,", b": " + b"9" * 5000 + b",", 1)),
         "f30k_precomp_vocab.json"),
    Case("nul-byte-in-a-caption", edit_file(f"{SPLIT}/test_caps.txt", lambda b: b.replace(b" ", b"\0", 1)),
         "test_caps.txt"),
    Case("later-feature-rows-not-repeats", later_rows_not_repeats, "test_ims.npy"),
    Case("caption-ids-without-eccv", lambda r: eval_args(r, "--caption-ids", str(r / "missing.npy")), "--caption-ids"),
    Case("run-id-with-a-slash", lambda r: eval_args(r, "--run-id", "a/b"), "--run-id"),
    Case("run-id-with-markup", lambda r: eval_args(r, "--run-id", "[bold]x[/]"), "--run-id"),
    Case("newline-in-an-output-name", lambda r: replace_arg(eval_args(r), "--json", run_file(r, "a\nb.json")), "a\\nb"),
    Case("newline-in-opt-data-name", rewrite_checkpoint(lambda raw: setattr(raw["opt"], "data_name", "f30k\nx")),
         "f30k\\nx"),
]


@pytest.mark.parametrize("case", EVAL_CASES, ids=ids(EVAL_CASES))
def test_a_bad_eval_input_is_one_line_and_changes_nothing(work, capsys, case):
    assert_refused(main, case.setup(work), work, capsys, case.names)


def test_a_byte_order_mark_changes_nothing_in_the_result(root, capsys):
    """Captions and vocabulary saved by a Windows editor (UTF-8 with BOM) give the same figures."""
    import json

    for name in (f"{SPLIT}/test_caps.txt", "data/vocab/f30k_precomp_vocab.json"):
        (root / name).write_bytes(b"\xef\xbb\xbf" + (root / name).read_bytes())
    assert main(run_args(root, "bom")) == 0
    plain, bom = (json.loads(run_file(root, name).read_text()) for name in ("run.json", "bom.json"))
    assert bom["metrics"] == plain["metrics"]
    assert bom["provenance"]["data"]["captions_sha256"] == plain["provenance"]["data"]["captions_sha256"]


def test_a_full_disk_names_the_file(root, capsys, monkeypatch):
    import bench.results.run_result

    def full(rows):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(bench.results.run_result, "csv_text", full)
    assert_refused(main, eval_args(root), root, capsys, str(run_file(root, "run.csv")) + ": No space left on device")


@pytest.mark.parametrize("ids_text, names", [("-" + "9" * 20, "ids must be integers"), ("-5", "negative")])
def test_coco_ids_out_of_range_are_one_line_naming_the_file(ids_text, names):
    from bench.common.errors import BenchError
    from bench.data.coco_ids import image_ids_from_rows

    with pytest.raises(BenchError, match=f"testall_ids.txt: .*{names}"):
        image_ids_from_rows([ids_text] * 5, "testall_ids.txt")


def test_mismatched_eccv_ids_name_the_file():
    from bench.common.errors import BenchError
    from bench.data.coco_ids import build_id_map

    with pytest.raises(BenchError, match="coco_test_ids.npy: 10 caption ids for 1 images"):
        build_id_map(np.arange(1), np.arange(10), source="coco_test_ids.npy")


# ---- 5, 6, 7. result files read back: compare, table, report, plot -------------------------------------

def edit_run(change):
    def setup(root: Path) -> list[str]:
        import json

        path = run_file(root, "run.json")
        document = json.loads(path.read_text())
        change(document)
        path.write_text(json.dumps(document))
        return ["compare", str(second_run(root)), str(path), "--csv", str(run_file(root, "gains.csv"))]
    return setup


def in_report(case_setup):
    def setup(root: Path) -> list[str]:
        case_setup(root)
        run_file(root, "b.json").unlink()
        return ["report", "--results", str(root / RESULTS)]
    return setup


def queries_file(value):
    return lambda document: document["queries"].update(file=value)


def non_numeric_cell(root: Path) -> list[str]:
    path = run_file(root, "run.csv")
    header, first, *rest = path.read_text().splitlines()
    cells = first.split(",")
    cells[header.split(",").index("value")] = "abc"
    path.write_text("\n".join([header, ",".join(cells), *rest]) + "\n")
    return ["plot", str(path), "--out", str(run_file(root, "chart.png"))]


RESULT_CASES = [
    Case("queries-file-outside", edit_run(queries_file("../../etc/passwd")), "queries.file"),
    Case("queries-file-dot", edit_run(queries_file(".")), "queries.file"),
    Case("queries-file-a-number", edit_run(queries_file(5)), "queries.file"),
    Case("figures-a-string", edit_run(lambda d: d.update(figures="x")), "figures"),
    Case("metrics-a-list", edit_run(lambda d: d.update(metrics=[1])), "metrics"),
    Case("metric-a-string", edit_run(lambda d: d["metrics"]["i2t"].update(r1="high")), "metrics"),
    Case("coco-1k-without-folds", edit_run(lambda d: d.update(protocol="coco-1k")), "folds"),
    Case("report-figures-of-numbers", in_report(edit_run(lambda d: d.update(figures=[1, 2]))), "figures"),
    Case("report-metrics-a-list", in_report(edit_run(lambda d: d.update(metrics=[1]))), "metrics"),
    Case("plot-non-numeric-cell", non_numeric_cell, "run.csv"),
    Case("compare-a-run-with-itself", lambda r: ["compare", str(run_file(r, "run.json")), str(run_file(r, "run.json")),
                                                 "--csv", str(run_file(r, "gains.csv"))], "same run"),
]


@pytest.mark.parametrize("case", RESULT_CASES, ids=ids(RESULT_CASES))
def test_a_bad_result_file_is_one_line_and_changes_nothing(root, capsys, case):
    assert_refused(main, case.setup(root), root, capsys, case.names)


def test_compare_with_a_fifo_does_not_hang(root):
    pipe = fifo(root, "pipe.json")
    before = tree_state(root)
    done = run_bench(["compare", run_file(root, "run.json"), pipe], timeout=60)
    assert done.returncode == 2 and "not a regular file" in one_line(done.stderr, "pipe.json")
    assert tree_state(root) == before and stat.S_ISFIFO(os.stat(pipe).st_mode)


def wait_for_handler(pid: int, signum: int, timeout: float = 60) -> None:
    """Until process `pid` catches `signum` (its SigCgt mask in /proc), so the signal is not lost to
    Python's start-up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
        if caught >> (signum - 1) & 1:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never installed a handler for signal {signum}")


def test_sigterm_is_one_line_and_leaves_no_file(root):
    """What SLURM sends on time-out: the run stops like Ctrl-C, says so, and writes nothing."""
    before = tree_state(root)
    args = replace_arg(eval_args(root), "--json", run_file(root, "late.json"))
    process = subprocess.Popen([sys.executable, "-m", "bench", *args], stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=str(REPO)))
    wait_for_handler(process.pid, signal.SIGTERM)  # then the command runs (imports torch, scores)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143
    assert one_line(err, "terminated (SIGTERM)").endswith("no result file was written")
    assert tree_state(root) == before


def hostile_caption(root: Path) -> str:
    """The first caption made of a screen clear, a window title and rich markup."""
    path = root / SPLIT / "test_caps.txt"
    lines = path.read_text().splitlines()
    lines[0] = "\x1b[2J\x1b]0;owned\x07 [bold]x[/bold] [/] dog"
    path.write_text("\n".join(lines) + "\n")
    return lines[0]


def test_captions_cannot_drive_the_terminal_or_the_csv(work):
    root = work
    hostile_caption(root)
    assert main(run_args(root, "a")) == 0
    assert main(run_args(root, "b", checkpoints=("f30k_saf",))) == 0
    done = run_bench(["compare", run_file(root, "a.json"), run_file(root, "b.json"), "--queries", "--top", "50",
                      "--csv", run_file(root, "gains.csv")], timeout=120)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout and "[bold]x[/bold]" in done.stdout
    changes = run_file(root, "gains.queries.csv").read_text()
    assert "[2J" in changes and "\x1b" not in changes and "\x07" not in changes


def test_loader_workers_die_with_their_parent(trained, tmp_path):
    """kill -9 of a training process leaves none of its data-loader workers running."""
    args = train_args(tmp_path, "--data-root", str(trained / "data"), "--workers", "2", "--num-epochs", "50")
    process = subprocess.Popen([sys.executable, "-m", "bench", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        deadline = time.monotonic() + 120
        while len(workers := descendants(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) >= 2, "the run never started its loader workers"
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 30  # torch's workers watch their parent every few seconds
    while (alive := workers & {pid for pids in live_children().values() for pid in pids}) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive
