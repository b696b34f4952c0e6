"""The family on one board: method and noise per run, and the pairwise matrix of paired gains."""

import csv

import pytest

from bench.cli.main import main
from bench.data import synthetic
from bench.model.random_weights import small_config, write_checkpoint, write_flat_checkpoint, write_pair_checkpoint

VOCAB = len(synthetic.vocabulary_words())


@pytest.fixture
def family_results(tmp_path, data_root):
    config = small_config("SGR", "f30k_precomp", VOCAB)
    models = tmp_path / "models"
    models.mkdir()
    checkpoints = {"ncr": write_pair_checkpoint(models / "ncr_f30k_0.2_model_best.pth.tar", config, seeds=(1, 2)),
                   "l2rm": write_flat_checkpoint(models / "l2rm.pth.tar", config, seed=3),
                   "daa": write_checkpoint(models / "daa_f30k_sgr.pth.tar", config, seed=4)}
    results = tmp_path / "results"
    for name, path in checkpoints.items():
        assert main(["eval", "--protocol", "f30k-1k", "--data-root", str(data_root), "--device", "cpu",
                     "--checkpoint", str(path), "--json", str(results / f"{name}.json"),
                     "--run-id", name]) == 0
    return results


def test_report_has_method_noise_and_a_holm_adjusted_pairwise_matrix(family_results):
    assert main(["report", "--results", str(family_results)]) == 0
    markdown = (family_results / "summary.md").read_text()
    assert "Pairwise paired gains" in markdown and "| method | noise |" in markdown.replace("model | ", "")
    summary = list(csv.DictReader((family_results / "summary.csv").open()))
    methods = {(row["run_id"], row["method"], row["noise"]) for row in summary}
    assert {("ncr", "NCR", "0.2"), ("l2rm", "L2RM", "0.2"), ("daa", "DAA", "0")} <= methods
    cells = list(csv.DictReader((family_results / "summary_pairwise.csv").open()))
    assert len(cells) == 3 * 3  # three pairs x (rsum, i2t R@1, t2i R@1)
    assert {(c["direction"], c["metric"]) for c in cells} == {("both", "rsum"), ("i2t", "r1"), ("t2i", "r1")}
    tested = [c for c in cells if c["p_value"]]
    assert tested and all(float(c["p_holm"]) >= float(c["p_value"]) for c in tested)
    for cell in cells:
        assert float(cell["ci_low"]) <= float(cell["gain"]) <= float(cell["ci_high"])


def test_family_table_shows_method_noise_paper_figure_and_status(family_results, capsys):
    markdown = family_results.parent / "family.md"
    assert main(["table", "--family", "--results", str(family_results), "--markdown", str(markdown)]) == 0
    text = markdown.read_text()
    ncr = next(line for line in text.splitlines() if line.startswith("| NCR |"))
    assert "| 0.2 | ncr |" in ncr and "(75.0)" in ncr and "(496.7)" in ncr and ncr.rstrip(" |").endswith("off")
    l2rm = next(line for line in text.splitlines() if line.startswith("| L2RM |"))
    assert "(" not in l2rm and l2rm.rstrip(" |").endswith("no-reference")
