"""Bad input and faults, round 4: the replace rule, counts bounded by the machine, readers and FIFOs,
silent wrong results, messages, signals from the first instant, durability, many processes.

Each refusal asserts what tests/bad_input_harness.py checks: exit status, exactly one stderr line
naming the file or flag, no traceback, every file of the tree byte-identical, no process left.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_input_harness import (
    REPO,
    Case,
    assert_refused,
    base,  # noqa: F401  (a fixture)
    eval_args,
    ids,
    one_line,
    replace_arg,
    run_args,
    run_bench,
    tree_state,
)
from test_bad_inputs_round3 import fifo, finished, root, run_file, second_run  # noqa: F401  (fixtures)

from bench.cli.main import main
from bench.common import atomic
from bench.common.errors import BenchError
from bench.common.replace_rule import CHECKPOINT, RESULT_JSON
from bench.common.threads import usable_cpus

CHECKPOINT_FILE = "models/f30k_sgr.pth.tar"


def order_args(root: Path, out) -> list[str]:
    return ["order", "--protocol", "f30k-1k", "--data-root", str(root / "data"), "--out", str(out)]


def copied(root: Path, name: str, new_name: str) -> Path:
    """A copy of `name` beside it: a file of that kind that is not an input of the command."""
    return Path(shutil.copy(root / name, (root / name).with_name(new_name)))


def linked(root: Path, name: str, target: Path) -> Path:
    link = run_file(root, name)
    link.symlink_to(target)
    return link


# ---- 1. an output replaces only a file of its own kind -----------------------------------------------
REPLACE_CASES = [
    Case("order-over-a-run-json", lambda r: order_args(r, run_file(r, "run.json")), "the result JSON of a run"),
    Case("order-over-a-per-query-file", lambda r: order_args(r, run_file(r, "run.queries.npz")), "run.queries.npz"),
    Case("order-over-a-checkpoint", lambda r: order_args(r, r / CHECKPOINT_FILE), "is a checkpoint"),
    Case("order-over-a-score-matrix", lambda r: order_args(r, run_file(r, "sims.npy")), "a NumPy array"),
    Case("order-over-captions", lambda r: order_args(r, copied(r, "data/f30k_precomp/test_caps.txt", "dev_caps.txt")),
         "a caption file"),
    Case("plot-over-a-checkpoint", lambda r: ["plot", str(run_file(r, "run.csv")), "--out", str(r / CHECKPOINT_FILE)],
         "is a checkpoint"),
    Case("markdown-over-a-score-matrix", lambda r: ["table", "--table", "3", "--results", str(r / "results"),
                                                    "--markdown", str(run_file(r, "sims.npy"))], "--markdown"),
    Case("compare-csv-over-a-score-matrix", lambda r: ["compare", str(run_file(r, "run.json")), str(second_run(r)),
                                                       "--csv", str(run_file(r, "sims.npy"))], "--csv"),
    Case("save-sims-over-another-runs-matrix", lambda r: replace_arg(run_args(r, "new"), "--save-sims",
                                                                    run_file(r, "sims.npy")), "--save-sims"),
    Case("summary-csv-a-link-to-a-run-json", lambda r: (linked(r, "summary.csv", run_file(r, "run.json")),
                                                        ["report", "--results", str(r / "results")])[1],
         "a link to"),
    Case("summary-md-a-link-to-captions", lambda r: (linked(r, "summary.md", r / "data/f30k_precomp/test_caps.txt"),
                                                     ["report", "--results", str(r / "results")])[1],
         "a caption file"),
]


@pytest.mark.parametrize("case", REPLACE_CASES, ids=ids(REPLACE_CASES))
def test_an_output_replaces_only_a_file_of_its_kind(root, capsys, case):
    line = assert_refused(main, case.setup(root), root, capsys, case.names)
    assert "--overwrite" in line


def test_the_same_run_evaluated_again_replaces_its_own_files(root):
    assert main(eval_args(root)) == 0  # run.json, run.csv, run.queries.npz and the sims.npy run.json names


def test_overwrite_replaces_on_purpose_and_a_link_is_written_through(root):
    target = root / "data" / "elsewhere.csv"
    target.write_text("not a CSV of ours\n")
    link = linked(root, "order.csv", target)
    assert main(order_args(root, link)) == 2  # the rule applies to the link's target
    assert main(order_args(root, link) + ["--overwrite"]) == 0
    assert link.is_symlink() and target.read_text().startswith("kind,")  # the link stays, its target took the bytes
    assert main(order_args(root, run_file(root, "sims.npy")) + ["--overwrite"]) == 0


def test_the_rule_holds_for_python_writers(tmp_path):
    from bench.common.atomic import write_json, write_text
    from bench.common.replace_rule import replacing_anything

    ckpt = tmp_path / "x.pth.tar"
    torch.save({"a": 1}, ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(BenchError, match="x.pth.tar: is a checkpoint, not the result JSON of a run"):
        write_json(ckpt, {"protocol": "f30k-1k"}, RESULT_JSON)
    with pytest.raises(BenchError, match="is a checkpoint"):
        write_text(ckpt, "a,b\n1,2\n")
    assert ckpt.read_bytes() == before and os.listdir(tmp_path) == ["x.pth.tar"]
    with replacing_anything():
        write_text(ckpt, "a,b\n")
    assert ckpt.read_text() == "a,b\n"
    write_text(tmp_path / "y.csv", "a,b\n1,2\n")
    write_text(tmp_path / "y.csv", "a,b\n3,4\n")  # the same columns: replaced
    with pytest.raises(BenchError, match="y.csv: is a CSV with other columns"):
        write_text(tmp_path / "y.csv", "c,d\n")
    torch.save({"a": 2}, ckpt)
    from bench.common.atomic import atomic_path

    with atomic_path(ckpt, CHECKPOINT) as tmp:  # a checkpoint writer replaces a checkpoint
        torch.save({"a": 3}, tmp)


# ---- 2. counts bounded by the machine -----------------------------------------------------------------
COUNT_CASES = [
    Case("threads-a-million", lambda r: eval_args(r, "--threads", "1000000", outputs=False),
         f"at most {usable_cpus()}"),
    Case("threads-beyond-int64", lambda r: eval_args(r, "--threads", "9" * 20, outputs=False), "--threads"),
    Case("threads-not-a-number", lambda r: eval_args(r, "--threads", "x", outputs=False), "--threads"),
    Case("image-shard-beyond-the-images", lambda r: eval_args(r, "--image-shard", "9" * 20, outputs=False),
         "--image-shard"),
    Case("image-shard-nan", lambda r: eval_args(r, "--image-shard", "nan", outputs=False), "--image-shard"),
    Case("compare-top-a-float", lambda r: ["compare", str(run_file(r, "run.json")), str(second_run(r)),
                                           "--top", "1e9"], "--top"),
]


@pytest.mark.parametrize("case", COUNT_CASES, ids=ids(COUNT_CASES))
def test_counts_are_bounded_in_one_line(root, capsys, case):
    args = case.setup(root)
    before = tree_state(root)
    capsys.readouterr()
    try:
        status = main(args)
    except SystemExit as exit_:  # argparse refuses a value it cannot parse
        status = exit_.code
    assert status == 2
    one_line(capsys.readouterr().err, case.names)
    assert tree_state(root) == before


def test_train_threads_and_steps_are_bounded():
    from bench.training.settings import TrainSettings, check_settings

    def settings(**changes):
        return TrainSettings(data_name="f30k_precomp", module_name="SGR", num_epochs=1, learning_rate=0.0002,
                             lr_update=1, daa_weight=5.0, **changes)

    with pytest.raises(BenchError, match=rf"--threads {10**6}: must be in \[1, {usable_cpus()}\]"):
        check_settings(settings(threads=10**6))
    with pytest.raises(BenchError, match="--max-steps"):
        check_settings(settings(max_steps=10**30))


# ---- 3. tracebacks that became one line ---------------------------------------------------------------
def test_output_names_that_are_no_file(root, capsys):
    for name in (".", "", str(run_file(root, "x.json")) + "/"):
        with pytest.raises(SystemExit) as exit_:
            main(replace_arg(eval_args(root), "--json", name))
        assert exit_.value.code == 2
        one_line(capsys.readouterr().err, "give a file name")
    assert not run_file(root, "x.json").exists()
    from bench.results.run_result import load_result

    with pytest.raises(BenchError, match="names a folder"):
        load_result(run_file(root, "run.json")).write(json_path=str(run_file(root, "y.json")) + "/")


@pytest.mark.parametrize("make", [lambda d: (d / "file").write_text("x") and d / "file", lambda d: Path(os.devnull),
                                  lambda d: os.mkfifo(d / "fifo") or d / "fifo"], ids=["file", "devnull", "fifo"])
def test_gpu_check_out_that_is_no_folder(tmp_path, capsys, make):
    from bench.perf import gpu_check

    out = make(tmp_path)
    before = tree_state(tmp_path)
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(out)]) == 2
    one_line(capsys.readouterr().err, "is not a folder")
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("cell", ["nan", "inf", "1e400", ""])
def test_plot_refuses_values_it_cannot_draw(root, capsys, cell):
    import csv

    path = run_file(root, "run.csv")
    rows = list(csv.DictReader(path.open()))
    for row in rows:
        row["value"] = cell
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert_refused(main, ["plot", str(path), "--out", str(run_file(root, "new.png"))], root, capsys, "run.csv")


def test_a_garbage_training_log_is_refused(tmp_path):
    from bench.training.logs import read_step_log

    (tmp_path / "steps.csv").write_bytes(b"step,epoch,loss\nx,\xff,1\n")
    with pytest.raises(BenchError, match="steps.csv: not a training log of this version"):
        read_step_log(tmp_path)


def test_a_damaged_optimizer_state_is_refused():
    from bench.training.state import optimizer_state_problem

    weight = torch.nn.Parameter(torch.ones(3, 2))
    optimizer = torch.optim.Adam([weight], lr=1e-3)
    weight.grad = torch.ones(3, 2)
    optimizer.step()
    assert optimizer_state_problem(optimizer) is None
    optimizer.state[weight]["exp_avg"] = torch.zeros(2, 3)
    assert "exp_avg has shape (2, 3)" in optimizer_state_problem(optimizer)
    optimizer.state[weight]["exp_avg"] = torch.full((3, 2), float("nan"))
    assert "NaN" in optimizer_state_problem(optimizer)
    optimizer.state[weight]["exp_avg"] = torch.zeros(3, 2)
    optimizer.param_groups[0]["lr"] = float("nan")
    assert "learning rate nan" in optimizer_state_problem(optimizer)


# ---- 4 and 5. readers: FIFOs, directories, unreadable files; silent wrong results -------------------
def test_every_reader_refuses_a_fifo_without_hanging(tmp_path):
    from bench.common.inputs import require_file
    from bench.data.coco_ids import load_caption_ids
    from bench.eval.pmrp import INSTANCES_FILE, load_instance_vectors
    from bench.model.checkpoint import read_checkpoint
    from bench.results.plots import read_figures

    for reader, name in ((read_figures, "run.csv"), (read_checkpoint, "x.pth.tar"), (load_caption_ids, "ids.npy")):
        os.mkfifo(tmp_path / name)
        with pytest.raises(BenchError, match=f"{name}: .* is a FIFO, not a regular file"):
            reader(tmp_path / name)
    (tmp_path / INSTANCES_FILE).mkdir()  # an annotations path that exists but is a folder: an error, not "no PMRP"
    with pytest.raises(BenchError, match="is a directory"):
        load_instance_vectors(tmp_path)
    os.chmod(tmp_path / "run.csv", 0)  # a FIFO with no permission is still refused for what it is
    with pytest.raises(BenchError, match="a FIFO"):
        require_file(tmp_path / "run.csv", "results CSV")


def test_plot_on_a_fifo_returns(root):
    pipe = fifo(root, "pipe.csv")
    done = run_bench(["plot", pipe, "--out", run_file(root, "p.png")], timeout=60)
    assert done.returncode == 2 and "is a FIFO" in one_line(done.stderr, "pipe.csv")


@pytest.mark.parametrize("ids_array", [np.arange(50).reshape(10, 5), np.arange(50) + 0.5], ids=["2-d", "fractional"])
def test_order_refuses_caption_ids_it_would_misread(root, capsys, tmp_path, ids_array):
    path = tmp_path / "ids.npy"
    np.save(path, ids_array)
    assert_refused(main, order_args(root, tmp_path / "o.csv") + ["--caption-ids", str(path)], root, capsys, "ids.npy")


# ---- 6. messages ---------------------------------------------------------------------------------------
def test_a_full_device_and_a_directory_are_named(root, capsys):
    assert_refused(main, replace_arg(run_args(root, "new"), "--json", "/dev/full"), root, capsys,
                   "/dev/full: No space left on device")
    assert not Path("/dev/full.queries.npz").exists()
    args = ["eval", "--protocol", "f30k-1k", "--data-root", str(root / "data"), "--scores", str(root / "results")]
    assert_refused(main, args, root, capsys, "score file is a directory")


def test_a_forged_header_is_quoted_at_a_readable_length(root, capsys):
    path = run_file(root, "forged.npy")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (10, 50), " + "'x': 1, " * 800 + "}"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    args = ["eval", "--protocol", "f30k-1k", "--data-root", str(root / "data"), "--scores", str(path)]
    line = assert_refused(main, args, root, capsys, "forged.npy")
    assert len(line) < 600


# ---- 7. signals from the first instant -----------------------------------------------------------------
def test_sigterm_while_importing_is_one_line():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-m", "bench", "eval", "--help"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the handler is there before bench.cli (and torch) is imported
        status = Path(f"/proc/{process.pid}/status").read_text()
        if int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16) >> 14 & 1:
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    if process.returncode == 0:  # --help finished first: nothing to assert about the signal
        pytest.skip("the command ended before the signal arrived")
    assert process.returncode == 143 and "terminated (SIGTERM)" in one_line(err, "daa-bench")


def test_a_signal_inside_a_finaliser_is_not_lost():
    """SIGTERM landing in a __del__ is delivered again outside it: one line, 143, no 'Exception ignored'."""
    script = (
        "import os, signal, sys, time\n"
        "from bench.common import signals\n"
        "signals.install()\n"
        "class Held:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(0.05)\n"
        "try:\n"
        "    Held()\n"
        "    time.sleep(5)\n"
        "    print('signal lost', file=sys.stderr)\n"
        "except KeyboardInterrupt as interrupt:\n"
        "    how, code = signals.status_of(interrupt)\n"
        "    print(how, file=sys.stderr)\n"
        "    raise SystemExit(code)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 143 and one_line(done.stderr, "terminated (SIGTERM)")


# ---- 8. durability and temporaries of other hosts -----------------------------------------------------
@pytest.fixture
def synced(monkeypatch) -> list[str]:
    """The paths os.fsync was called on, in order."""
    calls = []
    real = os.fsync

    def record(fd):
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return calls


def test_results_checkpoints_and_manifests_are_synced_before_and_after_the_rename(tmp_path, synced):
    from bench.common.atomic import move_into_place, write_json
    from bench.download.manifest import MANIFEST

    write_json(tmp_path / "run.json", {"protocol": "x", "metrics": {}}, RESULT_JSON)
    assert atomic.PARTIAL_MARK in Path(synced[0]).name and synced[1] == str(tmp_path)  # the file, then its folder
    synced.clear()
    write_json(tmp_path / "download-manifest.json", {"version": 1, "files": {}}, MANIFEST)
    assert len(synced) == 2 and synced[1] == str(tmp_path)
    synced.clear()
    (tmp_path / "fetched").write_bytes(b"x")
    move_into_place(tmp_path / "fetched", tmp_path / "placed")
    assert synced == [str(tmp_path / "fetched"), str(tmp_path)]


def test_a_saved_checkpoint_is_synced(tmp_path, synced):
    from bench.model import random_weights
    from bench.model.checkpoint import build_model, read_checkpoint, save_checkpoint

    config = random_weights.small_config("SGR", "f30k_precomp", 20)
    random_weights.write_checkpoint(tmp_path / "a.pth.tar", config)
    checkpoint = read_checkpoint(tmp_path / "a.pth.tar")
    synced.clear()
    save_checkpoint(tmp_path / "b.pth.tar", build_model(checkpoint), checkpoint.opt)
    assert atomic.PARTIAL_MARK in Path(synced[0]).name and synced[-1] == str(tmp_path)


def test_temporaries_of_another_host_or_namespace_are_swept_only_by_age(tmp_path, monkeypatch):
    from bench.common.atomic import partial_name, sweep_partials

    foreign = tmp_path / partial_name("run.json", ".json", pid=1, host="h00000000")  # pid 1 is alive here, too
    old = tmp_path / partial_name("run.csv", ".csv", pid=999_999_999, host="h00000000")
    for path in (foreign, old):
        path.write_text("x")
    aged = time.time() - atomic.STALE_SECONDS - 60
    os.utime(old, (aged, aged))
    assert sweep_partials(tmp_path / "any") == [old] and foreign.exists()
    this = atomic.host_id()
    monkeypatch.setattr(os, "readlink", lambda path: "pid:[1]")  # another pid namespace on the same host
    assert atomic.host_id() != this


# ---- 9. many processes ------------------------------------------------------------------------------
def _failing_rank_worker(rank: int, port: int, out_dir: str) -> None:
    from bench.common import distributed
    from bench.eval import scoring

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    distributed.init_distributed(distributed.world_info_from_env(), torch.device("cpu"))
    try:  # rank 0 scored its two images; rank 1's scoring raised
        if rank == 0:
            scoring.gathered_rows(np.zeros((2, 3), dtype=np.float32), 4)
        else:
            scoring.gathered_rows(None, 4, RuntimeError("a kernel failed on rank 1"))
        message = "no error"
    except BenchError as err:
        message = str(err)
    finally:
        distributed.cleanup_distributed()
    Path(out_dir, f"rank{rank}.txt").write_text(message)


def test_a_failing_rank_ends_every_rank_naming_it(tmp_path):
    import torch.multiprocessing as mp
    from test_distributed import _free_port

    started = time.monotonic()
    context = mp.start_processes(_failing_rank_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=False,
                                 start_method="spawn")
    while not context.join(timeout=5):
        assert time.monotonic() - started < 120, "a rank waited for the others instead of ending"
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text().startswith("rank 1 of 2 failed: RuntimeError: a kernel")
