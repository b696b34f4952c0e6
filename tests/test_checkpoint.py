"""Loading the published checkpoint layout safely, and every way it can be wrong."""

import argparse
import json
import os
import pickle
from importlib import resources

import pytest
import torch

from bench.common.errors import BenchError
from bench.model.checkpoint import build_model, read_checkpoint, save_checkpoint
from bench.model.config import ModelConfig
from bench.model.network import SimilarityModel
from bench.model.random_weights import random_model, small_config


def test_golden_checkpoint_loads_with_module_prefix(golden_dir):
    checkpoint = read_checkpoint(golden_dir / "coco_sgr.pth.tar")
    model = build_model(checkpoint)
    assert checkpoint.config.module_name == "SGR" and checkpoint.config.embed_size == 32
    assert not model.training


@pytest.mark.parametrize("ddp_prefix", [True, False])
def test_with_and_without_prefix_give_identical_weights(make_checkpoint, ddp_prefix):
    model = build_model(read_checkpoint(make_checkpoint("SAF", ddp_prefix=ddp_prefix, seed=2)))
    expected = random_model(small_config("SAF", "coco_precomp", model.config.vocab_size), seed=2)
    for key, value in expected.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/daa_bench_pwned",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    path = tmp_path / "evil.pth.tar"
    torch.save({"model": [{}, {}, {}], "opt": Exploit()}, path)
    if os.path.exists("/tmp/daa_bench_pwned"):
        os.unlink("/tmp/daa_bench_pwned")
    with pytest.raises(BenchError, match="refused to load"):
        read_checkpoint(path)
    assert not os.path.exists("/tmp/daa_bench_pwned")


def test_plain_pickle_file_is_refused(tmp_path):
    path = tmp_path / "old.pth.tar"
    path.write_bytes(pickle.dumps({"opt": Exploit()}))
    with pytest.raises(BenchError):
        read_checkpoint(path)


def _save_raw(path, **changes):
    model = random_model(small_config("SGR", "coco_precomp", 60))
    payload = {"epoch": 1, "model": [p.state_dict() for p in model.parts()], "best_rsum": 0.0,
               "opt": small_config("SGR", "coco_precomp", 60).to_opt(), "Eiters": 0}
    payload.update(changes)
    torch.save(payload, path)
    return path


def test_missing_and_unexpected_keys_are_named(tmp_path):
    model = random_model(small_config("SGR", "coco_precomp", 60))
    sim = dict(model.sim_enc.state_dict())
    sim.pop("sim_eval_w.bias")
    sim["extra.weight"] = torch.zeros(1)
    path = _save_raw(tmp_path / "bad.pth.tar", model=[model.img_enc.state_dict(), model.txt_enc.state_dict(), sim])
    with pytest.raises(BenchError, match=r"similarity encoder keys.*missing sim_eval_w.bias.*unexpected extra.weight"):
        build_model(read_checkpoint(path))


def test_wrong_shape_is_named(tmp_path):
    opt = small_config("SGR", "coco_precomp", 60).to_opt()
    opt.embed_size = 16
    with pytest.raises(BenchError, match=r"shape"):
        build_model(read_checkpoint(_save_raw(tmp_path / "shape.pth.tar", opt=opt)))


def test_opt_must_be_a_namespace_and_complete(tmp_path):
    with pytest.raises(BenchError, match="argparse.Namespace"):
        read_checkpoint(_save_raw(tmp_path / "a.pth.tar", opt={"embed_size": 3}))
    opt = small_config("SGR", "coco_precomp", 60).to_opt()
    del opt.sim_dim
    with pytest.raises(BenchError, match="sim_dim"):
        read_checkpoint(_save_raw(tmp_path / "b.pth.tar", opt=opt))


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pth.tar").write_text("<html>quota exceeded</html>")
    with pytest.raises(BenchError, match="not a readable torch checkpoint"):
        read_checkpoint(tmp_path / "x.pth.tar")
    with pytest.raises(BenchError, match="not found"):
        read_checkpoint(tmp_path / "missing.pth.tar")


def test_save_round_trip_keeps_published_layout(tmp_path):
    model = random_model(small_config("SAF", "f30k_precomp", 60), seed=9)
    path = tmp_path / "out.pth.tar"
    save_checkpoint(path, model, model.config.to_opt(margin=0.2), epoch=4, best_rsum=10.5, eiters=7)
    with torch.serialization.safe_globals([argparse.Namespace]):
        raw = torch.load(path, weights_only=True)
    assert set(raw) == {"epoch", "model", "best_rsum", "opt", "Eiters"}
    assert all(k.startswith("module.") for part in raw["model"] for k in part)
    reloaded = build_model(read_checkpoint(path))
    assert torch.equal(reloaded.sim_enc.SAF_module.bn.running_var, model.sim_enc.SAF_module.bn.running_var)


@pytest.mark.parametrize("key", ["coco_precomp/SGR", "coco_precomp/SAF", "f30k_precomp/SGR", "f30k_precomp/SAF"])
def test_full_size_model_matches_published_schema(key):
    schema = json.loads(resources.files("bench").joinpath("reference/checkpoint-schema.json").read_text())[key]
    data_name, module = key.split("/")
    vocab = schema[1]["module.embed.weight"][0][0]
    config = ModelConfig(data_name=data_name, vocab_size=vocab, img_dim=2048, word_dim=300, embed_size=1024,
                         sim_dim=256, num_layers=1, bi_gru=True, no_imgnorm=False, no_txtnorm=False,
                         module_name=module, sgr_step=3)
    with torch.device("meta"):
        model = SimilarityModel(config)
    for part, expected in zip(model.parts(), schema):
        got = {"module." + k: [list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in part.state_dict().items()}
        assert got == expected
