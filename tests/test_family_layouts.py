"""The family's three checkpoint layouts: recognised from the file, scored as their evaluations rank."""

import numpy as np
import pytest
import torch

from bench.common.errors import BenchError
from bench.data import synthetic
from bench.data.splits import load_split
from bench.eval.score_split import score_split
from bench.model.checkpoint import read_checkpoint
from bench.model.random_weights import (
    network_parts,
    small_config,
    write_checkpoint,
    write_flat_checkpoint,
    write_pair_checkpoint,
)

VOCAB = len(synthetic.vocabulary_words())


def _config(module="SGR"):
    return small_config(module, "f30k_precomp", VOCAB)


def _sims(data_root, *paths):
    split = load_split(data_root, "f30k_precomp", "test")
    return score_split(list(paths), split, data_root, None, torch.device("cpu"), "fp32").sims


def test_pair_is_recognised_and_its_matrix_is_the_mean_of_its_two_networks(tmp_path, data_root):
    pair = write_pair_checkpoint(tmp_path / "ncr.pth.tar", _config(), seeds=(3, 4))
    checkpoint = read_checkpoint(pair)
    assert (checkpoint.layout, len(checkpoint.networks), checkpoint.layout_label) == ("pair", 2, "pair")
    single_a = write_checkpoint(tmp_path / "a.pth.tar", _config(), seed=3, ddp_prefix=False)
    single_b = write_checkpoint(tmp_path / "b.pth.tar", _config(), seed=4)
    expected = (_sims(data_root, single_a) + _sims(data_root, single_b)) / 2
    np.testing.assert_array_equal(_sims(data_root, pair), expected)


def test_two_pairs_are_the_mean_of_the_two_files_means(tmp_path, data_root):
    first = write_pair_checkpoint(tmp_path / "1.pth.tar", _config(), seeds=(1, 2))
    second = write_pair_checkpoint(tmp_path / "2.pth.tar", _config(), seeds=(5, 6))
    expected = (_sims(data_root, first) + _sims(data_root, second)) / 2
    np.testing.assert_allclose(_sims(data_root, first, second), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mask_row", [False, True])
def test_flat_network_equals_the_same_weights_in_the_single_layout(tmp_path, data_root, mask_row):
    flat = write_flat_checkpoint(tmp_path / "l2rm.pth.tar", _config("SAF"), seed=7, mask_row=mask_row)
    checkpoint = read_checkpoint(flat)
    assert checkpoint.layout == "flat" and checkpoint.mask_rows == int(mask_row)
    assert checkpoint.layout_label == f"flat (V{'+1' if mask_row else ''} embedding rows)"
    assert checkpoint.config.vocab_size == VOCAB + mask_row and "cost_function" not in checkpoint.extra
    single = write_checkpoint(tmp_path / "single.pth.tar", _config("SAF"), seed=7)
    np.testing.assert_array_equal(_sims(data_root, flat), _sims(data_root, single))


def test_flat_saf_and_sgr_make_l2rm_sgraf(tmp_path, data_root):
    saf = write_flat_checkpoint(tmp_path / "saf.pth.tar", _config("SAF"), seed=1, mask_row=True)
    sgr = write_flat_checkpoint(tmp_path / "sgr.pth.tar", _config("SGR"), seed=2)
    split = load_split(data_root, "f30k_precomp", "test")
    scored = score_split([sgr, saf], split, data_root, None, torch.device("cpu"), "fp32")
    assert scored.model_label == "SGRAF"
    np.testing.assert_allclose(scored.sims, (_sims(data_root, sgr) + _sims(data_root, saf)) / 2, atol=1e-6)


def test_single_layout_parts_match_network_parts(tmp_path):
    """The writers' networks are the single layout's: same seed, same tensors (what the equalities rest on)."""
    single = read_checkpoint(write_checkpoint(tmp_path / "s.pth.tar", _config(), seed=9))
    for ours, theirs in zip(single.state_dicts, network_parts(_config(), 9)):
        assert all(torch.equal(ours[key], theirs[key]) for key in theirs)


def test_a_released_ncr_file_is_held_to_ncrs_own_figures_never_daas(tmp_path, data_root):
    """Named as NCR's release, the pair is NCR at 0.2 noise: its figures are compared with NCR's Table 1."""
    import json

    from bench.cli.main import main

    pair = write_pair_checkpoint(tmp_path / "ncr_f30k_0.2_model_best.pth.tar", _config(), seeds=(1, 2))
    out = tmp_path / "run.json"
    assert main(["eval", "--protocol", "f30k-1k", "--data-root", str(data_root), "--device", "cpu",
                 "--checkpoint", str(pair), "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert (document["provenance"]["method"], document["provenance"]["noise"]) == ("NCR", "0.2")
    figures = {(f["direction"], f["metric"]): f for f in document["figures"] if f["fold"] == "all"}
    assert figures[("i2t", "r1")]["reference"] == 75.0 and figures[("i2t", "r1")]["status"] == "off"
    assert figures[("both", "rsum")]["reference"] == pytest.approx(496.7)
    assert figures[("i2t", "medr")]["status"] == "no-reference"


def test_an_unnamed_pair_and_a_flat_file_carry_no_reference(tmp_path, data_root):
    import json

    from bench.cli.main import main

    for path in (write_pair_checkpoint(tmp_path / "mine.pth.tar", _config()),
                 write_flat_checkpoint(tmp_path / "l2rm_best.pth.tar", _config())):
        out = tmp_path / f"{path.stem}.json"
        assert main(["eval", "--protocol", "f30k-1k", "--data-root", str(data_root), "--device", "cpu",
                     "--checkpoint", str(path), "--json", str(out)]) == 0
        document = json.loads(out.read_text())
        assert {f["status"] for f in document["figures"]} == {"no-reference"}
    assert document["provenance"]["method"] == "L2RM" and document["provenance"]["noise"] == "0.2"


def test_training_refuses_to_start_from_a_pair(tmp_path):
    from bench.training.start import _init_from

    pair = write_pair_checkpoint(tmp_path / "pair.pth.tar", _config())
    settings = type("Settings", (), {"init_from": pair, "module_name": "SGR"})()
    with pytest.raises(BenchError, match="co-trained pair"):
        _init_from(settings, None, None)
