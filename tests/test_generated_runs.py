"""Runs on generated data are known by the data's own marker, whatever produced the scores."""

import csv
import json

import numpy as np

from bench.cli.main import main
from bench.data import synthetic


def _generated_root(tmp_path, marked: bool):
    root = tmp_path / ("generated" if marked else "real-like")
    synthetic.write_vocab(root / "vocab" / "f30k_precomp_vocab.json")
    synthetic.write_split(root / "f30k_precomp", "test", 20, seed=3)
    if marked:
        synthetic.mark_generated(root / "f30k_precomp", "test", "tests")
    return root


def test_eval_scores_on_generated_data_is_marked_and_says_what_it_wrote(tmp_path, capsys):
    sims = np.random.default_rng(0).random((20, 100), dtype=np.float32)
    np.save(tmp_path / "scores.npy", sims)
    documents = {}
    for marked in (True, False):
        out = tmp_path / f"{marked}.json"
        assert main(["eval", "--scores", str(tmp_path / "scores.npy"), "--protocol", "f30k-1k", "--data-root",
                     str(_generated_root(tmp_path, marked)), "--json", str(out)]) == 0
        documents[marked] = json.loads(out.read_text())
        wrote = [line for line in capsys.readouterr().out.splitlines() if line.startswith("wrote ")]
        assert wrote == [f"wrote {out}, {tmp_path / f'{marked}.queries.npz'}"
                         + (" (generated data: kept apart from runs on the real datasets)" if marked else "")]
    assert documents[True]["provenance"]["generated_data"] == "tests"
    assert "generated_data" not in documents[False]["provenance"]
    assert {row["status"] for row in documents[True]["figures"]} == {"no-reference"}
    # report: the counts it prints are those summary.md states, and summary.csv marks the generated run
    assert main(["report", "--results", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()[-1]
    assert printed.endswith("; 1 run(s) on generated data, summarised apart")
    assert f"{printed}." in (tmp_path / "summary.md").read_text(encoding="utf-8")
    with open(tmp_path / "summary.csv", newline="", encoding="utf-8") as handle:
        marks = {(row["run_id"], row["generated_data"]) for row in csv.DictReader(handle)}
    run_ids = {marked: documents[marked]["figures"][0]["run_id"] for marked in documents}
    assert marks == {(run_ids[True], "yes"), (run_ids[False], "")}


def test_an_unreadable_marker_still_marks_the_data_generated(tmp_path):
    (tmp_path / "test_generated.json").write_text("{not json")
    assert synthetic.generated_by(tmp_path, "test") == "unreadable marker"
    assert synthetic.generated_by(tmp_path, "dev") is None


def test_the_chart_of_a_run_on_generated_data_says_so_in_its_title(tmp_path, monkeypatch):
    from bench.results import plots

    sims = np.random.default_rng(0).random((20, 100), dtype=np.float32)
    np.save(tmp_path / "scores.npy", sims)
    titles = []
    monkeypatch.setattr(plots, "_draw", lambda axes, *args: titles.append(axes))
    for marked in (True, False):
        out = tmp_path / f"{marked}.json"
        assert main(["eval", "--scores", str(tmp_path / "scores.npy"), "--protocol", "f30k-1k", "--data-root",
                     str(_generated_root(tmp_path, marked)), "--json", str(out),
                     "--csv", str(out.with_suffix(".csv"))]) == 0
        plots.plot_run(out.with_suffix(".csv"))
    assert "GENERATED DATA" in titles[0].get_title() and "GENERATED" not in titles[1].get_title()
