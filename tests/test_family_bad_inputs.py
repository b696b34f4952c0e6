"""Bad family checkpoints: exit 2, one stderr line naming the file and the fault, nothing written."""

import csv
import shutil
from pathlib import Path
from typing import Callable

import pytest
import torch
from bad_input_harness import VOCAB, Case, assert_refused, eval_args, ids, replace_arg, write_base

from bench.cli.main import main
from bench.data import synthetic
from bench.model import random_weights
from bench.model.layouts import EMBEDDING_KEY

PAIR, FLAT = "models/f30k_pair.pth.tar", "models/f30k_flat.pth.tar"
TSV = "data/cc152k_precomp/test_caps.tsv"


@pytest.fixture(scope="module")
def family_base(tmp_path_factory) -> Path:
    root = write_base(tmp_path_factory.mktemp("family"))
    config = random_weights.small_config("SGR", "f30k_precomp", VOCAB)
    random_weights.write_pair_checkpoint(root / PAIR, config)
    random_weights.write_flat_checkpoint(root / FLAT, config)
    synthetic.write_tsv_split(root / "data" / "cc152k_precomp", "test", 8, seed=4)
    synthetic.write_vocab(root / "data" / "vocab" / "cc152k_precomp_vocab.json")
    cc_config = random_weights.small_config("SGR", "cc152k_precomp", VOCAB)
    random_weights.write_pair_checkpoint(root / "models" / "cc_pair.pth.tar", cc_config)
    return root


def cc_args(root: Path) -> list[str]:
    args = eval_args(root, checkpoints=("cc_pair",))
    return replace_arg(args, "--protocol", "cc152k-1k")


def tsv_lines(change: Callable[[list[bytes]], list[bytes]]) -> Callable[[Path], list[str]]:
    """Spoil the CC152K captions file line by line, and evaluate on cc152k-1k."""
    def setup(root: Path) -> list[str]:
        lines = (root / TSV).read_bytes().split(b"\r\n")[:-1]
        (root / TSV).write_bytes(b"\r\n".join(change(lines)) + b"\r\n")
        return cc_args(root)
    return setup


def rewrite(name: str, change: Callable[[dict], None]) -> Callable[[Path], list[str]]:
    """Spoil checkpoint `name` with `change`, and evaluate it."""
    def setup(root: Path) -> list[str]:
        raw = torch.load(root / name, map_location="cpu", weights_only=False)
        change(raw)
        torch.save(raw, root / name)
        return eval_args(root, checkpoints=(Path(name).name.removesuffix(".pth.tar"),))
    return setup


def saf_network(raw: dict) -> None:
    config = random_weights.small_config("SAF", "f30k_precomp", VOCAB)
    raw["model_B"] = random_weights.network_parts(config, 3)


def wider_network(raw: dict) -> None:
    raw["model_B"] = random_weights.network_parts(random_weights.small_config("SGR", "f30k_precomp", VOCAB,
                                                                              embed_size=48), 3)


def embedding_rows(extra: int) -> Callable[[dict], None]:
    def change(raw):
        weight = raw["net"]["txt_enc." + EMBEDDING_KEY]
        raw["net"]["txt_enc." + EMBEDDING_KEY] = torch.cat([weight, torch.zeros(extra, weight.shape[1])])
    return change


def drop_prefix(prefix: str) -> Callable[[dict], None]:
    return lambda raw: raw.update(net={k: v for k, v in raw["net"].items() if not k.startswith(prefix)})


CASES = [
    Case("pair-only-model-a", rewrite(PAIR, lambda raw: raw.pop("model_B")), "only model_A"),
    Case("pair-different-modules", rewrite(PAIR, saf_network), "model_A and model_B differ"),
    Case("pair-different-dimensions", rewrite(PAIR, wider_network), "model_A and model_B differ"),
    Case("pair-and-single-keys", rewrite(PAIR, lambda raw: raw.update(model=raw["model_A"])), "several layouts"),
    Case("flat-missing-prefix", rewrite(FLAT, drop_prefix("sim_enc.")), "no sim_enc."),
    Case("flat-unknown-keys", rewrite(FLAT, lambda raw: raw["net"].update({"head.weight": torch.zeros(2)})),
         "keys outside"),
    Case("flat-embedding-v-plus-2", rewrite(FLAT, embedding_rows(2)), f"{VOCAB + 2} rows"),
    Case("tsv-one-column", tsv_lines(lambda lines: [lines[0].split(b"\t")[0]] + lines[1:]), "test_caps.tsv"),
    Case("tsv-empty-caption", tsv_lines(lambda lines: lines[:2] + [b"id7\t  \turl"] + lines[3:]), "empty caption"),
    Case("tsv-nul-byte", tsv_lines(lambda lines: lines[:1] + [lines[1] + b"\0"] + lines[2:]), "NUL byte"),
    Case("tsv-more-captions-than-rows", tsv_lines(lambda lines: lines + lines[:1]), "9 captions"),
    Case("cc152k-checkpoint-on-f30k", lambda r: eval_args(r, checkpoints=("cc_pair",)), "cc152k_precomp"),
    Case("flat-missing-weight", rewrite(FLAT, lambda raw: raw["net"].pop("sim_enc.sim_eval_w.bias")),
         "missing sim_eval_w.bias"),
]


def _copy(base: Path, tmp_path: Path) -> Path:
    """A copy of the family tree for one test to spoil or run in."""
    return Path(shutil.copytree(base, tmp_path / "w", symlinks=True))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_family_checkpoint_is_one_line_and_changes_nothing(family_base, tmp_path, capsys, case):
    root = _copy(family_base, tmp_path)
    line = assert_refused(main, case.setup(root), root, capsys, case.names)
    assert any(name in line for name in ("f30k_pair.pth.tar", "f30k_flat.pth.tar", "cc_pair.pth.tar", "test_caps.tsv"))


def test_the_unspoiled_family_checkpoints_evaluate(family_base, tmp_path):
    root = _copy(family_base, tmp_path)
    for name in ("f30k_pair", "f30k_flat"):
        assert main(eval_args(root, checkpoints=(name,))) == 0
    assert main(cc_args(root)) == 0


def test_cc152k_checkpoint_on_f30k_scores_with_allow_mismatch_and_no_reference(family_base, tmp_path):
    root = _copy(family_base, tmp_path)
    assert main(eval_args(root, "--allow-mismatch", checkpoints=("cc_pair",))) == 0
    statuses = {row["status"] for row in csv.DictReader((root / "results" / "run.csv").open())}
    assert statuses == {"no-reference"}
