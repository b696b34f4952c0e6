"""`report`: every run's figures into summary.csv and summary.md; `make reproduce-*` without data."""

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.common.errors import BenchError
from bench.results.rows import figure_rows
from bench.results.run_result import RunResult
from bench.results.summary import write_summary

REPO = Path(__file__).resolve().parents[1]


def write_run(results, run_id: str, protocol: str, model: str, r1: float, intervals=None) -> list[dict]:
    direction = {"r1": r1, "r5": 95.8, "r10": 98.6, "medr": 1.0, "meanr": 1.8, "asp": 68.5}
    evaluation = {"metrics": {"i2t": direction, "t2i": dict(direction), "rsum": 2 * (r1 + 194.4)}}
    rows = figure_rows(run_id, protocol, model, f"{run_id}.pth.tar", True, evaluation, intervals)
    RunResult(protocol, evaluation["metrics"], {}, rows).write(json_path=results / f"{run_id}.json",
                                                              csv_path=results / f"{run_id}.csv")
    return rows


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_summary_gathers_every_run(tmp_path):
    first = write_run(tmp_path, "a_sgr", "coco-5k", "SGR", 56.5)
    second = write_run(tmp_path / "tables", "b_saf", "f30k-1k", "SAF", 70.0)
    (tmp_path / "notes.json").write_text('{"not": "a run"}')
    shutil.copy(tmp_path / "tables" / "b_saf.csv", tmp_path / "orphan.csv")  # a run is its JSON
    csv_path, md_path, rows = write_summary(tmp_path)
    assert len({row["run_id"] for row in rows}) == 2
    assert len(read_csv(csv_path)) == len(first) + len(second)
    markdown = md_path.read_text(encoding="utf-8")
    assert "| run | model | protocol | checkpoint | i2t R@1 |" in markdown
    assert "| a_sgr | SGR | coco-5k | a_sgr.pth.tar | 56.50 (56.5) |" in markdown
    assert "**70.00 (73.9)** ✗" in markdown
    assert "medr" not in markdown.split("\n| run")[1]  # rank figures stay in the CSV


def test_summary_cells_show_the_interval_bounds(tmp_path):
    write_run(tmp_path, "a_sgr", "coco-5k", "SGR", 56.5, intervals={"all": {("i2t", "r1"): (53.0, 58.25)}})
    _, md_path, _ = write_summary(tmp_path)
    assert "| a_sgr | SGR | coco-5k | a_sgr.pth.tar | 56.50 [53.00, 58.25] (56.5) |" in md_path.read_text("utf-8")


def test_a_runs_csv_wins_over_its_json(tmp_path):
    write_run(tmp_path, "a_sgr", "coco-5k", "SGR", 56.5)
    rows = read_csv(tmp_path / "a_sgr.csv")
    rows[0]["value"] = "12.5"
    with (tmp_path / "a_sgr.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    csv_path, _, _ = write_summary(tmp_path)
    assert read_csv(csv_path)[0]["value"] == "12.5"


def test_rerunning_report_ignores_its_own_summary(tmp_path):
    write_run(tmp_path, "a_sgr", "coco-5k", "SGR", 56.5)
    assert main(["report", "--results", str(tmp_path)]) == 0
    before = (tmp_path / "summary.csv").read_text()
    assert main(["report", "--results", str(tmp_path)]) == 0
    assert (tmp_path / "summary.csv").read_text() == before


def test_no_runs_and_broken_files_are_clear_errors(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(BenchError, match="no run results"):
        write_summary(tmp_path)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(BenchError, match="bad.json"):
        write_summary(tmp_path)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_reproduce_target_names_the_missing_files(tmp_path):
    done = subprocess.run(
        ["make", "-s", "-o", "install", "-o", "download-f30k",
         "-o", "download-daa-f30k-sgr", "-o", "download-daa-f30k-saf",
         "reproduce-f30k-sgraf", f"DATA_ROOT={tmp_path}/data", f"MODELS_ROOT={tmp_path}/models"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"missing: {tmp_path}/models/daa_f30k_saf.pth.tar" in done.stderr
    assert f"{tmp_path}/data/f30k_precomp/test_ims.npy (or)" in done.stderr
    assert "make download-f30k download-checkpoints" in done.stderr


def test_report_draws_a_chart_per_run_and_links_it(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    write_run(tmp_path, "a_sgr", "coco-5k", "SGR", 56.5)
    write_run(tmp_path / "tables", "b_saf", "f30k-1k", "SAF", 70.0)
    assert main(["report", "--results", str(tmp_path), "--plots"]) == 0
    assert "2 chart(s) drawn" in capsys.readouterr().out
    assert (tmp_path / "a_sgr.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "- [a_sgr](a_sgr.png)" in markdown and "- [b_saf](tables/b_saf.png)" in markdown


def test_report_without_plots_keeps_existing_charts_and_counts_what_it_says(tmp_path, capsys):
    write_run(tmp_path, "a_sgr", "coco-5k", "SGR", 56.5)  # R@1 ok, the other recalls off
    (tmp_path / "a_sgr.png").write_bytes(b"drawn earlier")
    assert main(["report", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "chart" not in out and (tmp_path / "a_sgr.png").read_bytes() == b"drawn earlier"
    rows = read_csv(tmp_path / "a_sgr.csv")
    headline = [r for r in rows if r["fold"] == "all"]
    counts = {s: sum(r["status"] == s for r in headline) for s in ("ok", "off", "no-reference")}
    line = (f"{len(headline)} headline figures: {counts['ok']} ok, {counts['off']} off, "
            f"{counts['no-reference']} without")
    assert line in out and line in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "- [a_sgr](a_sgr.png)" in (tmp_path / "summary.md").read_text(encoding="utf-8")


def test_summary_has_the_daa_gain_of_paired_runs(daa_pair_runs):
    write_summary(daa_pair_runs)
    markdown = (daa_pair_runs / "summary.md").read_text(encoding="utf-8")
    assert "## DAA gain over the SGRAF baseline" in markdown
    assert "| coco-5k | coco-5k-False | coco-5k-True | +0.00 [+0.00, +0.00] p 1.000 |" in markdown
