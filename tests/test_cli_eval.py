"""The `eval` command end to end: golden figures through the CLI contract, and bad input."""

import csv
import json

import numpy as np
import pytest

from bench.cli.main import main
from bench.data.splits import load_split
from bench.eval.protocol_metrics import protocol_metrics
from bench.eval.protocols import PROTOCOLS, saved_matrix

COCO_1K = PROTOCOLS["coco-1k"]

GOLDEN_ORDER = ("r1", "r5", "r10", "medr", "meanr", "asp")


def _as_row(metrics):
    return np.array([metrics[d][m] for d in ("i2t", "t2i") for m in GOLDEN_ORDER])


def _assert_matches_golden(ours, expected):
    recall_like = [i for i in range(12) if i % 6 != 5]
    assert np.allclose(ours[recall_like], expected[recall_like], atol=1e-9)
    assert np.allclose(ours[[5, 11]], expected[[5, 11]], atol=0.05)  # ASP: tie rule differs


@pytest.mark.parametrize("dataset,protocol", [("f30k", "f30k-1k"), ("coco", "coco-5k"), ("coco", "coco-1k")])
@pytest.mark.parametrize("models", [("sgr",), ("saf",), ("sgr", "saf")])
def test_golden_metrics_through_the_cli(tmp_path, golden_dir, golden_expected, dataset, protocol, models):
    args = ["eval", "--protocol", protocol, "--data-root", str(golden_dir), "--device", "cpu",
            "--json", str(tmp_path / "run.json"), "--csv", str(tmp_path / "run.csv"),
            "--save-sims", str(tmp_path / "sims.npy")]
    for model in models:
        args += ["--checkpoint", str(golden_dir / f"{dataset}_{model}.pth.tar")]
    assert main(args) == 0
    result = json.loads((tmp_path / "run.json").read_text())
    name = f"{dataset}_{models[0]}" if len(models) == 1 else f"{dataset}_sgraf"
    sims = np.load(tmp_path / "sims.npy")
    assert sims.dtype == np.float32
    if protocol == "coco-1k":
        assert sims.shape == (5, 6, 30)
        if len(models) == 1:
            expected_folds = golden_expected[f"{name}/fold5"]
        else:  # no published SGRAF per-fold golden: the figures of the mean of the golden matrices
            expected_sims = sum(golden_expected[f"{dataset}_{m}/sims"] for m in models) / 2
            assert np.abs(sims - saved_matrix(COCO_1K, expected_sims)).max() < 1e-5
            texts = load_split(golden_dir, "coco_precomp", "testall").texts
            expected_folds = [_as_row(f) for f in protocol_metrics(COCO_1K, expected_sims, texts)["folds"]]
        for fold, expected in zip(result["folds"], expected_folds, strict=True):
            _assert_matches_golden(_as_row(fold), expected)
        _assert_matches_golden(_as_row(result["metrics"]), np.mean(expected_folds, axis=0))
    else:
        _assert_matches_golden(_as_row(result["metrics"]), golden_expected[f"{name}/full"])
        if len(models) == 1:
            assert np.abs(sims - golden_expected[f"{name}/sims"]).max() < 1e-5
    provenance = result["provenance"]
    assert provenance["precision"] == "fp32" and len(provenance["checkpoints"][0]["sha256"]) == 64
    assert provenance["tokenizer"] in ("punkt_tab", "preserve_line") and "tie" in provenance["tie_rule"].lower()
    assert (tmp_path / "run.csv").read_text().startswith("run_id,dataset,protocol,model,checkpoint,fold,direction")


def test_generated_data_and_sgraf_mean(tmp_path, data_root, make_checkpoint):
    sgr, saf = make_checkpoint("SGR", "f30k_precomp", seed=1), make_checkpoint("SAF", "f30k_precomp", seed=2)
    paths = {}
    for label, checkpoints in (("sgr", [sgr]), ("saf", [saf]), ("both", [sgr, saf])):
        paths[label] = tmp_path / f"{label}.npy"
        args = ["eval", "--protocol", "f30k-1k", "--data-root", str(data_root), "--save-sims", str(paths[label])]
        for checkpoint in checkpoints:
            args += ["--checkpoint", str(checkpoint)]
        assert main(args) == 0
    sgr_sims, saf_sims = np.load(paths["sgr"]), np.load(paths["saf"])
    assert sgr_sims.shape == (20, 100)
    assert np.allclose(np.load(paths["both"]), (sgr_sims + saf_sims) / 2, atol=1e-7)


def _bad_run(tmp_path, capsys, args):
    outputs = ["--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"),
               "--save-sims", str(tmp_path / "s.npy")]
    status = main(["eval", *args, *outputs])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert not any(tmp_path.glob("r.*")) and not (tmp_path / "s.npy").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    return err[0]


def test_missing_checkpoint(tmp_path, capsys, data_root):
    line = _bad_run(tmp_path, capsys, ["--checkpoint", str(tmp_path / "nope.pth.tar"), "--protocol", "coco-5k",
                                       "--data-root", str(data_root)])
    assert "nope.pth.tar: checkpoint file not found" in line


def test_vocabulary_mismatch(tmp_path, capsys, data_root, make_checkpoint):
    checkpoint = make_checkpoint("SGR", "coco_precomp", vocab=500)
    line = _bad_run(tmp_path, capsys,
                    ["--checkpoint", str(checkpoint), "--protocol", "coco-5k", "--data-root", str(data_root)])
    assert "but" in line and "500" in line


def test_feature_dimension_mismatch(tmp_path, capsys, data_root, make_checkpoint):
    checkpoint = make_checkpoint("SGR", "coco_precomp", img_dim=64)
    line = _bad_run(tmp_path, capsys,
                    ["--checkpoint", str(checkpoint), "--protocol", "coco-1k", "--data-root", str(data_root)])
    assert "expects 36 x 64" in line


def test_unsafe_pickle(tmp_path, capsys, data_root):
    import os

    import torch

    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"model": [], "opt": Exploit()}, tmp_path / "evil.pth.tar")
    line = _bad_run(tmp_path, capsys, ["--checkpoint", str(tmp_path / "evil.pth.tar"), "--protocol", "coco-5k",
                                       "--data-root", str(data_root)])
    assert "refused to load" in line


def test_missing_data(tmp_path, capsys, make_checkpoint):
    line = _bad_run(tmp_path, capsys, ["--checkpoint", str(make_checkpoint()), "--protocol", "coco-5k",
                                       "--data-root", str(tmp_path / "empty")])
    assert "testall_ims.npy: features not found" in line


def test_missing_annotations_when_asked(tmp_path, capsys, data_root, make_checkpoint):
    line = _bad_run(tmp_path, capsys, ["--checkpoint", str(make_checkpoint()), "--protocol", "coco-5k",
                                       "--data-root", str(data_root), "--annotations", str(tmp_path / "none")])
    assert "instances_val2014.json" in line


def test_unwritable_output_is_one_line_and_leaves_nothing(tmp_path, capsys, data_root, make_checkpoint):
    (tmp_path / "taken").mkdir()
    status = main(["eval", "--checkpoint", str(make_checkpoint()), "--protocol", "coco-5k", "--data-root",
                   str(data_root), "--json", str(tmp_path / "taken"), "--csv", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "taken" in err[0]
    assert not (tmp_path / "r.csv").exists() and not list(tmp_path.glob(".*.tmp"))


def test_eccv_needs_coco_5k(tmp_path, capsys, data_root, make_checkpoint):
    line = _bad_run(tmp_path, capsys, ["--checkpoint", str(make_checkpoint()), "--protocol", "coco-1k",
                                       "--data-root", str(data_root), "--eccv"])
    assert "--eccv needs the coco-5k protocol" in line


def test_a_piped_eval_table_keeps_every_cell_whole(tmp_path, golden_dir, monkeypatch, capsys):
    """Piped (pytest's capture is no terminal) into 80 columns: rich would cut cells; never here."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["eval", "--protocol", "f30k-1k", "--data-root", str(golden_dir), "--device", "cpu",
                 "--checkpoint", str(golden_dir / "f30k_sgr.pth.tar"), "--csv", str(tmp_path / "run.csv")]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and "in CI" in out
    sources = {row["reference_source"] for row in csv.DictReader(open(tmp_path / "run.csv")) if row["fold"] == "all"}
    assert sources - {""} and all(source in out for source in sources)
    assert max(len(line) for line in out.splitlines()) > 80  # widened to the table, not cut to the pipe's 80
