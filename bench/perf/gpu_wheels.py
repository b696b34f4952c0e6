"""The wheels `make gpu-check` takes from `.whl/` on a GPU node that lacks them: NLTK and pytest.

    make gpu-wheels          # on a machine that reaches PyPI: download them for the node's Python (3.12)
    make gpu-check           # on the node, offline: unpacks only what its python cannot import

A GPU node's system python has torch and the scientific stack but often not NLTK, nor defusedxml
(which NLTK imports), nor pytest. `download` asks pip for those and what they require, for the
node's Python version and platform. On the node a wheel is unpacked into `.whl/site` only when
none of its top-level modules is importable there, so nothing the node has is replaced or
shadowed (its pytest plugins keep loading against its own pytest). Nothing is upgraded.

    python -m bench.perf.gpu_wheels --dest .whl --python-version 3.12     # what `make gpu-wheels` runs
"""

import argparse
import importlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from bench.perf.gpu_env import one_line

REQUIREMENTS = ("nltk", "defusedxml", "pytest")  # defusedxml: NLTK imports it; older metadata omit it
PLATFORMS = ("manylinux_2_17_x86_64", "manylinux2014_x86_64")  # a linux x86-64 node (regex is compiled)
SITE = "site"  # the folder under the wheels' folder that holds what was unpacked


def download_command(dest: Path, python_version: str, requirements=REQUIREMENTS) -> list[str]:
    """pip's command line: binary wheels, with their requirements, for another Python and platform."""
    platforms = [option for platform in PLATFORMS for option in ("--platform", platform)]
    return [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--python-version", python_version,
            "--implementation", "cp", *platforms, "--dest", str(dest), *requirements]


def top_level_modules(wheel: Path) -> set[str]:
    """The modules a wheel puts at the top of the path (packages, modules, extension modules)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    modules = set()
    for name in names:
        first, _, rest = name.partition("/")
        if first.endswith((".dist-info", ".data")):
            continue
        if rest:
            modules.add(first)
        elif first.endswith((".py", ".so", ".pyd")):
            modules.add(first.split(".")[0])
    return modules


def distribution(wheel: Path) -> str:
    """`nltk 3.9.1` from `nltk-3.9.1-py3-none-any.whl`."""
    name, version = wheel.name.split("-")[:2]
    return f"{name} {version}"


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def unpack(wheel: Path, site: Path) -> None:
    """A wheel's files into `site`, as `pip install --target` lays them out for import
    (a `<name>.data/purelib` or `platlib` folder's contents go to the top)."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            parts = member.filename.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue  # scripts, headers, data files: nothing an import needs
                parts = parts[2:]
            if member.is_dir() or ".." in parts:
                continue
            target = site.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))


def install_missing(wheels: Path) -> list[str]:
    """Unpack into `wheels`/site, emptied first, each wheel none of whose top-level modules this
    python can import (from outside that folder); returns the distributions taken from the wheels."""
    site = wheels / SITE
    shutil.rmtree(site, ignore_errors=True)  # what an earlier run took may be on the node by now
    taken = []
    for wheel in sorted(wheels.glob("*.whl")):
        modules = top_level_modules(wheel)
        if not modules or any(importable(module) for module in modules):
            continue  # the node has it: keep the node's own
        unpack(wheel, site)
        taken.append(distribution(wheel))
    importlib.invalidate_caches()
    return taken


def import_problem(module: str) -> str | None:
    """Why `module` cannot be imported (one line), None when it can: an import, not a look-up,
    so that a package whose own imports fail (NLTK without defusedxml) counts as missing."""
    try:
        importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 - any failure to import means the parts cannot use it
        return one_line(error)
    return None


def missing_modules(needed: list[str], wheels: Path) -> dict[str, str]:
    """{module: why it is missing} for the optional modules the parts need (NLTK, pytest)."""
    problems = {module: import_problem(module) for module in needed}
    missing = {module: problem for module, problem in problems.items() if problem}
    if not missing:
        return {}
    if not wheels.is_dir() or not any(wheels.glob("*.whl")):
        how = f"no wheels in {wheels}/ to take it from (`make gpu-wheels`, docs/gpu-check.md)"
    else:
        how = f"the wheels in {wheels}/ do not provide it for Python {platform.python_version()}"
    return {module: f"{module} is not importable ({problem}): {how}" for module, problem in missing.items()}


def take_wheels(wheels: Path) -> list[str]:
    """Unpack into `wheels`/site what this python lacks and put that folder on the path of this process
    and its children (it holds nothing the python has, so it shadows nothing); returns what it took."""
    taken = install_missing(wheels) if wheels.is_dir() else []
    site = wheels / SITE
    if site.is_dir():
        sys.path.insert(0, str(site))
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
        importlib.invalidate_caches()
    return taken


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-wheels", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=Path(".whl"))
    parser.add_argument("--python-version", default="3.12", help="the GPU node's python (major.minor)")
    args = parser.parse_args(argv)
    command = download_command(args.dest, args.python_version)
    print(" ".join(command), file=sys.stderr)
    return subprocess.call(command)


if __name__ == "__main__":
    raise SystemExit(main())
