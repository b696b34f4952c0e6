"""What a newcomer checks first: a licence, a citation that names the papers, pinned versions."""

import hashlib
import re
from pathlib import Path

import bench

REPO = Path(__file__).resolve().parents[1]


def test_licence_is_the_full_apache_2_text():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 150  # the terms, not a stub
    assert 'license = "Apache-2.0"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_citation_names_daa_sgraf_and_this_version():
    cff = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(r"^version: (\S+)$", cff, re.MULTILINE).group(1) == bench.__version__
    assert re.search(r"^license: Apache-2.0$", cff, re.MULTILINE)
    daa = "A Differentiable Semantic Metric Approximation in Probabilistic Embedding for Cross-Modal Retrieval"
    sgraf = "Similarity Reasoning and Filtration for Image-Text Matching"
    assert daa in cff and sgraf in cff
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    citing = readme[readme.index("## Citing"):]
    assert daa in citing and sgraf in citing and "CITATION.cff" in citing and "LICENSE" in citing


def test_provenance_records_the_pins_and_what_differs_from_them(tmp_path):
    from bench.results import provenance
    from bench.results.pins import installed_version, pin_record

    numpy_version = installed_version("numpy")
    path = tmp_path / "constraints.txt"
    path.write_text(f"# comment\nnumpy=={numpy_version}\nscipy==0.0.1\nno-such-package==1.0\n\n", encoding="utf-8")
    record = pin_record(path)
    assert record["pinned"] == 3 and record["differs"] == {"scipy": installed_version("scipy"), "no-such-package": None}
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert pin_record(tmp_path / "absent.txt") is None
    recorded = provenance.base_provenance()["pins"]
    assert recorded["file"] == "constraints.txt" and recorded["pinned"] == len(pin_lines())


def pin_lines() -> list[str]:
    return [line for line in (REPO / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
