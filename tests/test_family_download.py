"""The family's registry: --family selection, --list, NCR's files and CC152K from a loopback mirror,
folders fetched by hand taken with --from, and the make targets generated from the registry."""

import io
import subprocess
import tarfile

import pytest
from test_download import mirror  # noqa: F401  (the loopback server fixture)

from bench.cli.main import main
from bench.data import synthetic
from bench.download import family_items
from bench.family import plan
from bench.family.releases import RELEASES, select
from bench.model.random_weights import small_config, write_flat_checkpoint, write_pair_checkpoint

VOCAB = len(synthetic.vocabulary_words())
NCR_FILE = "ncr_f30k_0.2_model_best.pth.tar"


def _tar(members: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def family_mirror(tmp_path, mirror, monkeypatch):  # noqa: F811
    monkeypatch.setenv("BENCH_STAND_IN_DATA", "1")
    pair = write_pair_checkpoint(tmp_path / NCR_FILE, small_config("SGR", "f30k_precomp", VOCAB))
    mirror.files[NCR_FILE] = pair.read_bytes()
    src = tmp_path / "src"
    synthetic.write_tsv_split(src / "cc152k_precomp", "test", 6, seed=2)
    synthetic.write_vocab(src / "vocab.json")
    mirror.files["NCR-data.tar"] = _tar({
        "data/cc152k_precomp/test_caps.tsv": (src / "cc152k_precomp/test_caps.tsv").read_bytes(),
        "data/cc152k_precomp/test_ims.npy": (src / "cc152k_precomp/test_ims.npy").read_bytes(),
        "data/cc152k_precomp/train_caps.tsv": b"not needed\tfor evaluation\n",
        "vocab/cc152k_precomp_vocab.json": (src / "vocab.json").read_bytes()})
    items = [item for item in family_items.FAMILY_ITEMS if item.filename in (NCR_FILE, "NCR-data.tar")]
    monkeypatch.setattr(family_items, "FAMILY_ITEMS", tuple(items))
    return mirror


def test_family_ncr_fetches_checkpoints_and_only_cc152ks_test_split(tmp_path, family_mirror):
    roots = ["--data-root", str(tmp_path / "data"), "--models-root", str(tmp_path / "models")]
    assert main(["download", "--family", "ncr", "--mirror", family_mirror.url, *roots]) == 0
    assert (tmp_path / "models/family/ncr" / NCR_FILE).is_file()
    assert (tmp_path / "data/cc152k_precomp/test_caps.tsv").is_file()
    assert (tmp_path / "data/vocab/cc152k_precomp_vocab.json").is_file()
    assert not (tmp_path / "data/cc152k_precomp/train_caps.tsv").exists()
    requested = {name for name, _ in family_mirror.log}
    assert requested == {NCR_FILE, "NCR-data.tar"}
    runs, missing = plan.run_lines(tmp_path / "models")
    assert runs == [f"{tmp_path / 'models/family/ncr' / NCR_FILE} f30k-1k family-ncr_f30k_0.2-f30k-1k"]
    assert len(missing) == 6 and all("not present" in line for line in missing)


def test_list_shows_the_family_with_unknown_sizes_and_unconfirmed_names(capsys):
    assert main(["download", "--list", "--family", "all", "--offline"]) == 0
    out = capsys.readouterr().out
    assert NCR_FILE in out and "unknown" in out and "UNCONFIRMED" in out
    for release in RELEASES:
        assert release.location.split("/")[-1] in out


def test_a_folder_method_without_from_says_where_and_fails(capsys):
    assert main(["download", "--family", "bicro"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1drv.ms" in err[0] and "--from" in err[0]


def test_from_folder_takes_what_it_holds_after_checking_each_layout(tmp_path, capsys):
    folder = tmp_path / "by_hand"
    folder.mkdir()
    write_flat_checkpoint(folder / "checkpoint_saf.pth.tar", small_config("SAF", "f30k_precomp", VOCAB))
    assert main(["download", "--family", "l2rm", "--from", str(folder), "--models-root", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m/family/l2rm/checkpoint_saf.pth.tar").is_file()
    write_pair_checkpoint(folder / "wrong.pth.tar", small_config("SGR", "f30k_precomp", VOCAB))
    assert main(["download", "--family", "l2rm", "--from", str(folder), "--models-root", str(tmp_path / "n")]) == 2
    assert "pair checkpoint, but L2RM releases flat" in capsys.readouterr().err
    assert not (tmp_path / "n").exists()


def test_make_targets_are_generated_from_the_registry(tmp_path):
    confirmed = [r for r in RELEASES if r.target]
    assert len(confirmed) == 7 and all(r.key == "ncr" for r in confirmed)
    assert [r.target for r in select("ncr")][:3] == ["reproduce-ncr-f30k-0", "reproduce-ncr-f30k-0.2",
                                                    "reproduce-ncr-f30k-0.5"]
    dry = subprocess.run(["make", "-n", "reproduce-ncr-cc152k-real", f"MODELS_ROOT={tmp_path}"],
                         capture_output=True, text=True, cwd=plan.__file__.rsplit("/bench/", 1)[0])
    assert dry.returncode == 0, dry.stderr
    assert f"--checkpoint {tmp_path}/family/ncr/ncr_cc152k_model_best.pth.tar --protocol cc152k-1k" in dry.stdout
    missing = subprocess.run(["make", "-s", "reproduce-ncr-f30k-0.5", f"MODELS_ROOT={tmp_path}"],
                             capture_output=True, text=True, cwd=plan.__file__.rsplit("/bench/", 1)[0])
    assert missing.returncode != 0 and "not present" in missing.stderr


def test_make_reproduce_family_runs_offline_on_stand_ins(tmp_path):
    """NCR's pair on stand-in F30K data, an L2RM file fetched by hand, six NCR files absent: two runs,
    six one-line notes, then the report with its pairwise matrix."""
    import shutil
    import sys

    if shutil.which("make") is None:
        pytest.skip("needs GNU make")
    data, models, results = tmp_path / "data", tmp_path / "models", tmp_path / "results"
    synthetic.write_split(data / "f30k_precomp", "test", 10, seed=3)
    synthetic.write_vocab(data / "vocab" / "f30k_precomp_vocab.json")
    config = small_config("SGR", "f30k_precomp", VOCAB)
    (models / "family/ncr").mkdir(parents=True)
    write_pair_checkpoint(models / "family/ncr" / NCR_FILE, config)
    (models / "family/l2rm").mkdir(parents=True)
    write_flat_checkpoint(models / "family/l2rm/checkpoint_sgr.pth.tar", config, seed=5)
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()
    repo = plan.__file__.rsplit("/bench/", 1)[0]
    done = subprocess.run(["make", "--no-print-directory", "reproduce-family", f"VENV={venv}", f"PY={sys.executable}",
                           f"DATA_ROOT={data}", f"MODELS_ROOT={models}", f"RESULTS={results}", "DEVICE=cpu"],
                          capture_output=True, text=True, cwd=repo, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("not present") == 6
    assert sorted(p.name for p in (results / "family").glob("*.json")) == [
        "family-l2rm-checkpoint_sgr-f30k-1k.json", "family-ncr_f30k_0.2-f30k-1k.json"]
    assert "Pairwise paired gains" in (results / "family" / "summary.md").read_text()
