"""The command line as a contract: fast help without torch, defaults shown, --version, exit codes."""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import bench
from bench.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("eval", "download", "report", "table", "plot", "compare", "order", "train", "demo")
HEAVY = ("torch", "sklearn", "gdown", "matplotlib")

HELP_PROBE = """
import sys
from bench.cli.main import main
for command in sys.argv[1:]:
    try:
        main([*command.split(), "--help"])
    except SystemExit as done:
        assert done.code == 0, (command, done.code)
print("HEAVY", *sorted(m for m in {HEAVY!r} if m in sys.modules))
"""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_registered():
    assert set(_subparsers(cli.build_parser())) == set(COMMANDS)


def test_help_imports_no_torch():
    commands = ["", *COMMANDS]
    probe = HELP_PROBE.replace("{HEAVY!r}", repr(HEAVY))
    done = subprocess.run([sys.executable, "-c", probe, *commands], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "HEAVY"


def test_python_dash_m_help_lists_the_commands():
    done = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and all(command in done.stdout for command in COMMANDS)


def test_every_option_has_help_and_shows_its_default():
    for name, parser in _subparsers(cli.build_parser()).items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {'/'.join(action.option_strings) or action.dest}: no help text"
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: False)" not in text, name
    assert "(default: auto)" in _subparsers(cli.build_parser())["eval"].format_help()


def test_version_has_one_source(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"daa-bench {bench.__version__}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bench.__version__"}


def test_declared_dependencies_are_what_the_code_imports():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = {d.split(">")[0].split("=")[0].split("<")[0].strip() for d in project["project"]["dependencies"]}
    import_names = {"scikit-learn": "sklearn"}
    sources = "\n".join(p.read_text() for p in (REPO / "bench").rglob("*.py"))
    for package in declared:
        module = import_names.get(package, package)
        assert f"import {module}" in sources or f"from {module}" in sources, f"{package} is declared, not imported"
    for module in ("scipy", "requests", "pandas", "h5py"):
        assert module in declared


def test_torch_floor_is_stated_once_and_matches_the_makefile():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    floor = next(d for d in project["project"]["dependencies"] if d.startswith("torch"))
    assert floor == "torch>=2.5"
    assert f"TORCH_SPEC ?= {floor}" in (REPO / "Makefile").read_text()
    assert "torch 2.5" in (REPO / "README.md").read_text()


def test_no_command_and_unknown_command_exit_2(capsys):
    for argv in ([], ["nonsense"]):
        with pytest.raises(SystemExit) as done:
            cli.main(argv)
        assert done.value.code == 2
    capsys.readouterr()


def test_strict_exits_1_when_a_figure_is_off(golden_dir, tmp_path, capsys):
    args = ["eval", "--checkpoint", str(golden_dir / "f30k_sgr.pth.tar"), "--protocol", "f30k-1k",
            "--data-root", str(golden_dir), "--device", "cpu", "--json", str(tmp_path / "r.json")]
    assert cli.main(args) == 0  # random weights are far off the paper: only --strict fails on that
    assert cli.main([*args, "--strict"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--strict" in err[0] and "off" in err[0]
    assert (tmp_path / "r.json").is_file()  # the result is still written, for the CI to inspect


def test_strict_exits_0_when_nothing_is_off(golden_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("bench.results.rows.find_reference", lambda *args: None)
    assert cli.main(["eval", "--checkpoint", str(golden_dir / "f30k_sgr.pth.tar"), "--protocol", "f30k-1k",
                     "--data-root", str(golden_dir), "--device", "cpu", "--strict"]) == 0


def plan_install(tmp_path: Path, *assignments: str) -> list[str]:
    """`make -n install` as a user with no settings of their own would get it: the suite itself often runs under
    `make test` (CI exports TORCH_SPEC; make exports MAKEFLAGS), and those must not leak into the plan."""
    settings = ("TORCH_SPEC", "TORCH_INDEX_URL", "CONSTRAINTS", "VENV", "PY", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {key: value for key, value in os.environ.items() if key not in settings}
    return subprocess.run(["make", "-n", "--no-print-directory", "install", f"VENV={tmp_path / 'venv'}",
                           *assignments], cwd=REPO, env=env, capture_output=True, text=True,
                          check=True).stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_install_passes_the_torch_index_to_the_torch_step_only(tmp_path):
    index = "https://download.pytorch.org/whl/cpu"
    planned = plan_install(tmp_path, f"TORCH_INDEX_URL={index}")
    pip_lines = [line for line in planned if "pip install" in line]
    torch_steps = [line for line in pip_lines if '"torch' in line]
    assert len(torch_steps) == 1 and f'--index-url "{index}"' in torch_steps[0]
    assert all("--index-url" not in line for line in pip_lines if line not in torch_steps)
    assert sum(line.startswith("echo") for line in planned) == 4  # one line per install step
    assert not any("--index-url" in line for line in plan_install(tmp_path))


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_install_pins_every_package_unless_told_not_to(tmp_path):
    """constraints.txt applies to both pip steps; CONSTRAINTS= empties it; a TORCH_SPEC of the user's drops its
    torch pin (which would contradict it)."""
    effective = f"{tmp_path / 'venv'}/constraints.txt"
    pinned = plan_install(tmp_path)
    assert sum(f"-c {effective}" in line for line in pinned if "pip install" in line and "upgrade pip" not in line) == 2
    assert f"grep -v '^#' constraints.txt > {effective}" in pinned
    assert f"grep -v '^torch==' constraints.txt > {effective}" in plan_install(tmp_path, "TORCH_SPEC=torch==2.5.1")
    assert f"true > {effective}" in plan_install(tmp_path, "CONSTRAINTS=")
    lines = (REPO / "constraints.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert {"torch", "numpy", "scipy", "pytest", "ruff"} <= pins.keys() and "+" not in pins["torch"]


def test_download_help_shows_one_example_per_line(capsys):
    with pytest.raises(SystemExit):
        cli.main(["download", "--help"])
    out = capsys.readouterr().out
    examples = [line.strip() for line in out.splitlines() if line.strip().startswith("python -m bench download")]
    from bench.cli import download  # the module's usage block: one example per line, each shown as written

    written = [line.strip() for line in download.__doc__.splitlines()[1:] if line.strip().startswith("python -m")]
    assert examples == written and len(examples) >= 4
    assert all(example.count("python -m bench") == 1 for example in examples)


def test_every_command_describes_itself(capsys):
    for name, parser in _subparsers(cli.build_parser()).items():
        assert parser.description, f"{name} --help has no description"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_help_shows_folders_not_make_syntax():
    listed = subprocess.run(["make", "-s", "help", "RESULTS=out"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout
    assert "$(" not in listed and "out/trained_f30k_sgr_f30k-1k" in listed and "out/demo/" in listed


def test_help_works_under_python_OO_which_strips_docstrings():
    code = ("from bench.cli.main import build_parser\n"
            "parser = build_parser()\n"
            "commands = next(a for a in parser._actions if a.__class__.__name__ == '_SubParsersAction').choices\n"
            "print(len([p.format_help() for p in commands.values()]), parser.format_help().splitlines()[2])\n")
    done = subprocess.run([sys.executable, "-OO", "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split(" ", 1) == [str(len(COMMANDS)), "`daa-bench COMMAND --help` for each command.\n"]
