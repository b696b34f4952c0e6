"""Matching figures to the paper, status logic, atomic CSV + JSON, the terminal table, eval end to end."""

import csv
import json
import shutil
import subprocess

import pytest
from rich.console import Console

from bench.cli.main import main
from bench.results.paper_figures import Reference, find_reference, status
from bench.results.rows import FIELDS, csv_text, figure_rows, print_table
from bench.results.run_result import RunResult


def metrics(r1=78.0, asp=68.5, **extra) -> dict:
    direction = {"r1": r1, "r5": 95.8, "r10": 98.6, "medr": 1.0, "meanr": 1.8, "asp": asp, **extra}
    return {"i2t": dict(direction), "t2i": dict(direction), "rsum": 2 * (r1 + 95.8 + 98.6)}


@pytest.mark.parametrize("key, source, value", [
    (("coco-1k", "SGR", True, "i2t", "r1", "mean"), "readme-full", 78.0),
    (("coco-1k", "SGR", True, "i2t", "r1", "0"), "authors-eval-log", 80.2),
    (("coco-1k", "SGR", True, "t2i", "meanr", "mean"), "authors-eval-log", 9.1),
    (("coco-5k", "SAF", True, "t2i", "medr", "all"), "authors-eval-log", 2.0),
    (("f30k-1k", "SGRAF", True, "t2i", "asp", "all"), "readme-full", 59.2),
    (("coco-1k", "SAF", False, "i2t", "r1", "mean"), "sgraf-readme", 78.0),
    (("coco-1k", "SAF", False, "i2t", "asp", "mean"), "paper-table1", 54.7),
    (("coco-5k", "SGR", True, "i2t", "pmrp", "all"), "readme-full", 35.3),
])
def test_reference_priority(key, source, value):
    reference = find_reference(*key)
    assert (reference.source, reference.value) == (source, value)


def test_rsum_reference_sums_six_recalls_of_one_source():
    reference = find_reference("f30k-1k", "SGR", True, "both", "rsum", "all")
    assert reference == Reference(round(73.8 + 92.9 + 96.3 + 56.6 + 80.7 + 84.9, 4), "readme-full (sum)", 0.6)


@pytest.mark.parametrize("key", [
    ("f30k-1k", "SGR", True, "i2t", "medr", "all"),  # nobody published it
    ("coco-5k", "SGR", True, "i2t", "eccv_r1", "all"),  # beyond the paper
    ("coco-1k", "SGR", False, "i2t", "r1", "2"),  # baselines have no per-fold figures
])
def test_missing_references(key):
    assert find_reference(*key) is None


@pytest.mark.parametrize("value, expected", [(78.05, "ok"), (78.1, "ok"), (77.9, "ok"), (78.11, "off"),
                                             (77.5, "off")])
def test_status_tolerance(value, expected):
    assert status(value, Reference(78.0, "readme-full", 0.1)) == expected
    assert status(value, None) == "no-reference"


def test_rows_cover_headline_folds_and_extra_metrics():
    evaluation = {"metrics": metrics(pmrp=46.4, eccv_r1=40.0), "folds": [metrics(r1=80.2)] * 5}
    rows = figure_rows("run", "coco-1k", "SGR", "daa_coco_sgr.pth.tar", True, evaluation)
    assert len(rows) == 6 * 13 + 4
    assert all(list(row) == list(FIELDS) for row in rows)
    by_key = {(r["fold"], r["direction"], r["metric"]): r for r in rows}
    assert by_key["mean", "i2t", "pmrp"]["reference"] == 46.4
    assert by_key["mean", "i2t", "pmrp"]["status"] == "ok"
    assert by_key["mean", "t2i", "eccv_r1"]["status"] == "no-reference"
    assert by_key["0", "i2t", "r1"]["reference_source"] == "authors-eval-log"
    assert by_key["1", "i2t", "r1"]["delta"] == pytest.approx(80.2 - 76.3)
    assert by_key["1", "i2t", "r1"]["status"] == "off"
    assert by_key["mean", "both", "rsum"]["dataset"] == "coco"


def test_rows_carry_the_interval_and_whether_the_paper_lies_inside_it():
    intervals = {"mean": {("i2t", "r1"): (77.0, 79.0), ("t2i", "r1"): (78.5, 79.5)}}
    rows = figure_rows("run", "coco-1k", "SGR", "ckpt", True, {"metrics": metrics()}, intervals)
    by_key = {(r["direction"], r["metric"]): r for r in rows}
    assert (by_key["i2t", "r1"]["ci_low"], by_key["i2t", "r1"]["ci_high"]) == (77.0, 79.0)
    assert by_key["i2t", "r1"]["within_ci"] is True  # paper 78.0
    assert by_key["t2i", "r1"]["within_ci"] is False
    assert by_key["i2t", "r5"]["ci_low"] is None and by_key["i2t", "r5"]["within_ci"] is None
    console = Console(record=True, width=150)
    print_table(rows, console)
    assert "78.00 [77.00, 79.00]" in console.export_text()


def test_a_single_point_interval_never_says_the_paper_lies_outside():
    intervals = {"mean": {("i2t", "r1"): (80.0, 80.0), ("t2i", "r1"): (78.5, 79.5)}}
    rows = figure_rows("run", "coco-1k", "SGR", "ckpt", True, {"metrics": metrics()}, intervals)
    by_key = {(r["direction"], r["metric"]): r for r in rows}
    assert by_key["i2t", "r1"]["within_ci"] is None and by_key["t2i", "r1"]["within_ci"] is False


def test_write_results_writes_both_files(tmp_path):
    rows = figure_rows("run", "f30k-1k", "SAF", "ck", True, {"metrics": metrics()})
    result = RunResult("f30k-1k", metrics(), {"tie_rule": "index"}, rows)
    result.write(csv_path=tmp_path / "out" / "run.csv", json_path=tmp_path / "out" / "run.json")
    document = json.loads((tmp_path / "out" / "run.json").read_text())
    assert document["protocol"] == "f30k-1k" and document["provenance"] == {"tie_rule": "index"}
    assert document["figures"] == rows
    with open(tmp_path / "out" / "run.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(rows) and table[3]["metric"] == "medr" and table[3]["reference"] == ""
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run.csv", "run.json"]


def test_a_failed_write_leaves_old_files_and_no_temporaries(tmp_path):
    old = csv_text([]) + "old\n"  # an earlier results CSV: the kind this write may replace
    (tmp_path / "run.csv").write_text(old)
    rows = figure_rows("run", "f30k-1k", "SAF", "ck", True, {"metrics": metrics()})
    with pytest.raises(TypeError):
        RunResult("f30k-1k", metrics(), {"x": object()}, rows).write(csv_path=tmp_path / "run.csv",
                                                                      json_path=tmp_path / "run.json")
    assert (tmp_path / "run.csv").read_text() == old
    assert [p.name for p in tmp_path.iterdir()] == ["run.csv"]


def test_table_shows_ours_paper_delta_and_status():
    console = Console(record=True, width=120)
    rows = figure_rows("run", "coco-5k", "SGR", "daa_coco_sgr.pth.tar", True,
                       {"metrics": metrics(r1=56.5, asp=60.0)})
    print_table(rows, console)
    text = console.export_text()
    assert "SGR on coco-5k (daa_coco_sgr.pth.tar)" in text
    assert "56.50" in text and "-8.40" in text and "off" in text and "ok" in text


def test_eval_writes_csv_and_json(data_root, make_checkpoint, tmp_path):
    checkpoint = make_checkpoint("SAF", "f30k_precomp")
    out = tmp_path / "results"
    code = main(["eval", "--checkpoint", str(checkpoint), "--protocol", "f30k-1k", "--device", "cpu",
                 "--data-root", str(data_root), "--json", str(out / "r.json"), "--csv", str(out / "r.csv")])
    assert code == 0
    document = json.loads((out / "r.json").read_text())
    assert set(document["metrics"]["i2t"]) >= {"r1", "r5", "r10", "medr", "meanr", "asp"}
    assert "rsum" in document["metrics"] and document["provenance"]["tie_rule"]
    rows = list(csv.DictReader((out / "r.csv").open()))
    assert {r["metric"] for r in rows} >= {"r1", "asp", "rsum"}
    assert len(rows) == len(document["figures"])
    for row, figure in zip(rows, document["figures"]):
        assert float(row["value"]) == figure["value"]
        # a random-weight model is far from every published figure: off where the paper has one
        assert row["status"] == ("off" if figure["reference"] is not None else "no-reference")
        if figure["reference"] is not None:
            assert figure["delta"] == pytest.approx(figure["value"] - figure["reference"], abs=1e-3)
    assert any(r["status"] == "off" for r in rows)


def test_base_provenance_names_code_versions_and_tie_rule(monkeypatch):
    import numpy

    from bench.results.provenance import base_provenance

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    provenance = base_provenance()
    assert provenance["versions"]["numpy"] == numpy.__version__
    assert provenance["git_commit"] is None or len(provenance["git_commit"]) == 40
    assert "lower index first" in provenance["tie_rule"] and provenance["processes"] == 1
    json.dumps(provenance)  # serialisable as it is
    monkeypatch.setenv("WORLD_SIZE", "4")  # as torchrun --nproc_per_node 4 sets it
    assert base_provenance()["processes"] == 4


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_commit_is_recorded_only_for_this_projects_own_tree(tmp_path):
    from bench.results.provenance import git_state

    def repository(folder, pyproject):
        folder.mkdir(parents=True)
        (folder / "pyproject.toml").write_text(pyproject)
        commit = ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]
        for command in (["init", "-q"], ["add", "."], commit):
            subprocess.run(["git", *command], cwd=folder, check=True, capture_output=True)

    repository(tmp_path / "user", '[project]\nname = "someone-elses"\n')
    site = tmp_path / "user" / ".venv" / "lib" / "site-packages"  # an installed bench inside the user's repo
    site.mkdir(parents=True)
    assert git_state(site) == {"git_commit": None, "git_dirty": None}
    assert git_state(tmp_path / "user") == {"git_commit": None, "git_dirty": None}  # not daa-bench
    repository(tmp_path / "checkout", '[project]\nname = "daa-bench"\n')
    state = git_state(tmp_path / "checkout")
    assert len(state["git_commit"]) == 40 and state["git_dirty"] is False
