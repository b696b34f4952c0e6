"""`compare`: paired gains over the same queries, refusal of different query sets, per-query changes."""

import csv
import json
import shutil

import numpy as np
import pytest

from bench.cli.main import main
from bench.eval.per_query import load_queries
from bench.results.compare import load_run, paired_rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory, golden_dir):
    """coco-5k runs of the golden SGR and SAF checkpoints, and an f30k-1k run."""
    folder = tmp_path_factory.mktemp("runs")
    for name, dataset, protocol in (("sgr", "coco", "coco-5k"), ("saf", "coco", "coco-5k"),
                                    ("f30k", "f30k", "f30k-1k")):
        model = "sgr" if name == "f30k" else name
        assert main(["eval", "--protocol", protocol, "--data-root", str(golden_dir), "--device", "cpu",
                     "--checkpoint", str(golden_dir / f"{dataset}_{model}.pth.tar"),
                     "--json", str(folder / f"{name}.json")]) == 0
    return folder


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_run_compared_with_itself_gains_exactly_nothing(runs):
    run = load_run(runs / "sgr.json")
    rows = paired_rows(run, load_run(runs / "sgr.json"))
    assert len(rows) == 15
    for row in rows:
        assert (row["gain"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0)
        tested = row["metric"] != "medr"
        assert (row["frac_not_better"], row["p_value"], row["p_holm"]) == ((1.0, 1.0, 1.0) if tested else (None,) * 3)


def test_compare_writes_gains_and_the_queries_that_changed_most(runs, tmp_path, capsys):
    out = tmp_path / "sgr-vs-saf.csv"
    assert main(["compare", str(runs / "sgr.json"), str(runs / "saf.json"), "--csv", str(out),
                 "--queries", "--top", "3"]) == 0
    gains = {(r["direction"], r["metric"]): r for r in _read_csv(out)}
    a, b = json.loads((runs / "sgr.json").read_text()), json.loads((runs / "saf.json").read_text())
    r1 = gains[("i2t", "r1")]
    assert float(r1["gain"]) == pytest.approx(b["metrics"]["i2t"]["r1"] - a["metrics"]["i2t"]["r1"], abs=1e-3)
    assert float(r1["ci_low"]) <= float(r1["ci_high"]) and 0 < float(r1["p_value"]) <= float(r1["p_holm"]) <= 1
    assert gains[("i2t", "medr")]["p_value"] == ""  # no p-value for medr
    changes = _read_csv(tmp_path / "sgr-vs-saf.queries.csv")
    ranks_a, ranks_b = (load_queries(runs / f"{n}.queries.npz")["t2i"]["rank"] for n in ("sgr", "saf"))
    t2i = [r for r in changes if r["direction"] == "t2i"]
    assert t2i and all(int(r["rank_a"]) == ranks_a[int(r["query_index"])] + 1 for r in t2i)
    improved = [int(r["rank_a"]) - int(r["rank_b"]) for r in t2i if r["change"] == "improved"]
    assert improved == sorted(improved, reverse=True) and improved[0] == (ranks_a - ranks_b).max()
    captions = load_queries(runs / "sgr.queries.npz")["captions"]
    assert all(r["query"] == captions[int(r["query_index"])] for r in t2i)
    assert all(r["coco_url"] == f"http://cocodataset.org/#explore?id={r['coco_id']}" for r in changes)
    assert all(len(r["top3_a"].split(" | ")) == 3 for r in changes)
    assert "minus" in capsys.readouterr().out


def test_swapping_the_runs_mirrors_every_gain_on_the_same_draws(runs):
    """Paired on the same resamples: B over A is exactly minus A over B, interval mirrored; 'B not
    better' and 'A not better' together cover every resample (ties count in both); the two-sided
    p-value does not depend on the order."""
    sgr, saf = load_run(runs / "sgr.json"), load_run(runs / "saf.json")
    forward = {(r["fold"], r["direction"], r["metric"]): r for r in paired_rows(sgr, saf)}
    backward = {(r["fold"], r["direction"], r["metric"]): r for r in paired_rows(saf, sgr)}
    assert forward.keys() == backward.keys() and any(r["ci_low"] != r["ci_high"] for r in forward.values())
    for key, row in forward.items():
        mirrored = backward[key]
        assert mirrored["gain"] == pytest.approx(-row["gain"], abs=1e-9)
        assert (mirrored["ci_low"], mirrored["ci_high"]) == pytest.approx((-row["ci_high"], -row["ci_low"]), abs=1e-9)
        if row["frac_not_better"] is not None:  # (medr has neither share nor p-value)
            assert row["frac_not_better"] + mirrored["frac_not_better"] >= 1 - 1e-9
            assert mirrored["p_value"] == pytest.approx(row["p_value"])


def test_compare_refuses_runs_over_different_queries(runs, tmp_path, capsys):
    assert main(["compare", str(runs / "sgr.json"), str(runs / "f30k.json"),
                 "--csv", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "protocol" in err and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()


def test_compare_refuses_another_caption_order(runs, tmp_path, capsys):
    shifted = json.loads((runs / "saf.json").read_text())
    shifted["provenance"]["data"]["captions_sha256"] = "0" * 64
    (tmp_path / "saf.json").write_text(json.dumps(shifted))
    shutil.copy(runs / "saf.queries.npz", tmp_path)
    assert main(["compare", str(runs / "sgr.json"), str(tmp_path / "saf.json"),
                 "--csv", str(tmp_path / "out.csv")]) == 2
    assert "captions_sha256" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_compare_refuses_a_per_query_file_changed_after_the_run(runs, tmp_path, capsys):
    shutil.copy(runs / "saf.json", tmp_path)
    queries = dict(np.load(runs / "saf.queries.npz"))
    np.savez(tmp_path / "saf.queries.npz", **queries)
    assert main(["compare", str(runs / "sgr.json"), str(tmp_path / "saf.json")]) == 2
    assert "sha256" in capsys.readouterr().err


@pytest.mark.parametrize("edit", [("metrics", "i2t", "r1"), ("metrics", "rsum"), ("figures", 0, "value"),
                                  ("metrics", "t2i", "pmrp")])
def test_compare_refuses_a_json_whose_figures_its_per_query_file_contradicts(runs, tmp_path, capsys, edit):
    edited = json.loads((runs / "saf.json").read_text())
    target = edited
    for key in edit[:-1]:
        target = target[key]
    target[edit[-1]] = 99.0
    (tmp_path / "saf.json").write_text(json.dumps(edited))
    shutil.copy(runs / "saf.queries.npz", tmp_path)
    assert main(["compare", str(runs / "sgr.json"), str(tmp_path / "saf.json"),
                 "--csv", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "saf.json") in err and "per-query" in err
    assert "Traceback" not in err and not (tmp_path / "out.csv").exists()


def test_compare_shows_intervals_as_bounds_and_holm_p_values(runs, tmp_path, capsys):
    assert main(["compare", str(runs / "sgr.json"), str(runs / "saf.json"), "--csv", str(tmp_path / "g.csv")]) == 0
    out = capsys.readouterr().out
    assert "±" not in out and "p (Holm)" in out
    assert any(line.lstrip().startswith("i2t") and "[" in line and "]" in line for line in out.splitlines())


def test_the_compare_command_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, bench.cli.compare; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_compare_refuses_an_output_that_names_an_input(runs, capsys):
    before = (runs / "saf.json").read_bytes()
    assert main(["compare", str(runs / "sgr.json"), str(runs / "saf.json"), "--csv", str(runs / "saf.json")]) == 2
    assert "input" in capsys.readouterr().err and (runs / "saf.json").read_bytes() == before


def test_piped_compare_prints_every_column_and_whole_captions(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    out = tmp_path / "c.csv"
    assert main(["compare", str(runs / "sgr.json"), str(runs / "saf.json"), "--csv", str(out), "--queries"]) == 0
    printed = capsys.readouterr().out
    assert "…" not in printed and "p (Holm)" in printed and "top 3 B" in printed
    t2i = [r for r in _read_csv(tmp_path / "c.queries.csv") if r["direction"] == "t2i"]
    assert t2i and all(r["query"] in printed for r in t2i)
    # each run's top 3, as the CSV lists them (an image's page address may be folded onto the next line)
    shown = [item.split(" http")[0] for r in t2i for run in ("a", "b") for item in r[f"top3_{run}"].split(" | ")]
    assert len(shown) == 6 * len(t2i) and all(label in printed for label in shown)
