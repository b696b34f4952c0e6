"""Every document the project points its users to ships with it: each `.md` named in the README,
the Makefile, `--help` or a docstring exists in the repository (outputs such as summary.md aside)."""

import ast
import re
from pathlib import Path

from bench.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
MD_NAME = re.compile(r"[\w./<>-]*\.md\b")
# Files the commands write, not documents: report's summary, table's --markdown output.
OUTPUTS = re.compile(r"(^|/)(summary|table(\d|<N>|N))\.md$")


def _help_texts() -> list[str]:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    return [parser.format_help(), *(command.format_help() for command in commands.values())]


def _docstrings() -> list[str]:
    texts = []
    for path in sorted((REPO / "bench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                texts.append(ast.get_docstring(node) or "")
    return texts


def _exists(name: str) -> bool:
    """A name with a folder is relative to the repository root; a bare one may also be in docs/."""
    return (REPO / name).is_file() or ("/" not in name and (REPO / "docs" / name).is_file())


def test_every_named_document_exists():
    sources = {"README.md": [(REPO / "README.md").read_text(encoding="utf-8")],
               "Makefile": [(REPO / "Makefile").read_text(encoding="utf-8")],
               "--help": _help_texts(), "docstrings": _docstrings()}
    for doc in sorted((REPO / "docs").glob("*.md")):
        sources[str(doc.relative_to(REPO))] = [doc.read_text(encoding="utf-8")]
    missing, named = [], set()
    for where, texts in sources.items():
        for name in {n for text in texts for n in MD_NAME.findall(text)}:
            if OUTPUTS.search(name):
                continue
            named.add(name)
            if not _exists(name if not where.startswith("docs/") or "/" in name else f"docs/{name}"):
                missing.append(f"{where}: {name}")
    assert not missing, "documents named but not in the repository: " + ", ".join(sorted(missing))
    assert {"docs/model.md", "docs/evaluation.md", "docs/training.md"} <= named  # the scan sees them


def test_documents_link_each_other_by_relative_path():
    """Links inside docs/ are relative to docs/, so they work when the files are read on a forge."""
    for doc in sorted((REPO / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#]+\.md)\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).is_file(), f"{doc.name} links {target}"


def test_readme_download_sizes_agree_with_the_registry():
    from bench.cli.download import human_size
    from bench.download import registry

    files = {}
    for item in registry.ITEMS:
        files[item.filename] = max(files.get(item.filename, 0), item.approx_bytes)
    rest = sum(size for name, size in files.items() if name != "data.zip")
    costs = (REPO / "docs" / "reproducing.md").read_text(encoding="utf-8")
    assert f"{human_size(files['data.zip'])} `data.zip` + {human_size(rest)} of checkpoints and annotations" in costs
    assert f"about {human_size(rest)[1:]}" in (REPO / "docs" / "downloads.md").read_text(encoding="utf-8")
