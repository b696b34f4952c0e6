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
from bench.perf import gpu_check, gpu_correctness, gpu_speed

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


def _fake_isolation(monkeypatch, failing: str, seen: list):
    """Parts replaced by fixed rows (their processes are tested below); notes what is on disk as each starts."""
    def run(name, context, workdir):
        seen.append((name, sorted(p.name for p in Path(context["workdir"]).parents[1].glob("out/*"))))
        if name == failing:
            return [{"check": name, "status": "fail", "detail": "RuntimeError: last line"}]
        return [{"check": f"{name} check", "status": "info" if name == "speed" else "pass", "value": 1.5}]

    monkeypatch.setattr(gpu_check, "run_isolated", run)
    monkeypatch.setattr(gpu_check, "missing_modules", lambda: {})


@pytest.mark.parametrize("failing,status", [("eval-cli", 1), ("speed", 0), (None, 0)])
def test_a_failing_part_does_not_stop_the_others(tmp_path, monkeypatch, failing, status):
    seen = []
    _fake_isolation(monkeypatch, failing, seen)
    monkeypatch.setattr(gpu_check.tempfile, "TemporaryDirectory", lambda prefix: _Folder(tmp_path / "work"))
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(tmp_path / "out")]) == status
    [json_path] = (tmp_path / "out").glob("selftest-cpu-*.json")
    result = json.loads(json_path.read_text())
    assert list(result["parts"]) == list(gpu_check.PARTS)
    assert result["passed"] is (status == 0) and result["device_name"] and result["torch"] == torch.__version__
    for name, summary in result["parts"].items():
        assert summary["status"] == ("fail" if name == failing else "info" if name == "speed" else "pass")
    with open(result["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["part"] for row in rows] == list(gpu_check.PARTS)
    assert all(row["device_name"] == result["device_name"] for row in rows)
    # the environment's JSON is on disk before the first part, each part's rows before the next part
    assert seen[0][1] == [json_path.name] and all(len(files) == 2 for _, files in seen[1:])
    if failing:
        failed = next(row for row in rows if row["part"] == failing)
        assert failed["detail"] == "RuntimeError: last line" and failed["value"] == ""


class _Folder:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> str:
        self.path.mkdir(parents=True)
        return str(self.path)

    def __exit__(self, *exc) -> None:
        pass


def _context(tmp_path: Path, seconds: float, part_name: str = "speed") -> dict:
    return {"device": "cpu", "quick": True, "workdir": str(tmp_path / part_name), "deadline": time.time() + seconds,
            "speed_seconds": 1.0}


def test_a_part_over_its_share_is_stopped_and_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "KILL_GRACE", 0.0)
    [row] = gpu_check.run_isolated("speed", _context(tmp_path, 0.5), tmp_path)
    assert row["status"] == "fail" and "share of the --budget-seconds" in row["detail"]


def test_a_part_whose_process_dies_is_one_failing_row(tmp_path, monkeypatch):
    """A CUDA fault can take the whole process down before it writes its rows."""
    dying = tmp_path / "python"
    dying.write_text("#!/bin/sh\necho 'CUDA error: an illegal memory access was encountered' >&2\nexit 134\n")
    dying.chmod(0o755)
    monkeypatch.setattr(gpu_check.sys, "executable", str(dying))
    [row] = gpu_check.run_isolated("speed", _context(tmp_path, 60), tmp_path)
    assert row == {"check": "speed", "status": "fail",
                   "detail": "the part's process ended with 134: CUDA error: an illegal memory access was encountered"}


def test_an_error_inside_a_part_is_its_failing_row(tmp_path):
    [row] = gpu_check.run_isolated("speed", _context(tmp_path, 60) | {"device": "no-such-device"}, tmp_path)
    assert row["status"] == "fail" and row["detail"].startswith("RuntimeError: Invalid device string")


def test_shares_hold_the_whole_budget():
    end = time.time() + 100
    first = gpu_check.part_deadline("golden-scores", list(gpu_check.PARTS), end) - time.time()
    assert first == pytest.approx(100 * gpu_check.PART_SHARES["golden-scores"] / sum(gpu_check.PART_SHARES.values()),
                                  abs=0.5)
    assert gpu_check.part_deadline("speed", ["speed"], end) == pytest.approx(end, abs=0.5)  # the rest
    assert sum(gpu_check.PART_SHARES.values()) == pytest.approx(1.0)


def test_the_cpu_self_test_never_writes_a_gpu_record():
    cpu = gpu_check.parse_args(["--device", "cpu", "--quick"])
    assert cpu.out == gpu_check.SELF_TEST_OUT and "results" not in cpu.out.parts
    assert gpu_check.parse_args([]).out == Path("results/perf")
    assert gpu_check.result_paths(Path("x"), torch.device("cpu"), "t")[0].name == "selftest-cpu-t.csv"
    assert gpu_check.result_paths(Path("x"), torch.device("cuda"), "t")[0].name == "gpu-t.csv"


def test_missing_modules_say_why(tmp_path, monkeypatch):
    real = gpu_check.importlib.util.find_spec
    gone = {"nltk", "pip"}
    monkeypatch.setattr(gpu_check.importlib.util, "find_spec", lambda name: None if name in gone else real(name))
    assert gpu_check.missing_modules(tmp_path / "none") == {
        "nltk": f"nltk is not importable: no wheels in {tmp_path / 'none'}/ to install it from (docs/gpu-check.md)"}
    (tmp_path / "nltk-3.9-py3-none-any.whl").write_text("")
    assert "has no pip" in gpu_check.missing_modules(tmp_path)["nltk"]
    assert gpu_check.skip_row("golden-train", {"pytest": "why"}) == {"check": "golden-train", "status": "skip",
                                                                     "detail": "why"}
    assert gpu_check.skip_row("speed", {"nltk": "why"}) is None


def test_part_status_rules():
    assert gpu_check.part_status([{"status": "pass"}, {"status": "n/a"}]) == "pass"
    assert gpu_check.part_status([{"status": "n/a"}]) == "n/a"
    assert gpu_check.part_status([{"status": "skip"}]) == "skip"
    assert gpu_check.part_status([{"status": "pass"}, {"status": "fail"}]) == "fail"
    assert gpu_check.part_status([{"status": "info"}]) == "info"


def test_speed_runs_fit_their_time():
    assert gpu_speed.captions_that_fit(rate=1e6, n_images=5000, n_captions=25000, seconds=10) == 1600
    assert gpu_speed.captions_that_fit(rate=1e9, n_images=5000, n_captions=25000, seconds=10) == 25000
    assert gpu_speed.captions_that_fit(rate=1.0, n_images=5000, n_captions=25000, seconds=10) == 32


@pytest.mark.parametrize("losses,ok", [([5.0] * 10 + [4.0] * 10, True), ([4.0] * 10 + [5.0] * 10, False),
                                       ([5.0] * 19 + [float("nan")], False), ([5.0, 4.0], False)])
def test_training_must_be_finite_and_falling(losses, ok):
    assert gpu_correctness.loss_trend(losses)[0] is ok


def _in_process(args: list[str], ctx) -> None:
    """run_command without a child process: the command line after `-m bench`, in this process."""
    assert args[0] == sys.executable
    assert bench_main(args[args.index("bench") + 1:]) == 0


def test_every_part_is_wired_on_a_cpu(tmp_path, monkeypatch):
    """The parts at tiny sizes, in this process (child commands become in-process calls, so the
    launchers are the plain one only: nothing here is labelled torchrun that did not run under it)."""
    monkeypatch.setattr(gpu_correctness, "run_command", _in_process)
    monkeypatch.setattr(gpu_correctness, "launchers", lambda ctx: {"in-process": [sys.executable]})
    monkeypatch.setattr(gpu_correctness, "PRECISIONS", ("fp32", "tf32"))  # bf16 is slow on this CPU
    monkeypatch.setattr(gpu_speed, "PRECISIONS", ("fp32", "tf32"))
    monkeypatch.setattr(gpu_speed, "SPEED_MODELS", ("SAF",))
    monkeypatch.setenv("BENCH_QUIET", "1")
    ctx = gpu_correctness.CheckContext(torch.device("cpu"), quick=True, workdir=tmp_path, deadline=time.time() + 300,
                                 speed_seconds=1.0)
    parts = (gpu_correctness.golden_scores, gpu_correctness.eval_cli, gpu_correctness.train_ddp, gpu_speed.speed_part)
    rows = {row["check"]: row for part in parts for row in part(ctx)}
    assert rows["coco SGR fp32"]["max_abs_diff"] < 1e-5 and rows["coco SGR fp32"]["status"] == "pass"
    assert rows["eval in-process"]["status"] == "pass" and rows["eval in-process"]["top1_i2t"] == 1.0
    train = rows["train SAF in-process"]
    assert train["status"] == "pass" and train["steps"] == gpu_correctness.TRAIN_STEPS
    assert train["checkpoints"] == "checkpoint_0.pth.tar model_best.pth.tar"  # saved once, at the end
    speed = rows[f"SAF {gpu_speed.QUICK[0]}x{gpu_speed.QUICK[1]} tf32"]
    assert speed["pairs_per_s"] > 0 and 0 < speed["measured_fraction"] <= 1 and speed["vs_fp32_max_abs_diff"] < 1e-5


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('nltk', 'gdown'):
            raise ImportError(name + ' is blocked')
sys.meta_path.insert(0, Block())
"""


def test_the_self_test_without_nltk_and_gdown_skips_what_needs_them(tmp_path):
    """A GPU node's python: no NLTK, no gdown. No traceback; each part has its rows (skips too), written
    part by part: the skipped parts' rows are on disk while the speed part still runs."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(REPO)]), BENCH_QUIET="1")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench.perf.gpu_check", "--device", "cpu", "--quick", "--out", str(out),
               "--speed-seconds", "1"]
    seen_while_running = set()
    with subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as child:
        while child.poll() is None:
            for path in out.glob("*.csv"):
                seen_while_running |= {row["part"] for row in csv.DictReader(path.open(newline=""))}
            time.sleep(0.05)
        stdout, stderr = child.communicate()
    assert child.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr + stdout
    assert "gpu-check: nltk is not importable" in stderr
    [csv_path] = out.glob("selftest-cpu-*.csv")
    rows = list(csv.DictReader(csv_path.open(newline="")))
    by_part = {part: [row for row in rows if row["part"] == part] for part in gpu_check.PARTS}
    for part in gpu_check.CORRECTNESS_PARTS:
        assert [row["status"] for row in by_part[part]] == ["skip"] and "nltk" in by_part[part][0]["detail"]
    assert by_part["speed"] and all(row["status"] == "info" for row in by_part["speed"])
    assert set(gpu_check.CORRECTNESS_PARTS) <= seen_while_running


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
            "import bench.perf.gpu_check, bench.perf.gpu_child, bench.perf.gpu_correctness, bench.perf.gpu_speed\n"
            "import bench.eval.score_split, bench.results.rows, bench.results.provenance, bench.training.loop\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


JUNIT = """<testsuites><testsuite name="pytest">
<testcase classname="tests.test_train_golden" name="test_a[SGR]" time="2.5"/>
<testcase classname="tests.test_train_golden" name="test_a[SAF]" time="1.0">
<failure message="assert 3e-05 &lt;= 1e-05">x</failure></testcase>
<testcase classname="tests.test_train_golden" name="test_b[SGR]" time="0"><skipped message="no GPU"/></testcase>
</testsuite></testsuites>"""


def test_golden_training_runs_the_test_on_the_device_and_reads_its_report(tmp_path, monkeypatch):
    calls = []

    def fake_pytest(args, env, timeout):
        calls.append((args, env))
        report = next(a for a in args if a.startswith("--junitxml=")).split("=", 1)[1]
        Path(report).write_text(JUNIT)

    monkeypatch.setattr(gpu_correctness, "run_child", fake_pytest)
    ctx = gpu_correctness.CheckContext(torch.device("cpu"), quick=False, workdir=tmp_path, deadline=time.time() + 60,
                                 speed_seconds=1.0)
    rows = gpu_correctness.golden_train(ctx)
    [(args, env)] = calls
    assert args[1:3] == ["-m", "pytest"] and args[3].endswith("tests/test_train_golden.py")
    assert env["BENCH_TEST_DEVICE"] == "cpu"
    assert [(r["check"], r["status"]) for r in rows] == [("test_a[SGR]", "pass"), ("test_a[SAF]", "fail"),
                                                         ("test_b[SGR]", "n/a")]
    assert rows[1]["detail"] == "assert 3e-05 <= 1e-05"
    monkeypatch.setattr(gpu_correctness, "run_child", lambda *a, **k: None)  # pytest missing: no report
    with pytest.raises(RuntimeError, match="is pytest installed"):
        context = gpu_correctness.CheckContext(torch.device("cpu"), False, tmp_path / "x", time.time(), 1.0)
        gpu_correctness.golden_train(context)


def test_a_hung_child_is_killed_with_its_own_children(tmp_path, monkeypatch):
    """torchrun's workers live in the launcher's process group: a timeout must end them all."""
    pid_file = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time\n"
            "worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],\n"
            "                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            f"open({str(pid_file)!r}, 'w').write(str(worker.pid))\n"
            "time.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        gpu_correctness.run_child([sys.executable, "-c", code], dict(os.environ), timeout=2)
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


def test_the_docs_state_the_tolerances_the_check_uses():
    """One home for the figures (bench.eval.tolerances); the page must quote them as they are."""
    from bench.eval.tolerances import SCORE_TOLERANCE, TOP1_AGREEMENT

    page = (REPO / "docs" / "gpu-check.md").read_text()
    for precision, tolerance in SCORE_TOLERANCE.items():
        assert f"| {precision} | {tolerance:.2g} | {TOP1_AGREEMENT[precision]:g} |" in page, precision
    assert f"default {gpu_check.BUDGET_SECONDS})" in page
    for part, share in gpu_check.PART_SHARES.items():
        assert f"{part} {share:.0%}" in page
