"""Where a number came from: code version, library versions, machine and time.

`evaluation_provenance` adds what only an evaluation knows (device, precision, checkpoint
sha256, data manifest, tokenizer path, seconds per stage, pairs per second); `scores_provenance`
the same for a score file from another model (its sha256 instead of checkpoints').
"""

import datetime
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

import bench
from bench.common.distributed import world_info_from_env
from bench.common.host import cpu_model
from bench.data.vocab import tokenizer_path
from bench.eval.metrics import TIE_RULE
from bench.eval.score_split import checkpoint_facts, data_manifest
from bench.family.identity import run_method
from bench.results.pins import pin_record

PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "nltk")


SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding bench/: a checkout, or site-packages
PROJECT_NAME = "daa-bench"


def _is_this_project(folder: Path) -> bool:
    """`folder` is daa-bench's own source tree: its pyproject.toml names this project."""
    try:
        return tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8")) \
            .get("project", {}).get("name") == PROJECT_NAME
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def git_state(source_root: Path = SOURCE_ROOT) -> dict:
    """Commit of the source tree and whether it has uncommitted changes; None unless the package runs
    from this project's own git checkout (an installed package inside a user's repository, say in
    its .venv/, would otherwise record that repository's commit)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=source_root, capture_output=True,
                                  text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    top = git("rev-parse", "--show-toplevel")
    ours = top is not None and Path(top).resolve() == source_root.resolve() and _is_this_project(source_root)
    commit = git("rev-parse", "HEAD") if ours else None
    changes = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": None if changes is None else bool(changes)}


def package_versions() -> dict:
    """Installed versions, read from package metadata (no heavy imports)."""
    versions = {"python": platform.python_version(), "daa-bench": bench.__version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_name(device) -> str:
    """`NVIDIA H100 80GB HBM3` on CUDA; `Intel(R) Xeon(R) ... (8 threads)` on CPU."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({torch.get_num_threads()} threads)"


def torch_threads() -> int:
    """The CPU threads torch's kernels use (eval's --threads, else torch's default)."""
    import torch

    return torch.get_num_threads()


def base_provenance() -> dict:
    """The run-independent part of a result's provenance."""
    return {
        **git_state(),
        "versions": package_versions(),
        "pins": pin_record(),  # installed versions against constraints.txt
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "command": sys.orig_argv,  # the interpreter command line, e.g. python -m bench eval ...
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "processes": world_info_from_env().world_size,  # torchrun's WORLD_SIZE, 1 for a plain run
        "tie_rule": TIE_RULE,
    }


def scores_provenance(evaluation, model: str) -> dict:
    """base_provenance() plus the facts of another model's score-file run (`eval --scores`):
    the file's sha256 stands where a checkpoint run has its checkpoints'."""
    return base_provenance() | {
        "model": model, "daa": False, "other_model": True, "scores": evaluation.scored.facts(), "checkpoints": [],
        "data": data_manifest(evaluation.split), "tokenizer": tokenizer_path(), "eccv": evaluation.eccv,
        "seconds": evaluation.seconds,
    }


def evaluation_provenance(evaluation, precision: str) -> dict:
    """base_provenance() plus the facts of one evaluation (a bench.eval.pipeline.Evaluation)."""
    scored = evaluation.scored
    scoring_seconds = sum(v for k, v in evaluation.seconds.items() if k.startswith("score_"))
    pairs = int(scored.sims.size) * sum(len(c.networks) for c in scored.checkpoints)
    return base_provenance() | {
        "device": str(evaluation.device), "device_name": device_name(evaluation.device), "precision": precision,
        "threads": torch_threads(),
        "model": scored.model_label, "daa": is_daa(scored.checkpoints),
        **dict(zip(("method", "noise"), run_method(scored.checkpoints, is_daa(scored.checkpoints)))),
        "checkpoints": checkpoint_facts(scored.checkpoints), "vocab": scored.vocab_paths,
        "data": data_manifest(evaluation.split), "mismatch": scored.mismatch, "tokenizer": tokenizer_path(),
        "eccv": evaluation.eccv,
        "seconds": evaluation.seconds,
        "pairs_scored": pairs, "pairs_per_second": pairs / scoring_seconds if scoring_seconds else None,
    }


def is_daa(checkpoints) -> bool:
    """Trained with the DAA loss: every checkpoint's opt has a non-zero daa_weight."""
    return all(getattr(c.opt, "daa_weight", 0) for c in checkpoints)
