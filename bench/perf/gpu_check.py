"""`make gpu-check`: one prepared check of a CUDA machine: correctness against the goldens, then speed.

    PYTHONPATH=. python3 -m bench.perf.gpu_check                # what `make gpu-check` runs
    python -m bench.perf.gpu_check --device cpu --quick         # self-test of the wiring (CPU, tiny sizes)

Parts (bench/perf/gpu_correctness.py, gpu_speed.py): golden-scores, eval-cli, train-ddp and golden-train
check correctness (pass / fail / n/a / skip); speed measures COCO-5K-sized scoring. Each part runs in
its own process within its share of one whole-check budget, so a CUDA error or a hang costs that part
only. The environment is recorded first, and the CSV and JSON are rewritten after every part, so a run
killed at any moment leaves every finished part on disk (and the verdict `incomplete`). Exit status:
0 every part ran and none failed, 1 a correctness part failed, 2 the check could not start (no GPU),
3 incomplete: a part was skipped, not applicable, not asked for, or (speed) gave no figures. A check
that did not run every part never passes. See docs/gpu-check.md.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench.common.terminal import OneLineParser, summary
from bench.perf.gpu_env import REPO, last_line, source_env
from bench.perf.gpu_verdict import EXIT_STATUS, verdict, verdict_row
from bench.perf.gpu_wheels import missing_modules, take_wheels

CORRECTNESS_PARTS = ("golden-scores", "eval-cli", "train-ddp", "golden-train")
PARTS = (*CORRECTNESS_PARTS, "speed")
# The whole check, start-up to the last row, on one H100/H200-class GPU: 8 minutes, leaving room under a
# 10-minute command limit. Each part gets its share of what is left when it starts (unused time
# passes on to the parts after it); a part still running at its deadline is stopped and reported.
BUDGET_SECONDS = 480
PART_SHARES = {"golden-scores": 0.12, "eval-cli": 0.2, "train-ddp": 0.3, "golden-train": 0.13, "speed": 0.25}
KILL_GRACE = 5.0  # seconds between a part's own deadline and its process being killed
POLL_SECONDS = 0.2  # how often the check looks for a running part's new rows
# What each part imports beyond torch and numpy; a part whose module is missing is skipped (the check is
# then incomplete), not failed.
PART_NEEDS = {"golden-scores": ("nltk",), "eval-cli": ("nltk",), "train-ddp": ("nltk",),
              "golden-train": ("nltk", "pytest"), "speed": ()}
WHEELS = REPO / ".whl"
SELF_TEST_OUT = Path(tempfile.gettempdir()) / "daa-gpu-check-selftest"


def parse_args(argv=None) -> argparse.Namespace:
    parser = OneLineParser(prog="gpu-check", description=summary(__doc__),
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (cpu: a self-test with --quick)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the wiring, not the hardware")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), metavar="PART",
                        help=f"which parts to run ({', '.join(PARTS)})")
    parser.add_argument("--out", type=Path, help="folder for the CSV/JSON (default: results/perf for a GPU, "
                                                 f"{SELF_TEST_OUT} for the CPU self-test)")
    parser.add_argument("--budget-seconds", type=float, default=BUDGET_SECONDS,
                        help="the whole check ends within this; each part gets a share")
    parser.add_argument("--speed-seconds", type=float, default=25.0,
                        help="at most this long per (model, precision) speed run; beyond it a measured "
                             "fraction is extrapolated")
    parser.add_argument("--wheels", type=Path, default=WHEELS,
                        help="folder of wheels (make gpu-wheels) for what this python cannot import")
    args = parser.parse_args(argv)
    if args.device != "cpu" and not args.device.startswith("cuda"):
        parser.error(f"--device {args.device}: expected cuda, cuda:N or cpu")
    if args.device == "cpu" and not args.quick:
        parser.error("--device cpu needs --quick: at full size the check is for a GPU")
    if args.budget_seconds <= 0 or args.speed_seconds <= 0:
        parser.error("--budget-seconds and --speed-seconds must be positive")
    if args.out is None:
        args.out = Path("results/perf") if args.device != "cpu" else SELF_TEST_OUT
    return args


def missing_gpu(device: str) -> str | None:
    """The one line to print when `device` is a GPU this machine does not have; None when it has it."""
    try:
        import torch
    except ImportError:
        return "gpu-check: PyTorch is not importable by this Python; run it with one that has torch (CUDA build)"
    if device == "cpu":
        return None
    build = f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none (a CPU-only build)'}"
    if not torch.cuda.is_available():
        return f"gpu-check: no CUDA GPU visible ({build}); run it on a machine with one"
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():
        return f"gpu-check: --device {device}: only {torch.cuda.device_count()} GPU(s) visible ({build})"
    return None


def part_status(rows: list[dict]) -> str:
    statuses = {row["status"] for row in rows}
    if "fail" in statuses:
        return "fail"
    if "pass" in statuses:
        return "pass"
    if "skip" in statuses:
        return "skip"
    return "n/a" if statuses <= {"n/a"} else "info"


def environment(device) -> dict:
    import torch

    facts = {"device": str(device), "python": platform.python_version(), "torch": torch.__version__,
             "cuda": torch.version.cuda, "host": platform.node()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        facts |= {"device_name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                  "capability": f"{props.major}.{props.minor}", "cudnn": torch.backends.cudnn.version()}
        if torch.distributed.is_nccl_available():
            version = torch.cuda.nccl.version()  # a tuple in recent PyTorch, an int in older ones
            facts["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
    else:
        facts["device_name"] = f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"
    return facts


def result_paths(out_dir: Path, device, stamp: str) -> tuple[Path, Path]:
    """gpu-<time>.csv/.json for a GPU; the CPU self-test is named so that it is never taken for one."""
    name = f"gpu-{stamp}" if device.type == "cuda" else f"selftest-cpu-{stamp}"
    return out_dir / f"{name}.csv", out_dir / f"{name}.json"


def write_results(rows: list[dict], meta: dict, csv_path: Path, json_path: Path) -> None:
    """Both files, atomically, with every row so far (called after each part)."""
    from bench.common.atomic import write_json
    from bench.common.replace_rule import Kind, first_line
    from bench.perf.report import write_rows

    if rows:
        write_rows([{"device_name": meta["device_name"], **row} for row in rows], csv_path,
                   Kind("a gpu-check CSV", lambda path: first_line(path).startswith("device_name,part,")))
    write_json(json_path, {**meta, "csv": str(csv_path), "rows": rows},
               Kind.json_with("a gpu-check JSON", ("csv", "rows")))


def print_summary(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("part", "check", "status", "detail"):
        table.add_column(column, overflow="fold")
    colours = {"pass": "green", "fail": "red", "n/a": "yellow", "skip": "yellow", "incomplete": "yellow"}
    for row in rows:
        status = row["status"]
        table.add_row(row["part"], row["check"], f"[{colours.get(status, 'white')}]{status}[/]", row.get("detail", ""))
    Console(width=max(120, Console().width)).print(table)


def part_deadline(name: str, remaining_parts: list[str], end: float) -> float:
    """This part's share of what is left until `end` (wall-clock seconds), among the parts still to run."""
    shares = sum(PART_SHARES[part] for part in remaining_parts)
    return time.time() + max(0.0, end - time.time()) * PART_SHARES[name] / shares


def run_isolated(name: str, context: dict, workdir: Path, progress=None) -> list[dict]:
    """Run one part in a child process (bench.perf.gpu_child) and read its rows; a crash, a CUDA
    error or a part over its share becomes a failing row after the rows it had written.
    `progress(rows)` gets the rows the part has written so far, each time they change."""
    rows_path, log_path = workdir / f"{name}.rows.json", workdir / f"{name}.log"
    seconds = context["deadline"] - time.time() + KILL_GRACE
    stop, written = time.time() + max(1.0, seconds), None
    command = [sys.executable, "-m", "bench.perf.gpu_child", name, json.dumps(context), str(rows_path)]
    with open(log_path, "w") as log, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                                      env=source_env(), start_new_session=True) as child:
        while child.poll() is None:
            if time.time() >= stop:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                detail = f"stopped after {seconds:.0f} s, its share of the --budget-seconds; last output: "
                return [*rows_written(rows_path), {"check": name, "status": "fail",
                                                   "detail": detail + last_output(log_path)}]
            time.sleep(POLL_SECONDS)
            if progress and rows_written(rows_path) != written:
                written = rows_written(rows_path)
                progress(written)
    if rows_path.is_file():
        return json.loads(rows_path.read_text())
    detail = f"the part's process ended with {child.returncode}: {last_output(log_path)}"
    return [{"check": name, "status": "fail", "detail": detail}]


def rows_written(rows_path: Path) -> list[dict]:
    """The rows a part's process has on disk so far (written atomically, so never half a file)."""
    return json.loads(rows_path.read_text()) if rows_path.is_file() else []


def last_output(log_path: Path) -> str:
    return last_line(log_path.read_text(errors="replace"))


def skip_row(name: str, missing: dict[str, str]) -> dict | None:
    reasons = [missing[module] for module in PART_NEEDS[name] if module in missing]
    return {"check": name, "status": "skip", "detail": "; ".join(reasons)} if reasons else None


def optional_modules(args) -> tuple[list[str], dict[str, str]]:
    """NLTK and pytest: (distributions taken from --wheels, {module: why still missing}), each said in one line."""
    taken = take_wheels(args.wheels)
    if taken:
        print(f"gpu-check: from {args.wheels}/: {', '.join(taken)}", file=sys.stderr, flush=True)
    needed = sorted({module for name in args.parts for module in PART_NEEDS[name]})
    missing = missing_modules(needed, args.wheels)
    for reason in missing.values():
        print(f"gpu-check: {reason}; the parts that need it are skipped", file=sys.stderr, flush=True)
    return taken, missing


def run_parts(args, selected: list[str], missing: dict, end: float, record) -> list[dict]:
    """Each selected part (skipped when a module it needs is missing); `record(rows, part, seconds)`
    after each."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="daa-gpu-check-") as workdir:
        for index, name in enumerate(selected):
            part_started = time.time()
            skipped = skip_row(name, missing)
            if skipped:
                part_rows = [skipped]
            else:
                print(f"gpu-check: {name} ...", file=sys.stderr, flush=True)
                deadline = part_deadline(name, selected[index:], end)
                context = {"device": args.device, "quick": args.quick, "workdir": str(Path(workdir) / name),
                           "deadline": deadline, "speed_seconds": args.speed_seconds}
                part_rows = run_isolated(name, context, Path(workdir), partial(record_running, rows, name, record))
            rows += [{"part": name, **row} for row in part_rows]
            record(rows, name, time.time() - part_started)
    return rows


def record_running(done: list[dict], name: str, record, part_rows: list[dict]) -> None:
    """Record a running part's rows so far, marked unfinished (so a check stopped now is incomplete)."""
    running = {"check": name, "status": "unfinished", "detail": "still running when these rows were written"}
    record([*done, *({"part": name, **row} for row in [*part_rows, running])])


def run_check(args) -> int:
    import torch

    device = torch.device(args.device)
    started = time.time()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    csv_path, json_path = result_paths(args.out, device, stamp)
    selected = [name for name in PARTS if name in args.parts]
    taken, missing = optional_modules(args)
    meta = {**environment(device), "started": stamp, "quick": args.quick, "budget_seconds": args.budget_seconds,
            "from_wheels": taken, "parts": {}, "seconds": 0.0}

    def record(rows: list[dict], part: str | None = None, seconds: float = 0.0) -> list[dict]:
        """Both files with the rows so far and the verdict they allow (incomplete until every part ran)."""
        if part:
            meta["parts"][part] = {"status": part_status([r for r in rows if r["part"] == part]),
                                   "seconds": round(seconds, 1)}
        outcome, reasons, failed = verdict(rows, PARTS, CORRECTNESS_PARTS, selected)
        meta.update(seconds=round(time.time() - started, 1), verdict=outcome, passed=outcome == "pass",
                    not_run=reasons)
        all_rows = [*rows, verdict_row(outcome, reasons, failed)]
        write_results(all_rows, meta, csv_path, json_path)
        return all_rows

    record([])
    rows = record(run_parts(args, selected, missing, started + args.budget_seconds - KILL_GRACE, record))
    print_summary(rows, f"gpu-check on {meta['device_name']} ({meta['seconds']:.0f} s) -> {csv_path}")
    print(f"gpu-check: {rows[-1]['detail']} (exit {EXIT_STATUS[meta['verdict']]}; {json_path})", file=sys.stderr)
    return EXIT_STATUS[meta["verdict"]]


def out_folder_problem(out: Path) -> str | None:
    """--out must be a folder (or not exist yet): a file, /dev/null or a FIFO cannot hold the CSV/JSON."""
    for place in (out, *out.parents):
        if place.exists() or place.is_symlink():
            return None if place.is_dir() else f"--out {out}: {place} is not a folder"
    return None


def main(argv=None) -> int:
    from bench.common import signals
    from bench.common.errors import BenchError
    from bench.common.terminal import one_line

    previous = signals.install()
    try:
        args = parse_args(argv)
        problem = missing_gpu(args.device) or out_folder_problem(args.out)
        if problem:
            print(one_line(problem if problem.startswith("gpu-check") else f"gpu-check: {problem}"), file=sys.stderr)
            return 2
        return run_check(args)
    except (BenchError, OSError) as err:
        print(one_line(f"gpu-check: error: {err}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        how, status = signals.status_of(err)
        print(f"gpu-check: {how}; the rows so far are in --out", file=sys.stderr)
        return status
    finally:
        signals.restore(previous)


if __name__ == "__main__":
    raise SystemExit(main())
