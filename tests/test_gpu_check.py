"""`make gpu-check` on a CPU: arguments, the no-GPU line, the result files, and its parts' wiring."""

import csv
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from bench.cli.main import main as bench_main
from bench.perf import gpu_check, gpu_correctness, gpu_speed, gpu_verdict, gpu_wheels

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
    def run(name, context, workdir, progress=None):
        seen.append((name, sorted(p.name for p in Path(context["workdir"]).parents[1].glob("out/*"))))
        if name == failing:
            return [{"check": name, "status": "fail", "detail": "RuntimeError: last line"}]
        return [{"check": f"{name} check", "status": "info" if name == "speed" else "pass", "value": 1.5}]

    monkeypatch.setattr(gpu_check, "run_isolated", run)
    monkeypatch.setattr(gpu_check, "missing_modules", lambda needed, wheels: {})


def _run_faked(tmp_path, monkeypatch, failing=None, argv=()) -> tuple[int, dict, list[dict], list]:
    """main() with the parts faked: (exit status, the JSON, the CSV rows, what was on disk as each part began)."""
    seen = []
    _fake_isolation(monkeypatch, failing, seen)
    monkeypatch.setattr(gpu_check.tempfile, "TemporaryDirectory", lambda prefix: _Folder(tmp_path / "work"))
    status = gpu_check.main(["--device", "cpu", "--quick", "--out", str(tmp_path / "out"),
                             "--wheels", str(tmp_path / "no-wheels"), *argv])
    [json_path] = (tmp_path / "out").glob("selftest-cpu-*.json")
    result = json.loads(json_path.read_text())
    with open(result["csv"], newline="") as handle:
        return status, result, list(csv.DictReader(handle)), seen


@pytest.mark.parametrize("failing,status,verdict", [("eval-cli", 1, "fail"), ("speed", 3, "incomplete"),
                                                    (None, 0, "pass")])
def test_a_failing_part_does_not_stop_the_others(tmp_path, monkeypatch, failing, status, verdict):
    """A failed correctness part fails the check; a failed speed part (no figures) leaves it incomplete."""
    code, result, rows, seen = _run_faked(tmp_path, monkeypatch, failing)
    assert code == status == gpu_check.EXIT_STATUS[verdict]
    assert list(result["parts"]) == list(gpu_check.PARTS)
    assert result["verdict"] == verdict and result["passed"] is (verdict == "pass")
    assert result["device_name"] and result["torch"] == torch.__version__ and result["from_wheels"] == []
    for name, summary in result["parts"].items():
        assert summary["status"] == ("fail" if name == failing else "info" if name == "speed" else "pass")
    assert [row["part"] for row in rows] == [*gpu_check.PARTS, "verdict"]
    assert rows[-1]["status"] == verdict and all(row["device_name"] == result["device_name"] for row in rows)
    # the environment (JSON) and the verdict so far (CSV) are on disk before the first part, each part's rows
    # before the next part
    assert all(len(files) == 2 for _, files in seen)
    if failing:
        failed = next(row for row in rows if row["part"] == failing)
        assert failed["detail"] == "RuntimeError: last line" and failed["value"] == ""
    if failing == "speed":
        assert result["not_run"] == {"speed": "fail: RuntimeError: last line"}


def test_a_check_of_some_parts_is_incomplete(tmp_path, monkeypatch, capsys):
    code, result, rows, _ = _run_faked(tmp_path, monkeypatch, argv=["--parts", "golden-scores"])
    assert code == 3 and result["verdict"] == "incomplete" and rows[-1]["status"] == "incomplete"
    assert set(result["not_run"]) == set(gpu_check.PARTS) - {"golden-scores"}
    assert result["not_run"]["speed"] == "not asked for (--parts)"
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("gpu-check: INCOMPLETE; not run: eval-cli (not asked for (--parts))") and "exit 3" in last


def test_a_stopped_check_reads_incomplete_until_the_last_part(tmp_path, monkeypatch):
    """A kill at any moment leaves files that say `incomplete`, naming the parts not reached."""
    written = []
    real_write = gpu_check.write_results
    monkeypatch.setattr(gpu_check, "write_results", lambda rows, meta, *paths: (
        written.append((meta["verdict"], dict(meta["not_run"]), rows[-1]["status"])), real_write(rows, meta, *paths)))
    _run_faked(tmp_path, monkeypatch)
    assert written[0] == ("incomplete", {name: "not reached" for name in gpu_check.PARTS}, "incomplete")
    assert [verdict for verdict, _, _ in written[:-2]] == ["incomplete"] * (len(written) - 2)
    assert written[-1] == ("pass", {}, "pass")


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


def test_a_part_stopped_at_its_deadline_keeps_the_rows_it_wrote(tmp_path, monkeypatch):
    """The rows a part wrote before its deadline come back (and reach the check as they are written),
    followed by the failing row that says it was stopped."""
    part = tmp_path / "python"  # argv: -m bench.perf.gpu_child <part> <context> <rows.json>
    part.write_text("#!/bin/sh\necho '[{\"check\": \"SGR fp32\", \"status\": \"info\"}]' > \"$5.tmp\"\n"
                    "mv \"$5.tmp\" \"$5\"\necho measuring tf32\nexec sleep 60\n")
    part.chmod(0o755)
    monkeypatch.setattr(gpu_check.sys, "executable", str(part))
    monkeypatch.setattr(gpu_check, "KILL_GRACE", 0.0)
    seen = []
    rows = gpu_check.run_isolated("speed", _context(tmp_path, 1.5), tmp_path, seen.append)
    assert seen == [[{"check": "SGR fp32", "status": "info"}]]
    assert rows[0] == {"check": "SGR fp32", "status": "info"} and rows[1]["status"] == "fail"
    assert rows[1]["detail"].endswith("share of the --budget-seconds; last output: measuring tf32")


def test_a_running_part_reads_unfinished():
    recorded = []
    gpu_check.record_running([{"part": "golden-scores", "check": "x", "status": "pass"}], "speed", recorded.append,
                             [{"check": "SGR fp32", "status": "info"}])
    [rows] = recorded
    assert [row["status"] for row in rows] == ["pass", "info", "unfinished"]
    outcome, reasons, _ = gpu_verdict.verdict(rows, ("golden-scores", "speed"), ("golden-scores",),
                                              ["golden-scores", "speed"])
    assert outcome == "incomplete" and reasons == {"speed": "unfinished: still running when these rows were written"}


def test_the_speed_part_writes_each_row_as_it_is_measured(tmp_path, monkeypatch):
    on_disk = []
    real_measure = gpu_speed.measure
    rows_path = tmp_path / "speed.rows.json"

    def measure(*args):
        on_disk.append(len(json.loads(rows_path.read_text())) if rows_path.is_file() else 0)
        return real_measure(*args)

    monkeypatch.setattr(gpu_speed, "measure", measure)
    monkeypatch.setattr(gpu_speed, "PRECISIONS", ("fp32", "tf32"))
    monkeypatch.setattr(gpu_speed, "SPEED_MODELS", ("SAF",))
    ctx = gpu_correctness.CheckContext(torch.device("cpu"), True, tmp_path, time.time() + 60, 1.0, rows_path)
    rows = gpu_speed.speed_part(ctx)
    assert on_disk == [0, 1, 2] and json.loads(rows_path.read_text()) == rows  # fp32, tf32, then the compiled fp32


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
    """An import, not a look-up: a package whose own imports fail (NLTK without defusedxml) is missing."""
    (tmp_path / "lib" / "needs_more").mkdir(parents=True)
    (tmp_path / "lib" / "needs_more" / "__init__.py").write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    none = tmp_path / "none"
    assert gpu_wheels.missing_modules(["json", "needs_more"], none) == {
        "needs_more": "needs_more is not importable (ModuleNotFoundError: No module named 'no_such_dependency_here'): "
                      f"no wheels in {none}/ to take it from (`make gpu-wheels`, docs/gpu-check.md)"}
    (tmp_path / "nltk-3.9-py3-none-any.whl").write_text("")
    assert "do not provide it for Python" in gpu_wheels.missing_modules(["needs_more"], tmp_path)["needs_more"]
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


BARE_NODE = """
import importlib.machinery, os, sys
WHEEL_SITE = os.environ["BARE_NODE_WHEEL_SITE"]
class BareNode:
    # a GPU node's python: no NLTK, defusedxml, gdown, pytest (with its _pytest and py); only what the
    # check unpacked is found
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] not in ('nltk', 'defusedxml', 'gdown', 'pytest', '_pytest', 'py') or path is not None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, [WHEEL_SITE])
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return spec
sys.meta_path.insert(0, BareNode())
"""


def wheel_of(name: str, dest: Path) -> Path:
    """A wheel made of an installed distribution's own files: the test's stand-in for PyPI's."""
    dist = importlib.metadata.distribution(name)
    dest.mkdir(exist_ok=True)
    path = dest / f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for file in dist.files:
            if file.parts[0] != ".." and "__pycache__" not in file.parts:
                archive.write(file.locate(), str(file))
    return path


def _bare_node(tmp_path: Path, wheels: Path, *argv: str) -> tuple[subprocess.CompletedProcess, set, list, dict]:
    """The check in a simulated bare node (no NLTK, defusedxml, gdown, pytest; pip without an index), the
    way `make gpu-check` starts it: (the process, parts seen on disk while it ran, CSV rows, JSON)."""
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "sitecustomize.py").write_text(BARE_NODE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "node"), str(REPO)]), BENCH_QUIET="1",
               BARE_NODE_WHEEL_SITE=str(wheels / gpu_wheels.SITE), PIP_NO_INDEX="1")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench.perf.gpu_check", "--device", "cpu", "--quick", "--out", str(out),
               "--speed-seconds", "1", "--wheels", str(wheels), *argv]
    seen_while_running = set()
    with subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as child:
        while child.poll() is None:
            # the published CSV only: the writer's hidden temporary is renamed away at any moment
            for path in out.glob("selftest-cpu-*.csv"):
                with path.open(newline="") as published:
                    seen_while_running |= {row["part"] for row in csv.DictReader(published)}
            time.sleep(0.05)
        stdout, stderr = child.communicate()
    assert "Traceback" not in stderr + stdout, stderr[-2000:]
    [csv_path] = out.glob("selftest-cpu-*.csv")
    result = json.loads(csv_path.with_suffix(".json").read_text())
    finished = subprocess.CompletedProcess(command, child.returncode, stdout, stderr)
    return finished, seen_while_running, list(csv.DictReader(csv_path.open(newline=""))), result


def test_a_bare_node_without_wheels_is_incomplete(tmp_path):
    """No `.whl/`: the parts that need NLTK are skipped, the speed part runs, and the check says
    `incomplete` (exit 3) in its last line, its CSV and its JSON; rows are on disk part by part."""
    finished, seen_while_running, rows, result = _bare_node(tmp_path, tmp_path / "no-wheels")
    assert finished.returncode == 3, finished.stderr[-2000:]
    assert "gpu-check: nltk is not importable (ModuleNotFoundError: No module named 'nltk')" in finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("gpu-check: INCOMPLETE; not run: golden-scores (skip: nltk is not importable")
    assert all(f"{part} (skip: " in last for part in gpu_check.CORRECTNESS_PARTS) and "exit 3" in last
    by_part = {part: [row for row in rows if row["part"] == part] for part in (*gpu_check.PARTS, "verdict")}
    for part in gpu_check.CORRECTNESS_PARTS:
        assert [row["status"] for row in by_part[part]] == ["skip"] and "nltk" in by_part[part][0]["detail"]
    assert by_part["speed"] and all(row["status"] == "info" for row in by_part["speed"])
    assert [row["status"] for row in by_part["verdict"]] == ["incomplete"] and rows[-1]["part"] == "verdict"
    assert result["verdict"] == "incomplete" and result["passed"] is False and result["from_wheels"] == []
    assert set(gpu_check.CORRECTNESS_PARTS) <= seen_while_running


def test_a_bare_node_with_wheels_takes_only_what_it_lacks(tmp_path):
    """`.whl/` holding NLTK, defusedxml, pytest and packages the node has (pluggy, packaging): only the
    first three are unpacked and reported, and golden-train, which needs NLTK and pytest, runs and
    passes (the other parts are left out for time, so the check reads incomplete, naming them)."""
    wheels = tmp_path / "wheels"
    for name in ("nltk", "defusedxml", "pytest", "pluggy", "packaging"):
        wheel_of(name, wheels)
    finished, _, rows, result = _bare_node(tmp_path, wheels, "--parts", "golden-train")
    taken = [f"{name} {importlib.metadata.version(name)}" for name in ("defusedxml", "nltk", "pytest")]
    assert result["from_wheels"] == taken
    assert f"gpu-check: from {wheels}/: {', '.join(taken)}" in finished.stderr
    unpacked = {p.name.split("-")[0] for p in (wheels / gpu_wheels.SITE).iterdir()}
    assert unpacked == {"_pytest", "defusedxml", "nltk", "pytest", "py.py"}  # not pluggy, not packaging
    golden = [row for row in rows if row["part"] == "golden-train"]
    assert golden and all(row["status"] == "pass" for row in golden), golden
    assert finished.returncode == 3 and result["not_run"] == {
        part: "not asked for (--parts)" for part in gpu_check.PARTS if part != "golden-train"}


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


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
@pytest.mark.parametrize("with_torch", [True, False])
def test_make_gpu_check_without_a_venv_takes_the_system_python3(tmp_path, with_torch):
    """A GPU node has no .venv: `make gpu-check` says it uses python3 and, where that python has no
    torch with CUDA, refuses in one line of its own (make adds its `Error 2` line)."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "no-torch").mkdir()
    (tmp_path / "no-torch" / "sitecustomize.py").write_text(
        "import sys\nclass NoTorch:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoTorch())\n")
    python3 = tmp_path / "bin" / "python3"  # this interpreter (its torch is CPU-only), or it without torch
    extra = "" if with_torch else f"PYTHONPATH={tmp_path / 'no-torch'}:$PYTHONPATH "
    python3.write_text(f"#!/bin/sh\n{extra}exec {sys.executable} \"$@\"\n")
    python3.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "gpu-check", f"VENV={tmp_path / 'none'}",
                             f"RESULTS={tmp_path / 'results'}"], env=env, capture_output=True, text=True, timeout=120)
    ours = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert result.returncode == 2 and len(ours) == 2, result.stderr
    assert ours[0] == f"gpu-check: no {tmp_path / 'none'}/bin/python: running with the system python3 ({python3})"
    expected = "gpu-check: no CUDA GPU visible" if with_torch else "gpu-check: PyTorch is not importable"
    assert ours[1].startswith(expected) and not (tmp_path / "results").exists()


def requirement_closure(names, environment: dict) -> set[str]:
    """The distributions `names` need on a python described by `environment` (markers), from the
    installed distributions' metadata: an account of the requirements independent of pip's."""
    from packaging.requirements import Requirement

    found, todo = set(), list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in found:
            continue
        found.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(dict(environment, extra="")):
                todo.append(requirement.name)
    return found


def test_the_wheel_recipe_downloads_nltk_defusedxml_pytest_and_their_requirements(tmp_path):
    """`make gpu-wheels`'s pip command, for Python 3.12 on linux, against a local index of wheels made
    from this environment (PIP_NO_INDEX, PIP_FIND_LINKS): exactly those three and what they require."""
    index = tmp_path / "index"
    required = requirement_closure(gpu_wheels.REQUIREMENTS, {"python_version": "3.12", "python_full_version": "3.12.3",
                                                             "sys_platform": "linux", "platform_system": "Linux"})
    assert {"nltk", "defusedxml", "click", "regex", "tqdm", "pytest", "pluggy"} <= required
    for name in required:
        wheel_of(name, index)
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(index), PIP_DISABLE_PIP_VERSION_CHECK="1")
    command = gpu_wheels.download_command(tmp_path / "whl", "3.12")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    got = {path.name.split("-")[0].lower() for path in (tmp_path / "whl").glob("*.whl")}
    assert got == set(required)
    assert command[command.index("--python-version") + 1] == "3.12" and "--upgrade" not in command
