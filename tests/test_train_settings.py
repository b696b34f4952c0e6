"""One table of the paper's training settings (CLI, Makefile and README agree with it); bad values refused."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main as cli
from bench.cli.train import settings_from_args
from bench.common.errors import BenchError
from bench.training.settings import PAPER_RUNS, TrainSettings, check_settings, default_out_dir, paper_settings

REPO = Path(__file__).resolve().parents[1]


def test_paper_settings_come_from_the_one_table():
    settings = paper_settings("coco", "saf")
    assert (settings.data_name, settings.module_name) == ("coco_precomp", "SAF")
    paper_run = (settings.num_epochs, settings.learning_rate, settings.lr_update, settings.daa_weight)
    assert paper_run == (30, 0.00015, 20, 25)
    f30k_sgr = paper_settings("f30k_precomp", "SGR", max_steps=7)
    paper_run = (f30k_sgr.num_epochs, f30k_sgr.learning_rate, f30k_sgr.lr_update, f30k_sgr.daa_weight)
    assert paper_run == (40, 0.0006, 30, 10)
    assert f30k_sgr.max_steps == 7 and f30k_sgr.dropout == 0.4 and f30k_sgr.batch_size == 128
    assert f30k_sgr.run_dir == Path("models/trained/f30k_precomp_sgr")
    with pytest.raises(BenchError, match="dataset 'flickr'"):
        paper_settings("flickr", "SGR")


def test_train_settings_has_no_default_for_the_paper_run_fields():
    required = [f.name for f in dataclasses.fields(TrainSettings) if f.default is dataclasses.MISSING]
    assert required == ["data_name", "module_name", "num_epochs", "learning_rate", "lr_update", "daa_weight"]


def test_the_documented_table_equals_the_paper_table():
    text = (REPO / "docs" / "training.md").read_text()
    names = {"COCO": "coco_precomp", "Flickr30K": "f30k_precomp"}
    row = r"^\| (COCO|Flickr30K) (SGR, COCO SAF|SGR|SAF) \| (\d+) \| ([\d.]+) \| (\d+) epochs \| (\d+) \| (\d+) \|$"
    rows = re.findall(row, text, re.MULTILINE)
    found = {}
    for dataset, models, epochs, lr, lr_update, processes, daa_weight in rows:
        for model in models.replace("COCO ", "").split(", "):
            found[(names[dataset], model)] = (int(epochs), float(lr), int(lr_update), int(processes), float(daa_weight))
    assert found == {key: dataclasses.astuple(run) for key, run in PAPER_RUNS.items()}


def _make_eval(expression: str) -> str:
    result = subprocess.run(["make", "-s", "--no-print-directory", "-f", "Makefile", "--eval",
                             f"print-it: ; @echo {expression}", "print-it"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_makefile_uses_the_cli_folder_and_the_paper_process_count():
    for (data_name, module_name) in PAPER_RUNS:
        dataset = data_name.removesuffix("_precomp")
        assert _make_eval(f"$(call trained_dir,{dataset},{module_name})") == \
            str(default_out_dir(data_name, module_name))
    makefile = (REPO / "Makefile").read_text()
    coco = {run.processes for (data_name, _), run in PAPER_RUNS.items() if data_name == "coco_precomp"}
    assert coco == {4} and '"$$gpus" -ge 4' in makefile and "--nproc_per_node 4" in makefile


def test_cli_fills_in_the_paper_settings():
    args = cli.build_parser().parse_args(["train", "--data-name", "coco_precomp", "--module-name", "SAF"])
    settings = settings_from_args(args)
    assert settings == paper_settings("coco", "SAF", out_dir=Path("models/trained/coco_precomp_saf"))
    args = cli.build_parser().parse_args(["train", "--data-name", "f30k_precomp", "--module-name", "SGR",
                                          "--daa-weight", "0", "--daa-form", "row", "--no-max-violation"])
    settings = settings_from_args(args)
    assert (settings.num_epochs, settings.lr_update, settings.daa_weight) == (40, 30, 0)
    assert settings.daa_form == "row" and not settings.max_violation
    assert settings.out_dir == Path("models/trained/f30k_precomp_sgr")


BAD_VALUES = [
    (["--lr-update", "0"], "--lr-update 0"),
    (["--batch-size", "0"], "--batch-size 0"),
    (["--batch-size", "1"], "--batch-size 1"),
    (["--workers", "-1"], "--workers -1"),
    (["--learning-rate", "nan"], "--learning-rate nan"),
    (["--embed-size", "0"], "--embed-size 0"),
    (["--device", "meta"], "--device meta"),
    (["--num-epochs", "-1"], "--num-epochs -1"),
    (["--max-steps", "0"], "--max-steps 0"),
    (["--dropout", "1"], "--dropout 1"),
    (["--grad-clip", "0"], "--grad-clip 0"),
]


@pytest.mark.parametrize("flags, named", BAD_VALUES)
def test_bad_values_are_one_line_and_exit_2(tmp_path, capsys, flags, named):
    out = tmp_path / "out"
    code = cli.main(["train", "--data-name", "f30k_precomp", "--module-name", "SAF", "--data-root", str(tmp_path),
                     "--out-dir", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and named in err, err
    assert not out.exists()


def test_check_settings_accepts_the_paper_settings():
    for dataset, module in PAPER_RUNS:
        check_settings(paper_settings(dataset, module))


def test_train_help_imports_no_torch():
    """Checks this command module only (the others are the API slice's)."""
    code = ("import argparse, sys\nimport bench.cli.train as train\n"
            "parser = argparse.ArgumentParser(); train.register(parser.add_subparsers())\n"
            "try:\n    parser.parse_args(['train', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--init-from" in result.stdout and result.stdout.strip().endswith("False")
