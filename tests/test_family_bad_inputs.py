"""Bad family checkpoints: exit 2, one stderr line naming the file and the fault, nothing written."""

import shutil
from pathlib import Path
from typing import Callable

import pytest
import torch
from bad_input_harness import VOCAB, Case, assert_refused, eval_args, ids, write_base

from bench.cli.main import main
from bench.model import random_weights
from bench.model.layouts import EMBEDDING_KEY

PAIR, FLAT = "models/f30k_pair.pth.tar", "models/f30k_flat.pth.tar"


@pytest.fixture(scope="module")
def family_base(tmp_path_factory) -> Path:
    root = write_base(tmp_path_factory.mktemp("family"))
    config = random_weights.small_config("SGR", "f30k_precomp", VOCAB)
    random_weights.write_pair_checkpoint(root / PAIR, config)
    random_weights.write_flat_checkpoint(root / FLAT, config)
    return root


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
    Case("flat-missing-weight", rewrite(FLAT, lambda raw: raw["net"].pop("sim_enc.sim_eval_w.bias")),
         "missing sim_eval_w.bias"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_family_checkpoint_is_one_line_and_changes_nothing(family_base, tmp_path, capsys, case):
    root = tmp_path / "w"
    shutil.copytree(family_base, root, symlinks=True)
    line = assert_refused(main, case.setup(root), root, capsys, case.names)
    assert "f30k_pair.pth.tar" in line or "f30k_flat.pth.tar" in line


def test_the_unspoiled_family_checkpoints_evaluate(family_base, tmp_path):
    root = tmp_path / "w"
    shutil.copytree(family_base, root, symlinks=True)
    for name in ("f30k_pair", "f30k_flat"):
        assert main(eval_args(root, checkpoints=(name,))) == 0
