"""Every command shown in README.md and docs/*.md is run here, so an example cannot rot unseen.

A shown command is run as far as it can be on fixtures, in seconds: `make` targets in dry-run mode
(`make -n`: the target and its variables exist and expand), `python -m bench ...` through the real
argument parser (every flag and value accepted), `python -m bench.<module>` and `examples/*.py` with
`--help` in a process of their own, and the worked example of docs/other-models.md verbatim, end to
end, in a tree laid out as after `make demo`. Usage synopses (`[--flag]`, `a | b`) have each flag
checked against the command's parser. Third-party commands are listed in NOT_OURS.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main as cli
from bench.data import synthetic

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
OURS = re.compile(r"^(\[?torchrun[^\]]*\]? ?|)(make|python3?|\.venv/bin/python) ")
NOT_OURS = ("python3 -m pip download",)  # pip's own command (docs/gpu-check.md), not this project's


def shown_commands() -> list[tuple[str, str]]:
    """(document, command) for each shell line of a fenced block, continuation lines joined,
    trailing comments removed."""
    found = []
    for doc in DOCUMENTS:
        for language, body in FENCE.findall(doc.read_text(encoding="utf-8")):
            if language not in ("", "sh", "bash", "shell"):
                continue
            for line in body.replace("\\\n", " ").splitlines():
                command = re.split(r"\s+#\s", line.strip(), maxsplit=1)[0].strip()
                if OURS.match(command) and not command.startswith(NOT_OURS):
                    found.append((doc.relative_to(REPO).as_posix(), " ".join(command.split())))
    return found


COMMANDS = shown_commands()


def is_synopsis(command: str) -> bool:
    return any(mark in command for mark in ("[", " | ", "...", "{"))


def bench_words(command: str) -> list[str]:
    """The arguments after `python -m bench` (torchrun's launcher and its options dropped)."""
    words = command.replace("[torchrun --nproc_per_node N] ", "").split()
    if words[0] == "torchrun":
        words = ["python", *words[words.index("-m"):]]
    return words[words.index("bench") + 1:]


def subparsers() -> dict:
    parser = cli.build_parser()
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


def test_the_documents_show_commands_of_every_kind():
    kinds = {command.split()[0] for _, command in COMMANDS}
    assert {"make", "python"} <= kinds and len(COMMANDS) > 30
    assert ("README.md", "make demo") in COMMANDS and ("README.md", "make test") in COMMANDS


@pytest.mark.parametrize("doc,command", [c for c in COMMANDS if c[1].startswith("make ") and not is_synopsis(c[1])],
                         ids=lambda value: value if " " in value else "")
def test_make_commands_expand(doc, command, tmp_path):
    words = shlex.split(command)[1:]
    words = [w.replace("path/to/own.pth.tar", str(REPO / "tests/fixtures/golden/f30k_saf.pth.tar")) for w in words]
    done = subprocess.run(["make", "-n", "--no-print-directory", "-o", "install", f"VENV={tmp_path}/venv", *words],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{doc}: {command}: {done.stderr[-1500:]}"
    assert done.stdout.strip(), f"{doc}: {command}: does nothing"


@pytest.mark.parametrize("doc,command", [c for c in COMMANDS if " -m bench " in f" {c[1]} "],
                         ids=lambda value: value if " " in value else "")
def test_bench_commands_parse(doc, command):
    """Each command line goes through the real parser; a synopsis has each of its flags checked."""
    words = bench_words(command)
    commands = subparsers()
    assert words[0] in commands, f"{doc}: {command}: no command {words[0]!r}"
    if is_synopsis(command):
        known = {option for action in commands[words[0]]._actions for option in action.option_strings}
        flags = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", " ".join(words)))
        assert flags <= known, f"{doc}: {command}: unknown {sorted(flags - known)}"
        return
    parser = cli.build_parser()
    parser.exit = parser.error = lambda *args, **kwargs: pytest.fail(f"{doc}: {command}: {args}")
    args = parser.parse_args(words)
    assert args.command == words[0]


@pytest.mark.parametrize("doc,command", [c for c in COMMANDS if re.search(r" (-m bench\.\w|examples/)", c[1])],
                         ids=lambda value: value if " " in value else "")
def test_module_and_example_commands_start(doc, command):
    words = command.split()
    program = words[:3] if words[1] == "-m" else words[:2]
    done = subprocess.run([sys.executable, *program[1:], "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{doc}: {command}: {done.stderr[-1500:]}"
    known = set(re.findall(r"--[a-z][\w-]*", done.stdout))
    assert set(re.findall(r"(?<![\w-])--[a-z][\w-]*", command)) <= known, f"{doc}: {command}"


def worked_example() -> list[str]:
    text = (REPO / "docs" / "other-models.md").read_text(encoding="utf-8")
    section = text[text.index("## A worked example on generated data"):]
    return [c for d, c in COMMANDS if d == "docs/other-models.md" and c in " ".join(section.replace("\\\n", " ")
                                                                                       .split())]


def test_the_worked_example_of_another_model_runs_verbatim(tmp_path, make_checkpoint):
    """docs/other-models.md's steps, as written, in a tree laid out as `make demo` leaves it."""
    root = tmp_path / "data" / "demo"
    synthetic.write_vocab(root / "vocab" / "f30k_precomp_vocab.json")
    synthetic.write_split(root / "f30k_precomp", "train", 200, rows_per_caption=False, seed=1)
    synthetic.write_split(root / "f30k_precomp", "test", 25, seed=3)
    (tmp_path / "results" / "demo").mkdir(parents=True)
    sgr, saf = make_checkpoint("SGR", "f30k_precomp", seed=1), make_checkpoint("SAF", "f30k_precomp", seed=2)
    assert cli.main(["eval", "--checkpoint", str(sgr), "--checkpoint", str(saf), "--protocol", "f30k-1k",
                     "--data-root", str(root), "--json", str(tmp_path / "results/demo/demo-sgraf.json")]) == 0
    steps = worked_example()
    assert len(steps) == 4 and steps[-1].startswith("python -m bench compare")
    for command in steps:
        words = shlex.split(command)
        if "examples/mean_pool_model.py" in words:
            words = [*words, "--steps", "20"]  # the shown 300 steps, shortened; the same code path
            words[1] = str(REPO / words[1])
        done = subprocess.run([sys.executable, *words[1:]], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "BENCH_QUIET": "1"})
        assert done.returncode == 0, f"{command}: {done.stderr[-1500:]}"
    assert (tmp_path / "results" / "compare-demo-sgraf-vs-demo-meanpool.csv").is_file()  # beside RUN_B
