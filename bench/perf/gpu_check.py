"""`make gpu-check`: one prepared check of a CUDA machine: correctness against the goldens, then speed.

    PYTHONPATH=. python3 -m bench.perf.gpu_check                # what `make gpu-check PY=python3` runs
    python -m bench.perf.gpu_check --device cpu --quick         # self-test of the wiring (CPU, tiny sizes)

Parts (bench/perf/gpu_parts.py, gpu_speed.py): golden-scores, eval-cli, train-ddp and golden-train
check correctness (pass / fail / n/a); speed measures COCO-5K-sized scoring. A failing part does
not stop the others. Exit status: 0 all correctness parts passed (or n/a), 1 one failed, 2 the
check could not start (no GPU). Writes <out>/gpu-<time>.csv (one row per check) and .json.
"""

import argparse
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path

CORRECTNESS_PARTS = ("golden-scores", "eval-cli", "train-ddp", "golden-train")
PARTS = (*CORRECTNESS_PARTS, "speed")
BUDGET_SECONDS = 480  # the whole check on one H100-class GPU


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (cpu: a self-test with --quick)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the wiring, not the hardware")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), metavar="PART",
                        help=f"which parts to run ({', '.join(PARTS)})")
    parser.add_argument("--out", type=Path, default=Path("results/perf"), help="folder for gpu-<time>.csv/.json")
    parser.add_argument("--budget-seconds", type=float, default=BUDGET_SECONDS,
                        help="the speed part shrinks its runs to end within this (whole check)")
    parser.add_argument("--speed-seconds", type=float, default=25.0,
                        help="at most this long per (model, precision) speed run; beyond it a measured "
                             "fraction is extrapolated")
    args = parser.parse_args(argv)
    if args.device != "cpu" and not args.device.startswith("cuda"):
        parser.error(f"--device {args.device}: expected cuda, cuda:N or cpu")
    if args.device == "cpu" and not args.quick:
        parser.error("--device cpu needs --quick: at full size the check is for a GPU")
    if args.budget_seconds <= 0 or args.speed_seconds <= 0:
        parser.error("--budget-seconds and --speed-seconds must be positive")
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
    if statuses <= {"n/a"}:
        return "n/a"
    return "pass" if "pass" in statuses else "info"


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}"[:300]


def run_part(name: str, part, ctx) -> tuple[list[dict], dict]:
    """(rows, summary) of one part; an exception becomes one failing row, never a stopped check."""
    started = time.perf_counter()
    try:
        rows = part(ctx)
    except Exception as error:  # noqa: BLE001 - a broken part must not stop the others
        rows = [{"check": name, "status": "fail", "detail": one_line(error)}]
    seconds = time.perf_counter() - started
    rows = [{"part": name, **row} for row in rows]
    return rows, {"status": part_status(rows), "seconds": round(seconds, 1)}


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


def write_results(rows: list[dict], meta: dict, out_dir: Path, stamp: str) -> tuple[Path, Path]:
    from bench.common.atomic import write_json
    from bench.perf.report import write_rows

    csv_path = write_rows([{"device_name": meta["device_name"], **row} for row in rows], out_dir / f"gpu-{stamp}.csv")
    json_path = out_dir / f"gpu-{stamp}.json"
    write_json(json_path, {**meta, "csv": str(csv_path), "rows": rows})
    return csv_path, json_path


def print_summary(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("part", "check", "status", "detail"):
        table.add_column(column, overflow="fold")
    colours = {"pass": "green", "fail": "red", "n/a": "yellow"}
    for row in rows:
        status = row["status"]
        table.add_row(row["part"], row["check"], f"[{colours.get(status, 'white')}]{status}[/]", row.get("detail", ""))
    Console(width=max(120, Console().width)).print(table)


def run_check(args) -> int:
    import torch

    from bench.perf.gpu_parts import CheckContext, correctness_parts
    from bench.perf.gpu_speed import speed_part

    device = torch.device(args.device)
    started = time.perf_counter()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    parts = {**correctness_parts(), "speed": speed_part}
    rows, summaries = [], {}
    with tempfile.TemporaryDirectory(prefix="daa-gpu-check-") as workdir:
        ctx = CheckContext(device=device, quick=args.quick, workdir=Path(workdir), started=started,
                           budget_seconds=args.budget_seconds, speed_seconds=args.speed_seconds)
        for name in PARTS:
            if name in args.parts:
                print(f"gpu-check: {name} ...", file=sys.stderr, flush=True)
                part_rows, summaries[name] = run_part(name, parts[name], ctx)
                rows += part_rows
    failed = [name for name in CORRECTNESS_PARTS if summaries.get(name, {}).get("status") == "fail"]
    meta = {**environment(device), "started": stamp, "quick": args.quick, "parts": summaries,
            "seconds": round(time.perf_counter() - started, 1), "passed": not failed}
    csv_path, json_path = write_results(rows, meta, args.out, stamp)
    print_summary(rows, f"gpu-check on {meta['device_name']} ({meta['seconds']:.0f} s) -> {csv_path}")
    print(f"gpu-check: {'FAILED: ' + ', '.join(failed) if failed else 'all correctness parts passed'} "
          f"({json_path})", file=sys.stderr)
    return 1 if failed else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    problem = missing_gpu(args.device)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    return run_check(args)


if __name__ == "__main__":
    raise SystemExit(main())
