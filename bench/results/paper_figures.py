"""The published figures we compare against (bench/reference/paper-figures.csv) and their tolerances.

Sources, in the order a released checkpoint should be held to them:
DAA checkpoints: readme-full (the authors' README), authors-eval-log (their evaluation log,
also per fold), then the paper's tables; SGRAF baselines: sgraf-readme, then the paper's
no-DAA rows. The family's other methods (column `method`, at the `noise` ratio they were trained
at) are held only to their own paper's figures (FAMILY_SOURCES), never to DAA's or SGRAF's; a
method without a confirmed figure has none (docs/family.md).
Named `paper_figures` to stay apart from bench.model.reference_loop (the per-caption loop).
"""

import csv
import functools
from dataclasses import dataclass
from importlib import resources

from bench.eval.protocols import DIRECTIONS

DAA_SOURCES = ("readme-full", "authors-eval-log", "paper-table1", "paper-table3")
BASELINE_SOURCES = ("sgraf-readme", "paper-table1", "paper-table3")
# NCR's paper (Tables 1 and 2, images in its repository), then DECL's README (NCR at COCO 5K, secondary)
FAMILY_SOURCES = ("ncr-paper-table1", "ncr-paper-table2", "decl-readme-secondary")
PAPER_METHODS = ("DAA", "SGRAF")  # the methods of the DAA paper's own tables
# docs/evaluation.md: recalls are printed to 0.1, ASP moves with tie-breaking, PMRP slightly.
TOLERANCES = {"r1": 0.1, "r5": 0.1, "r10": 0.1, "medr": 0.1, "meanr": 0.1, "asp": 0.5, "pmrp": 0.2,
              "rsum": 0.6}
RSUM_PARTS = tuple((d, f"r{k}") for d in DIRECTIONS for k in (1, 5, 10))
WHOLE_PROTOCOL_FOLDS = ("mean", "all")  # our labels for a protocol's headline figure


def tolerance_text() -> str:
    """The tolerances in words, e.g. "recalls 0.1, ASP 0.5, PMRP 0.2, rsum 0.6" (README says the same)."""
    recalls = {TOLERANCES[m] for m in ("r1", "r5", "r10")}
    parts = [f"recalls {recalls.pop()}"] if len(recalls) == 1 else []
    parts += [f"{label} {TOLERANCES[m]}" for m, label in (("asp", "ASP"), ("pmrp", "PMRP"), ("rsum", "rsum"))]
    return ", ".join(parts)


@dataclass(frozen=True)
class Reference:
    """One published figure matched to one of ours."""

    value: float
    source: str
    tolerance: float


@functools.lru_cache(maxsize=1)
def _rows() -> tuple[dict, ...]:
    text = resources.files("bench").joinpath("reference/paper-figures.csv").read_text("utf-8")
    return tuple(csv.DictReader(text.splitlines()))


@functools.lru_cache(maxsize=1)
def _figures() -> dict[tuple, float]:
    """(source, protocol, model, daa, direction, metric, fold) -> published value, for the DAA paper's
    tables (DAA, SGRAF and the baselines it printed); the family's methods are in _family_figures."""
    return {(row["source"], row["protocol"], row["model"], row["daa"] == "yes", row["direction"],
             row["metric"], row["fold"]): float(row["value"])
            for row in _rows() if row["source"] not in FAMILY_SOURCES}


@functools.lru_cache(maxsize=1)
def _family_figures() -> dict[tuple, float]:
    """(source, protocol, model, method, noise, direction, metric) -> a family paper's figure."""
    return {(row["source"], row["protocol"], row["model"], row["method"], row["noise"], row["direction"],
             row["metric"]): float(row["value"]) for row in _rows() if row["source"] in FAMILY_SOURCES}


def family_reference(protocol: str, model: str, method: str, noise: str | None, direction: str,
                     metric: str) -> Reference | None:
    """A family method's own paper's figure at its noise ratio; rsum sums the six recalls."""
    if metric not in TOLERANCES or noise is None:
        return None
    figures = _family_figures()
    for source in FAMILY_SOURCES:
        parts = RSUM_PARTS if metric == "rsum" else ((direction, metric),)
        values = [figures.get((source, protocol, model, method, noise, d, m)) for d, m in parts]
        if None not in values:
            return Reference(round(sum(values), 4), f"{source} (sum)" if metric == "rsum" else source,
                             TOLERANCES[metric])
    return None


def _published(source: str, key: tuple, fold: str) -> float | None:
    """A figure of one source; a blank fold in the table means the protocol's headline figure."""
    figures = _figures()
    value = figures.get((source, *key, fold))
    if value is None and fold in WHOLE_PROTOCOL_FOLDS:
        value = figures.get((source, *key, ""))
    return value


def find_reference(protocol: str, model: str, daa: bool, direction: str, metric: str,
                   fold: str) -> Reference | None:
    """The first source (in priority order) that published this figure; rsum sums six recalls."""
    if metric not in TOLERANCES:
        return None
    for source in DAA_SOURCES if daa else BASELINE_SOURCES:
        parts = RSUM_PARTS if metric == "rsum" else ((direction, metric),)
        values = [_published(source, (protocol, model, daa, d, m), fold) for d, m in parts]
        if None not in values:
            label = f"{source} (sum)" if metric == "rsum" else source
            return Reference(round(sum(values), 4), label, TOLERANCES[metric])
    return None


def status(value: float, reference: Reference | None) -> str:
    """ok / off / no-reference; the small epsilon keeps 78.1 - 78.0 = 0.0999... inside 0.1."""
    if reference is None:
        return "no-reference"
    return "ok" if abs(value - reference.value) <= reference.tolerance + 1e-9 else "off"
