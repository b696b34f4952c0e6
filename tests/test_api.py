"""The public API, used as a notebook would: bench.evaluate equals the CLI, results round-trip."""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench
from bench.cli.main import main
from bench.common.errors import BenchError
from bench.results.rows import FIELDS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def coco_sgraf(golden_dir):
    """bench.evaluate on the golden COCO data: SGR + SAF, coco-1k, PMRP from the annotations."""
    checkpoints = [golden_dir / "coco_sgr.pth.tar", golden_dir / "coco_saf.pth.tar"]
    return bench.evaluate(checkpoints, "coco-1k", data_root=golden_dir, device="cpu", run_id="run")


def test_evaluate_equals_the_cli_json(coco_sgraf, golden_dir, tmp_path):
    out = tmp_path / "run.json"
    assert main(["eval", "--checkpoint", str(golden_dir / "coco_sgr.pth.tar"), "--checkpoint",
                 str(golden_dir / "coco_saf.pth.tar"), "--protocol", "coco-1k", "--data-root", str(golden_dir),
                 "--device", "cpu", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["metrics"] == coco_sgraf.metrics and document["folds"] == coco_sgraf.folds
    assert document["figures"] == coco_sgraf.figures
    assert "pmrp" in coco_sgraf.metrics["i2t"] and len(coco_sgraf.folds) == 5
    assert coco_sgraf.provenance["model"] == "SGRAF" and coco_sgraf.sims.shape == (5, 6, 30)


def test_table_has_exactly_the_csv_columns_and_values(coco_sgraf, tmp_path):
    coco_sgraf.to_csv(tmp_path / "run.csv")
    table = coco_sgraf.table
    from_csv = pd.read_csv(tmp_path / "run.csv", dtype={"fold": str})
    assert list(table.columns) == list(FIELDS) == list(from_csv.columns)
    assert len(table) == len(coco_sgraf.figures)
    assert np.allclose(table["value"], from_csv["value"])
    assert (table["status"] == from_csv["status"]).all() and (table["fold"] == from_csv["fold"]).all()
    assert np.allclose(table["reference"].astype(float), from_csv["reference"], equal_nan=True)


def test_json_round_trip_without_sims(coco_sgraf, tmp_path):
    coco_sgraf.to_json(tmp_path / "run.json")
    back = bench.load_result(tmp_path / "run.json")
    assert isinstance(back, bench.RunResult) and back.sims is None
    assert (back.protocol, back.metrics, back.folds, back.figures) == \
           (coco_sgraf.protocol, coco_sgraf.metrics, coco_sgraf.folds, coco_sgraf.figures)
    assert back.provenance["checkpoints"] == coco_sgraf.provenance["checkpoints"]
    with pytest.raises(BenchError, match="holds no score matrix"):
        back.save_sims(tmp_path / "sims.npy")


def test_save_sims_is_the_cli_layout(coco_sgraf, tmp_path):
    coco_sgraf.save_sims(tmp_path / "sims.npy")
    saved = np.load(tmp_path / "sims.npy")
    assert saved.dtype == np.float32 and np.array_equal(saved, coco_sgraf.sims)


def test_load_result_refuses_other_json(tmp_path):
    (tmp_path / "x.json").write_text('{"not": "a run"}')
    with pytest.raises(BenchError, match="not a run result"):
        bench.load_result(tmp_path / "x.json")


def test_score_gives_the_matrix_only(golden_dir, golden_expected):
    split = bench.load_split(golden_dir, "f30k_precomp", "test")
    checkpoint = bench.load_checkpoint(golden_dir / "f30k_sgr.pth.tar")
    sims = bench.score(checkpoint, split, device="cpu")
    assert np.abs(sims - golden_expected["f30k_sgr/sims"]).max() < 1e-5
    ensemble = bench.score([golden_dir / "f30k_sgr.pth.tar", golden_dir / "f30k_saf.pth.tar"], split, device="cpu")
    expected = (golden_expected["f30k_sgr/sims"] + golden_expected["f30k_saf/sims"]) / 2
    assert np.abs(ensemble - expected).max() < 1e-5


def test_without_references_marks_every_figure(coco_sgraf):
    cleared = coco_sgraf.without_references("generated data")
    assert cleared.status_counts() == {"ok": 0, "off": 0, "own": 0, "no-reference": len(coco_sgraf.figures),
                                       "other-model": 0}
    assert cleared.provenance["note"] == "generated data" and "note" not in coco_sgraf.provenance


def test_import_bench_is_lazy():
    code = ("import sys, bench; assert 'torch' not in sys.modules, 'import bench loaded torch'; "
            "assert {'evaluate', 'evaluate_scores', 'RunResult', 'load_result', 'score', 'train', 'losses'} "
            "<= set(dir(bench)); "
            "bench.load_result; assert 'torch' not in sys.modules; bench.evaluate; assert 'torch' in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'evaluat'"):
        bench.evaluat  # noqa: B018


def test_training_api_is_exported():
    assert callable(bench.losses.contrastive_loss) and callable(bench.losses.daa_loss)
    settings = bench.paper_settings("f30k_precomp", "SAF")
    assert isinstance(settings, bench.TrainSettings) and callable(bench.train)


def test_readme_example_runs_on_the_fixtures(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From Python", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(example.strip().splitlines()) == 7
    (tmp_path / "tests").symlink_to(REPO / "tests")
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path / "tmp")}
    done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tests", "tmp"]  # nothing written where it runs
    written = bench.load_result(next((tmp_path / "tmp").glob("*/golden-sgraf.json")))
    assert f"{written.metrics['rsum']}" in done.stdout and "status" in done.stdout and " off" in done.stdout


def test_documented_python_names_import_the_documented_way():
    """Every `bench.<module>.<name>` the README and docs/python-api.md name is importable as written."""
    from bench.losses import contrastive_loss, daa_loss  # noqa: F401  (the README's own spelling)

    texts = [(REPO / name).read_text(encoding="utf-8") for name in ("README.md", "docs/python-api.md")]
    names = {name for text in texts for name in re.findall(r"`(bench(?:\.[A-Za-z_]\w*)+)", text)}
    assert "bench.losses.daa_loss" in names
    for dotted in names:
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                value = importlib.import_module(".".join(parts[:cut]))
                break
            except ModuleNotFoundError:
                continue
        for attribute in parts[cut:]:
            assert hasattr(value, attribute), f"README names {dotted}, which does not import"
            value = getattr(value, attribute)


def test_checkpoint_label_names_folders_only_when_file_names_agree():
    from bench.results.evaluate import checkpoint_label

    assert checkpoint_label([Path("m/daa_coco_sgr.pth.tar"), Path("m/daa_coco_saf.pth.tar")]) == \
        "daa_coco_sgr.pth.tar+daa_coco_saf.pth.tar"
    assert checkpoint_label([Path("t/f30k_precomp_sgr/model_best.pth.tar"),
                             Path("t/f30k_precomp_saf/model_best.pth.tar")]) == \
        "f30k_precomp_sgr/model_best.pth.tar+f30k_precomp_saf/model_best.pth.tar"
