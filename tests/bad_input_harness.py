"""What every bad-input test asserts, in one place: exit status, one stderr line, no traceback,
every file of the tree unchanged, no process left behind.

    before = tree_state(root)
    err = refused(main(args), capsys, "--csv")
    assert tree_state(root) == before
"""

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from bench.data import synthetic
from bench.model import random_weights

N_IMAGES = 10
VOCAB = len(synthetic.vocabulary_words())
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Case:
    """`setup` spoils the copy at root and returns the command line; `names` must be in the message."""

    id: str
    setup: Callable[[Path], list[str]]
    names: str


def write_base(root: Path) -> Path:
    """A valid tree: f30k test split, both vocabularies, F30K SGR/SAF and a COCO SAF checkpoint."""
    synthetic.write_split(root / "data" / "f30k_precomp", "test", N_IMAGES, seed=3)
    for name in ("f30k_precomp", "coco_precomp"):
        synthetic.write_vocab(root / "data" / "vocab" / f"{name}_vocab.json")
    for data_name, module in (("f30k_precomp", "SGR"), ("f30k_precomp", "SAF"), ("coco_precomp", "SAF")):
        config = random_weights.small_config(module, data_name, VOCAB)
        random_weights.write_checkpoint(root / "models" / f"{data_name[:4]}_{module.lower()}.pth.tar", config)
    (root / "results").mkdir()
    return root


def eval_args(root: Path, *extra: str, checkpoints=("f30k_sgr",), outputs=True) -> list[str]:
    args = ["eval", "--protocol", "f30k-1k", "--data-root", str(root / "data"), "--device", "cpu"]
    for name in checkpoints:
        args += ["--checkpoint", str(root / "models" / f"{name}.pth.tar")]
    if outputs:
        args += ["--json", str(root / "results" / "run.json"), "--csv", str(root / "results" / "run.csv"),
                 "--save-sims", str(root / "results" / "sims.npy")]
    return args + list(extra)


def run_args(root: Path, name: str, *extra: str, checkpoints=("f30k_sgr",)) -> list[str]:
    """eval_args for another run beside the finished one: results/<name>.json, .csv and .npy."""
    args = eval_args(root, *extra, checkpoints=checkpoints)
    for flag, suffix in (("--json", ".json"), ("--csv", ".csv"), ("--save-sims", ".npy")):
        args = replace_arg(args, flag, root / "results" / f"{name}{suffix}")
    return args


def replace_arg(args: list[str], flag: str, value) -> list[str]:
    args = list(args)
    args[args.index(flag) + 1] = str(value)
    return args


def tree_state(root: Path) -> dict[str, str]:
    """Every file under root (hidden ones included) with its sha256; links by their target, other
    non-regular files (FIFOs) by their kind."""
    state = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            state[key] = "link:" + os.readlink(path)
        elif path.is_file():
            state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif not path.is_dir():
            state[key] = "special:" + oct(path.stat().st_mode)
    return state


def one_line(err: str, names: str) -> str:
    """The single stderr line, checked to carry no traceback and to name the culprit."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and names in lines[0], lines[0]
    return lines[0]


def live_children() -> dict[int, list[int]]:
    """Parent pid -> its live (not zombie) children, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def child_pids() -> set[int]:
    """Live processes whose parent is this one (a loader worker or helper left behind)."""
    return set(live_children().get(os.getpid(), []))


def descendants(pid: int) -> set[int]:
    """Live processes below `pid` (a command's loader workers)."""
    children, found, todo = live_children(), set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def assert_refused(main, args: list[str], root: Path, capsys, names: str, status: int = 2) -> str:
    """Run `main(args)`: exit `status`, one stderr line naming `names`, the tree unchanged, no process left."""
    before, children = tree_state(root), child_pids()
    capsys.readouterr()
    assert main(args) == status
    line = one_line(capsys.readouterr().err, names)
    assert tree_state(root) == before  # no output, no temporary, every input unchanged
    assert child_pids() <= children
    return line


def run_bench(args: list[str], timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    """`python -m bench ARGS` in a child process (signals, hangs, what must not reach a terminal)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, **popen)


def dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    return int(finished.stdout)


def ids(cases: list[Case]) -> list[str]:
    assert len({case.id for case in cases}) == len(cases), "every case is named once"
    return [case.id for case in cases]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return write_base(tmp_path_factory.mktemp("base"))


@pytest.fixture
def work(base, tmp_path) -> Path:
    """A copy of `base` for one test to spoil."""
    root = tmp_path / "w"
    shutil.copytree(base, root, symlinks=True)
    return root
