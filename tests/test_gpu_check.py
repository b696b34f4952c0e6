"""`make gpu-check` on a CPU: arguments, the no-GPU line, the result files, and its parts' wiring."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.cli.main import main as bench_main
from bench.perf import gpu_check, gpu_parts, gpu_speed

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv,message", [
    (["--device", "cpu"], "needs --quick"),
    (["--device", "tpu"], "expected cuda"),
    (["--parts", "nothing"], "invalid choice"),
    (["--speed-seconds", "0"], "must be positive"),
])
def test_bad_arguments_are_refused(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        gpu_check.parse_args(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_without_a_gpu_it_stops_at_once_with_one_line():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "bench.perf.gpu_check", "--out", "unused"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("gpu-check: no CUDA GPU visible") and "torch" in lines[0]
    assert not (REPO / "unused").exists()


def test_a_gpu_index_beyond_the_machine_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert "only 1 GPU(s)" in gpu_check.missing_gpu("cuda:3")
    assert gpu_check.missing_gpu("cuda:0") is None and gpu_check.missing_gpu("cpu") is None


def _fake_parts(monkeypatch, failing: str):
    def part(name):
        def run(ctx):
            if name == failing:
                raise RuntimeError("boom\nlast line")
            return [{"check": f"{name} check", "status": "info" if name == "speed" else "pass", "value": 1.5}]
        return run

    monkeypatch.setattr(gpu_parts, "correctness_parts",
                        lambda: {name: part(name) for name in gpu_check.CORRECTNESS_PARTS})
    monkeypatch.setattr(gpu_speed, "speed_part", part("speed"))


@pytest.mark.parametrize("failing,status", [("eval-cli", 1), ("speed", 0), (None, 0)])
def test_a_failing_part_does_not_stop_the_others(tmp_path, monkeypatch, failing, status):
    _fake_parts(monkeypatch, failing)
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(tmp_path)]) == status
    [json_path] = tmp_path.glob("gpu-*.json")
    result = json.loads(json_path.read_text())
    assert list(result["parts"]) == list(gpu_check.PARTS)
    assert result["passed"] is (status == 0) and result["device_name"] and result["torch"] == torch.__version__
    for name, summary in result["parts"].items():
        assert summary["status"] == ("fail" if name == failing else "info" if name == "speed" else "pass")
    with open(result["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["part"] for row in rows] == list(gpu_check.PARTS)
    assert all(row["device_name"] == result["device_name"] for row in rows)
    if failing:
        failed = next(row for row in rows if row["part"] == failing)
        assert failed["detail"] == "RuntimeError: last line" and failed["value"] == ""


def test_part_status_rules():
    assert gpu_check.part_status([{"status": "pass"}, {"status": "n/a"}]) == "pass"
    assert gpu_check.part_status([{"status": "n/a"}]) == "n/a"
    assert gpu_check.part_status([{"status": "pass"}, {"status": "fail"}]) == "fail"
    assert gpu_check.part_status([{"status": "info"}]) == "info"


def test_speed_runs_fit_their_time():
    assert gpu_speed.captions_that_fit(rate=1e6, n_images=5000, n_captions=25000, seconds=10) == 1600
    assert gpu_speed.captions_that_fit(rate=1e9, n_images=5000, n_captions=25000, seconds=10) == 25000
    assert gpu_speed.captions_that_fit(rate=1.0, n_images=5000, n_captions=25000, seconds=10) == 32


@pytest.mark.parametrize("losses,ok", [([5.0] * 10 + [4.0] * 10, True), ([4.0] * 10 + [5.0] * 10, False),
                                       ([5.0] * 19 + [float("nan")], False), ([5.0, 4.0], False)])
def test_training_must_be_finite_and_falling(losses, ok):
    assert gpu_parts.loss_trend(losses)[0] is ok


def _in_process(args: list[str], ctx) -> None:
    """run_command without a child process: the command line after `-m bench`, in this process."""
    assert args[0] == sys.executable
    assert bench_main(args[args.index("bench") + 1:]) == 0


def test_every_part_is_wired_on_a_cpu(tmp_path, monkeypatch):
    """The quick self-test at tiny sizes (child processes replaced by in-process calls for speed)."""
    monkeypatch.setattr(gpu_parts, "run_command", _in_process)
    monkeypatch.setattr(gpu_parts, "SCORE_TOLERANCE", {"fp32": 1e-4, "tf32": 3e-2})  # bf16 is slow on this CPU
    monkeypatch.setattr(gpu_speed, "PRECISIONS", ("fp32", "tf32"))
    monkeypatch.setattr(gpu_speed, "SPEED_MODELS", ("SAF",))
    monkeypatch.setenv("BENCH_QUIET", "1")
    parts = [part for part in gpu_check.PARTS if part != "golden-train"]  # its own test below
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(tmp_path), "--speed-seconds", "1",
                           "--parts", *parts]) == 0
    result = json.loads(next(tmp_path.glob("gpu-*.json")).read_text())
    rows = {(row["part"], row["check"]): row for row in result["rows"]}
    assert rows[("golden-scores", "coco SGR fp32")]["max_abs_diff"] < 1e-5
    assert {check for part, check in rows if part == "eval-cli"} == {"eval plain", "eval torchrun x1 (gloo)"}
    assert all(row["status"] == "pass" for (part, _), row in rows.items() if part in ("eval-cli", "train-ddp"))
    assert rows[("train-ddp", "train SAF DDP")]["steps"] == gpu_parts.TRAIN_STEPS
    speed = rows[("speed", f"SAF {gpu_speed.QUICK[0]}x{gpu_speed.QUICK[1]} tf32")]
    assert speed["pairs_per_s"] > 0 and 0 < speed["measured_fraction"] <= 1 and speed["vs_fp32_max_abs_diff"] < 1e-5


def test_nothing_on_the_check_path_imports_gdown():
    """GPU nodes lack gdown: the CLI, eval, train and the check's modules must import without it."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'gdown':\n"
            "            raise ImportError('gdown is blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from bench.cli.main import build_parser\n"
            "build_parser()\n"
            "import bench.perf.gpu_check, bench.perf.gpu_parts, bench.perf.gpu_speed\n"
            "import bench.eval.score_split, bench.results.rows, bench.results.provenance, bench.training.loop\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


JUNIT = """<testsuites><testsuite name="pytest">
<testcase classname="tests.test_train_golden" name="test_a[SGR]" time="2.5"/>
<testcase classname="tests.test_train_golden" name="test_a[SAF]" time="1.0"><failure message="assert 3e-05 &lt;= 1e-05">x</failure></testcase>
<testcase classname="tests.test_train_golden" name="test_b[SGR]" time="0"><skipped message="no GPU"/></testcase>
</testsuite></testsuites>"""


def test_golden_training_runs_the_test_on_the_device_and_reads_its_report(tmp_path, monkeypatch):
    calls = []

    def fake_pytest(args, env):
        calls.append((args, env))
        report = next(a for a in args if a.startswith("--junitxml=")).split("=", 1)[1]
        Path(report).write_text(JUNIT)

    monkeypatch.setattr(gpu_parts, "run_child", fake_pytest)
    ctx = gpu_parts.CheckContext(torch.device("cpu"), quick=False, workdir=tmp_path, started=0.0,
                                 budget_seconds=1.0, speed_seconds=1.0)
    rows = gpu_parts.golden_train(ctx)
    [(args, env)] = calls
    assert args[1:3] == ["-m", "pytest"] and args[3].endswith("tests/test_train_golden.py")
    assert env["BENCH_TEST_DEVICE"] == "cpu"
    assert [(r["check"], r["status"]) for r in rows] == [("test_a[SGR]", "pass"), ("test_a[SAF]", "fail"),
                                                         ("test_b[SGR]", "n/a")]
    assert rows[1]["detail"] == "assert 3e-05 <= 1e-05"
    monkeypatch.setattr(gpu_parts, "run_child", lambda *a, **k: None)  # pytest missing: no report
    with pytest.raises(RuntimeError, match="is pytest installed"):
        gpu_parts.golden_train(gpu_parts.CheckContext(torch.device("cpu"), False, tmp_path / "x", 0.0, 1.0, 1.0))


def test_a_hung_child_is_killed_with_its_own_children(tmp_path, monkeypatch):
    """torchrun's workers live in the launcher's process group: a timeout must end them all."""
    monkeypatch.setattr(gpu_parts, "COMMAND_TIMEOUT", 2)
    pid_file = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time\n"
            "worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],\n"
            "                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            f"open({str(pid_file)!r}, 'w').write(str(worker.pid))\n"
            "time.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        gpu_parts.run_child([sys.executable, "-c", code], dict(os.environ))
    worker = int(pid_file.read_text())
    for _ in range(50):
        if not _alive(worker):
            break
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"  # a zombie has ended
