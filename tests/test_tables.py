"""The paper's baseline-vs-DAA tables and the per-run bar chart, from synthetic runs."""

import json
import os
import sys

import pytest

from bench.cli.main import main
from bench.common.errors import BenchError
from bench.results import tables
from bench.results.plots import headline_points, plot_run
from bench.results.rows import complete_rows, csv_text, figure_rows

MODULES = {"SGR": ["SGR"], "SAF": ["SAF"], "SGRAF": ["SGR", "SAF"]}


def metrics(value):
    per_direction = {"r1": value, "r5": value + 10, "r10": value + 20, "asp": value - 1, "pmrp": value - 2}
    return {"i2t": dict(per_direction), "t2i": dict(per_direction), "rsum": 6 * value + 60}


def write_run(folder, protocol, model, daa, value, record_daa=True, prefix=None):
    prefix = prefix or ("daa" if daa else "sgraf")
    dataset = protocol.split("-")[0]
    checkpoints = [{"path": f"models/{prefix}_{dataset}_{m.lower()}.pth.tar", "module_name": m}
                   for m in MODULES[model]]
    provenance = {"checkpoints": checkpoints} | ({"daa": daa} if record_daa else {})
    path = folder / f"{protocol}-{prefix}-{model.lower()}.json"
    path.write_text(json.dumps({"protocol": protocol, "metrics": metrics(value), "provenance": provenance}))
    return path


@pytest.fixture
def table1_runs(tmp_path):
    """All twelve Table 1 runs: every baseline figure 50 (+2 per model index), DAA one higher."""
    for protocol in ("coco-1k", "coco-5k"):
        for index, model in enumerate(tables.MODELS):
            write_run(tmp_path, protocol, model, False, 50.0 + 2 * index)
            write_run(tmp_path, protocol, model, True, 51.0 + 2 * index)
    (tmp_path / "summary.json").write_text(json.dumps({"rows": []}))  # not a run: ignored
    return tmp_path


def cell(grid, model, label, column):
    row = next(r for r in grid.rows if r[:2] == [model, label])
    return row[grid.header.index(column)]


def test_table1_layout(table1_runs):
    one_k, five_k = tables.build(1, tables.load_runs(table1_runs))
    assert one_k.title.endswith("coco-1k") and five_k.title.endswith("coco-5k")
    assert one_k.header == ["model", "run", "i2t PMRP", "i2t R@1", "i2t ASP",
                            "t2i PMRP", "t2i R@1", "t2i ASP"]
    assert [r[:2] for r in one_k.rows[:3]] == [["SGR", "baseline"], ["SGR", "+DAA"], ["SGR", "DAA gain"]]
    assert len(one_k.rows) == 15 and one_k.rows[3][1:3] == ["gain CI", "–"]  # no per-query files
    assert cell(one_k, "SGR", "baseline", "i2t R@1") == "50.00 (77.2)"
    assert cell(one_k, "SGR", "+DAA", "i2t R@1") == "51.00 (78.0)"
    assert cell(one_k, "SGR", "DAA gain", "i2t R@1") == "+1.00 (+0.8)"
    assert cell(five_k, "SGRAF", "DAA gain", "t2i PMRP") == "+1.00 (+1.6)"
    assert cell(five_k, "SAF", "baseline", "t2i ASP") == "51.00 (54.5)"
    for grid in (one_k, five_k):
        assert not any(note.startswith("missing") for note in grid.notes)
        assert next(n for n in grid.notes if n.startswith("runs:")).count(".json") == 6


def test_table3_has_recall_and_asp_only(tmp_path):
    write_run(tmp_path, "f30k-1k", "SGR", False, 70.0)
    [grid] = tables.build(3, tables.load_runs(tmp_path))
    assert grid.header[2:] == ["i2t R@1", "i2t ASP", "t2i R@1", "t2i ASP"]
    assert cell(grid, "SGR", "baseline", "t2i R@1") == "70.00 (55.8)"
    assert cell(grid, "SGR", "+DAA", "t2i R@1") == "– (56.6)"
    assert cell(grid, "SGR", "DAA gain", "t2i R@1") == "– (+0.8)"
    assert grid.notes[-1].startswith("missing: SGR +DAA, SAF baseline")


def test_no_runs_is_an_error(tmp_path):
    write_run(tmp_path, "f30k-1k", "SGR", False, 70.0)
    with pytest.raises(BenchError, match="no run for Table 1"):
        tables.build(1, tables.load_runs(tmp_path))
    with pytest.raises(BenchError, match="does not exist"):
        tables.load_runs(tmp_path / "absent")


def test_daa_from_checkpoint_names_when_not_recorded(tmp_path):
    write_run(tmp_path, "coco-5k", "SGR", True, 60.0, record_daa=False)
    write_run(tmp_path, "coco-5k", "SGR", False, 58.0, record_daa=False)
    runs = tables.load_runs(tmp_path)
    assert runs[("coco-5k", "SGR", True)].metrics["i2t"]["r1"] == 60.0
    assert runs[("coco-5k", "SGR", False)].metrics["i2t"]["r1"] == 58.0
    write_run(tmp_path, "coco-5k", "SAF", True, 60.0, record_daa=False, prefix="mine")
    with pytest.raises(BenchError, match="cannot tell whether it evaluated DAA"):
        tables.load_runs(tmp_path)


def test_newest_run_wins(tmp_path):
    old = write_run(tmp_path, "coco-5k", "SGR", True, 60.0, prefix="daa")
    new = tmp_path / "rerun.json"
    new.write_text(old.read_text().replace("60.0", "61.0"))
    os.utime(old, (1, 1))
    assert tables.load_runs(tmp_path)[("coco-5k", "SGR", True)].path == new


def test_table1_fits_100_columns_without_cutting_a_cell(table1_runs, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["table", "--table", "1", "--results", str(table1_runs)]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "+1.00 (+14.6)" in out and "p (Holm)" in out and "…" not in out


def test_gain_rows_hold_the_paired_bootstrap(daa_pair_runs, tmp_path):
    """The same SGR checkpoint recorded once as baseline, once as +DAA: a gain of exactly 0."""
    grid = tables.build(1, tables.load_runs(daa_pair_runs))[1]
    gains = tmp_path / "gains.csv"
    assert main(["table", "--table", "1", "--results", str(daa_pair_runs), "--gains-csv", str(gains)]) == 0
    assert gains.read_text().splitlines()[0].startswith("run_a,run_b,protocol,fold,direction,metric")
    assert len(gains.read_text().splitlines()) == 1 + 15
    assert cell(grid, "SGR", "DAA gain", "t2i ASP").startswith("+0.00")
    assert cell(grid, "SGR", "gain CI", "t2i ASP") == "[+0.0, +0.0]"
    assert cell(grid, "SGR", "p (Holm)", "i2t R@1") == "1.000"
    assert not any(note.startswith("no gain CI") for note in grid.notes)


def test_markdown_and_cli(table1_runs, tmp_path, capsys):
    markdown = tmp_path / "out" / "table1.md"
    assert main(["table", "--table", "1", "--results", str(table1_runs), "--markdown", str(markdown)]) == 0
    lines = markdown.read_text().splitlines()
    assert lines[0].startswith("## Table 1")
    table_lines = [line for line in lines if line.startswith("|")]
    assert len(table_lines) == 2 * (2 + 15) and len({line.count("|") for line in table_lines}) == 1
    assert "| SGR | DAA gain | +1.00 (+2.4) |" in markdown.read_text()  # coco-1k i2t PMRP
    assert "SGRAF" in capsys.readouterr().out
    assert main(["table", "--table", "1", "--results", str(tmp_path / "absent")]) == 2


@pytest.fixture
def run_csv(tmp_path):
    evaluation = {"metrics": metrics(55.0)}
    evaluation["metrics"]["i2t"]["eccv_r1"] = 40.0  # a figure the paper does not have
    rows = figure_rows("demo-run", "coco-5k", "SGR", "daa_coco_sgr.pth.tar", True, evaluation)
    path = tmp_path / "demo-run.csv"
    path.write_text(csv_text(rows))
    return path


def test_plot_writes_png(run_csv):
    pytest.importorskip("matplotlib")
    assert main(["plot", str(run_csv)]) == 0
    png = run_csv.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in run_csv.parent.iterdir() if p.name.endswith(".tmp")]


def test_plot_points_are_differences_from_the_paper_with_shifted_intervals(tmp_path):
    evaluation = {"metrics": metrics(55.0)}
    intervals = {"all": {("i2t", "r1"): (54.0, 57.0)}}
    rows = figure_rows("run", "coco-5k", "SGR", "daa_coco_sgr.pth.tar", True, evaluation, intervals)
    points, against_paper = headline_points(complete_rows(rows, "rows"))
    assert against_paper and all(row["reference"] is not None for row in rows if row["fold"] == "all"
                                 and f"{row['direction']} {row['metric']}" in {p.label for p in points})
    r1 = next(p for p in points if p.label == "i2t r1")
    reference = next(r["reference"] for r in rows if (r["direction"], r["metric"]) == ("i2t", "r1"))
    assert r1.value == pytest.approx(55.0 - reference) and r1.low == pytest.approx(54.0 - reference)
    assert r1.tolerance == 0.1 and r1.status == "off"
    unreferenced, against = headline_points([dict(r, reference="") for r in complete_rows(rows, "rows")])
    assert not against and {p.label for p in unreferenced} >= {"i2t r1", "t2i asp"}
    assert "both rsum" not in {p.label for p in unreferenced}


def test_plot_errors(run_csv, tmp_path, monkeypatch):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(BenchError, match="not a results CSV"):
        plot_run(bad)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(BenchError, match="plots need matplotlib"):
        plot_run(run_csv)
    assert not run_csv.with_suffix(".png").exists()


def test_table_from_real_eval_runs(data_root, golden_dir, tmp_path):
    """eval --json of a baseline and a DAA checkpoint (generated, released names) -> Table 1."""
    from bench.data import synthetic
    from bench.model import random_weights

    config = random_weights.small_config("SGR", "coco_precomp", len(synthetic.vocabulary_words()))
    runs = tmp_path / "runs"
    for seed, family in enumerate(("sgraf", "daa")):
        checkpoint = random_weights.write_checkpoint(tmp_path / f"{family}_coco_sgr.pth.tar", config, seed=seed,
                                                daa_weight=None if family == "sgraf" else 10)
        assert main(["eval", "--checkpoint", str(checkpoint), "--protocol", "coco-5k",
                     "--data-root", str(data_root), "--annotations", str(golden_dir / "coco_annotations"),
                     "--device", "cpu", "--json", str(runs / f"{family}.json")]) == 0
    _, five_k = tables.build(1, tables.load_runs(runs))
    baseline = json.loads((runs / "sgraf.json").read_text())["metrics"]
    assert cell(five_k, "SGR", "baseline", "i2t PMRP") == f"{baseline['i2t']['pmrp']:.2f} (32.7)"
    assert cell(five_k, "SGR", "+DAA", "t2i ASP").endswith("(62.6)")
    assert cell(five_k, "SAF", "baseline", "i2t R@1") == "– (55.1)"
