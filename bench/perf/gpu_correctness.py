"""The correctness parts of `make gpu-check`, each a list of rows with status pass / fail / n/a.

The goldens are the original implementation's CPU outputs (tests/fixtures/golden); the eval and
train parts run the real command lines in child processes, plainly and under torchrun with one
process (a process group of one: NCCL on a GPU, gloo on the CPU self-test). A score matrix passes
when it is within the precision's score tolerance of the reference and its top-1 agreement is
high enough (bench.eval.tolerances): recalls on a GPU may differ where a near-tie flips.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import torch

from bench.data import synthetic
from bench.data.splits import CAPTIONS_PER_IMAGE, load_split
from bench.eval.protocols import DIRECTIONS
from bench.eval.score_split import score_split
from bench.eval.tolerances import PRECISIONS, SCORE_TOLERANCE, TF32_EMULATED, TOP1_AGREEMENT
from bench.perf.gpu_env import PART_ROWS, REPO, last_line, source_env
from bench.perf.workload import agreement
from bench.training.logs import read_step_log

GOLDEN = REPO / "tests" / "fixtures" / "golden"
GOLDEN_CASES = (("coco", "testall", "sgr"), ("coco", "testall", "saf"),
                ("f30k", "test", "sgr"), ("f30k", "test", "saf"))
GOLDEN_METRICS = ("r1", "r5", "r10", "medr", "meanr", "asp")  # the order of expected.npz's `full` rows
TRAIN_STEPS = 20


@dataclass
class CheckContext:
    device: torch.device
    quick: bool
    workdir: Path
    deadline: float  # wall-clock time (time.time()) by which the part must be done
    speed_seconds: float
    rows_path: Path | None = None  # where the part's process keeps its rows (gpu_child)

    @classmethod
    def from_json(cls, values: dict, rows_path: Path | None = None) -> "CheckContext":
        """The context gpu_check hands to a part's process."""
        workdir = Path(values["workdir"])
        workdir.mkdir(parents=True, exist_ok=True)
        return cls(torch.device(values["device"]), values["quick"], workdir, values["deadline"],
                   values["speed_seconds"], rows_path)

    def seconds_left(self) -> float:
        return self.deadline - time.time()

    def save_rows(self, rows: list[dict]) -> None:
        """The rows so far, on disk at once (atomically), for a part that measures one row at a time:
        a kill at the deadline then keeps what was measured."""
        if self.rows_path is not None:
            from bench.common.atomic import write_text

            write_text(self.rows_path, json.dumps(rows), PART_ROWS)


def correctness_parts() -> dict:
    return {"golden-scores": golden_scores, "eval-cli": eval_cli, "train-ddp": train_ddp, "golden-train": golden_train}


def child_env(ctx: CheckContext) -> dict:
    """The check's environment for child processes: this source tree first, quiet progress,
    and the chosen GPU as the only one visible (torchrun then maps local rank 0 to it)."""
    env = source_env(BENCH_QUIET="1", PYTHONUNBUFFERED="1")
    if ctx.device.type == "cuda" and ctx.device.index is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(ctx.device.index)
    return env


def run_child(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    """Run a child in its own process group; on timeout the whole group is killed (torchrun's
    workers too, so that a hung one does not keep the GPU for the parts after it)."""
    with subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as child:
        try:
            out, err = child.communicate(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            raise
    return subprocess.CompletedProcess(args, child.returncode, out, err)


def run_command(args: list[str], ctx: CheckContext) -> None:
    """Run a command of this project; a non-zero exit raises with its last stderr line."""
    result = run_child(args, child_env(ctx), ctx.seconds_left())
    if result.returncode != 0:
        raise RuntimeError(f"exit {result.returncode}: {last_line(result.stderr)}")


def launchers(ctx: CheckContext) -> dict[str, list[str]]:
    backend = "nccl" if ctx.device.type == "cuda" else "gloo"
    return {"plain": [sys.executable],
            f"torchrun x1 ({backend})": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                         "--nproc_per_node", "1"]}


def fail_row(check: str, error: Exception) -> dict:
    return {"check": check, "status": "fail", "detail": f"{type(error).__name__}: {error}"[:300]}


def golden_scores(ctx: CheckContext) -> list[dict]:
    """The golden checkpoints scored on the device in every precision, against the original's scores."""
    expected = np.load(GOLDEN / "expected.npz")
    rows = []
    for dataset, split_name, model in GOLDEN_CASES[:1] if ctx.quick else GOLDEN_CASES:
        split = load_split(GOLDEN, f"{dataset}_precomp", split_name)
        reference = expected[f"{dataset}_{model}/sims"]
        for precision in PRECISIONS:
            sims = score_split([str(GOLDEN / f"{dataset}_{model}.pth.tar")], split, GOLDEN, None, ctx.device,
                               precision).sims
            ok, figures, text = judge(sims, reference, precision)
            if precision == "tf32":  # beside the measured difference: what each conversion gave on a CPU
                emulated = tf32_emulated(f"{dataset} {model}")
                figures |= {f"cpu_emulated_{conversion}": value for conversion, value in emulated.items()}
                text += "; CPU emulation: " + ", ".join(f"{c} {v:.4f}" for c, v in emulated.items())
            rows.append({"check": f"{dataset} {model.upper()} {precision}", "status": "pass" if ok else "fail",
                         "precision": precision, **figures, "mean_abs_diff": float(np.abs(sims - reference).mean()),
                         "detail": text})
    return rows


def tf32_emulated(golden: str) -> dict:
    """{conversion: max |diff|} of one golden under CPU-emulated TF32 (bench.eval.tolerances)."""
    return {conversion: by_golden[golden] for conversion, by_golden in TF32_EMULATED.items()}


def judge(sims: np.ndarray, reference: np.ndarray, precision: str) -> tuple[bool, dict, str]:
    """(passed, figures, their summary): max |diff| within the precision's tolerance and top-1
    agreement in both directions at least its minimum."""
    figures = agreement(sims, reference)
    tolerance, top1 = SCORE_TOLERANCE[precision], TOP1_AGREEMENT[precision]
    ok = figures["max_abs_diff"] <= tolerance and min(figures["top1_i2t"], figures["top1_t2i"]) >= top1
    text = (f"max |diff| {figures['max_abs_diff']:.1e} (limit {tolerance:.2g}); top-1 agreement i2t "
            f"{figures['top1_i2t']:.2f}, t2i {figures['top1_t2i']:.2f} (min {top1:g})")
    return ok, {**figures, "tolerance": tolerance, "top1_min": top1}, text


def metric_gaps(metrics: dict, expected_row: np.ndarray) -> tuple[float, float]:
    """(largest recall/rank gap, largest ASP gap) between a result's metrics and a golden row."""
    ours = np.array([metrics[d][m] for d in DIRECTIONS for m in GOLDEN_METRICS], dtype=float)
    gaps = np.abs(ours - expected_row)
    is_asp = np.array([m == "asp" for _ in DIRECTIONS for m in GOLDEN_METRICS])
    return float(gaps[~is_asp].max()), float(gaps[is_asp].max())


def eval_cli(ctx: CheckContext) -> list[dict]:
    """`python -m bench eval` (coco-5k protocol; SGRAF, or SGR when quick) on the golden fixtures,
    plainly and under torchrun."""
    expected = np.load(GOLDEN / "expected.npz")
    models = ("sgr",) if ctx.quick else ("sgr", "saf")
    reference = np.mean([expected[f"coco_{model}/sims"] for model in models], axis=0)
    name = f"coco_{models[0]}" if len(models) == 1 else "coco_sgraf"
    command = ["-m", "bench", "eval", "--protocol", "coco-5k", "--data-root", str(GOLDEN), "--device", ctx.device.type]
    for model in models:
        command += ["--checkpoint", str(GOLDEN / f"coco_{model}.pth.tar")]
    rows = []
    for label, launcher in launchers(ctx).items():
        out = ctx.workdir / f"eval-{len(rows)}"
        try:
            run_command([*launcher, *command, "--save-sims", str(out / "sims.npy"), "--json", str(out / "run.json")],
                        ctx)
            sims, result = np.load(out / "sims.npy"), json.loads((out / "run.json").read_text())
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as error:
            rows.append(fail_row(f"eval {label}", error))
            continue
        ok, figures, text = judge(sims, reference, "fp32")
        recall_gap, asp_gap = metric_gaps(result["metrics"], expected[f"{name}/full"])
        provenance = result["provenance"]
        rows.append({"check": f"eval {label}", "status": "pass" if ok else "fail", **figures,
                     "recall_gap": recall_gap, "asp_gap": asp_gap, "device_used": provenance["device"],
                     "processes": provenance.get("processes"),
                     "detail": f"{provenance['model']} coco-5k on {provenance['device']}: {text}; recalls "
                               f"{'equal' if recall_gap <= 1e-9 else f'off by {recall_gap:g}'} (reported), "
                               f"ASP within {asp_gap:.3f}"})
    return rows


def training_sizes(quick: bool) -> dict:
    """Images per batch (25, i.e. 125 captions; 2 when quick) and a paper-sized model unless quick.
    The tiny model needs the demo's larger learning rate to move in 20 steps."""
    if quick:
        return dict(batch_images=2, img_dim=40, regions=4, dims=("16", "8", "8"), flags=["--learning-rate", "0.004"])
    return dict(batch_images=25, img_dim=2048, regions=36, dims=("1024", "300", "256"), flags=[])


def write_training_data(root: Path, sizes: dict) -> None:
    """f30k-named generated data with learnable structure (each image shows a few concepts that its
    captions name): train has TRAIN_STEPS batches, one row per image (as SCAN's train); dev has one
    batch, one row per caption."""
    synthetic.write_vocab(root / "vocab" / "f30k_precomp_vocab.json")
    for split, images, per_caption, seed in (("train", TRAIN_STEPS * sizes["batch_images"], False, 1),
                                             ("dev", sizes["batch_images"], True, 2)):
        synthetic.write_split(root / "f30k_precomp", split, images, img_dim=sizes["img_dim"],
                              regions=sizes["regions"], rows_per_caption=per_caption, seed=seed)


def loss_trend(losses: list[float]) -> tuple[bool, str]:
    """(finite and falling, the figures): the mean of the last 5 steps below that of the first 5."""
    first, last = float(np.mean(losses[:5])), float(np.mean(losses[-5:]))
    ok = len(losses) == TRAIN_STEPS and all(math.isfinite(v) for v in losses) and last < first
    return ok, f"{len(losses)} steps; mean loss of steps 1-5 {first:.4f} -> of the last 5 {last:.4f}"


def train_ddp(ctx: CheckContext) -> list[dict]:
    """`bench train --max-steps 20` under torchrun (DDP with one process), F30K paper settings, in one
    epoch of 20 batches: no checkpoint until the end, one validation at the end. The hinge sums all
    violations (as `make demo`): from random weights the hardest-negative hinge can stall for many
    steps, and this checks that DDP training learns, not the paper's schedule."""
    sizes = training_sizes(ctx.quick)
    root = ctx.workdir / "train-data"
    write_training_data(root, sizes)
    embed, word, sim = sizes["dims"]
    label, launcher = list(launchers(ctx).items())[-1]  # torchrun
    rows = []
    for module in ("SAF",) if ctx.quick else ("SGR", "SAF"):
        out = ctx.workdir / f"train-{module}"
        command = [*launcher, "-m", "bench", "train", "--data-name", "f30k_precomp", "--module-name", module,
                   "--data-root", str(root), "--out-dir", str(out), "--num-epochs", "1",
                   "--max-steps", str(TRAIN_STEPS), "--batch-size", str(CAPTIONS_PER_IMAGE * sizes["batch_images"]),
                   "--no-max-violation", "--embed-size", embed, "--word-dim", word, "--sim-dim", sim,
                   "--workers", "0", "--device", ctx.device.type, *sizes["flags"]]
        try:
            run_command(command, ctx)
            losses = [row["loss"] for row in read_step_log(out)]
            saved = sorted(path.name for path in out.glob("*.pth.tar"))
        except (RuntimeError, OSError, KeyError, ValueError, subprocess.TimeoutExpired) as error:
            rows.append(fail_row(f"train {module} {label}", error))
            continue
        ok, text = loss_trend(losses)
        rows.append({"check": f"train {module} {label}", "status": "pass" if ok else "fail", "steps": len(losses),
                     "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
                     "checkpoints": " ".join(saved), "detail": f"{text}; saved {', '.join(saved)}"})
    return rows


def golden_train(ctx: CheckContext) -> list[dict]:
    """tests/test_train_golden.py's trajectory tests (the original's 5 float64 steps) on the device."""
    test_file = REPO / "tests" / "test_train_golden.py"
    if not test_file.is_file():
        return [{"check": "golden training (fp64)", "status": "n/a", "detail": "not available in this tree"}]
    report = ctx.workdir / "golden-train.xml"
    selection = "golden_relevance_reproduces and SGR" if ctx.quick else "golden_relevance_reproduces or within_1e5"
    env = dict(child_env(ctx), BENCH_TEST_DEVICE=ctx.device.type)
    run_child([sys.executable, "-m", "pytest", str(test_file), "-k", selection, "-p", "no:cacheprovider",
               f"--junitxml={report}"], env, ctx.seconds_left())
    if not report.is_file():
        raise RuntimeError("pytest wrote no report (is pytest installed? `make gpu-wheels` puts it in .whl/)")
    return [junit_row(case) for case in ElementTree.parse(report).iter("testcase")]


def junit_row(case) -> dict:
    """One pytest test case as a check row (its failure message's first line as the detail)."""
    problem = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
    if problem is None:
        return {"check": case.get("name"), "status": "pass", "detail": f"{float(case.get('time', 0)):.1f} s"}
    status = "n/a" if problem.tag == "skipped" else "fail"
    return {"check": case.get("name"), "status": status, "detail": (problem.get("message") or problem.tag)[:300]}
