"""`download --family cream|sps|l2rm` fetches the method's Google Drive folder with gdown. gdown's folder
download is replaced by a copy of a folder the test built (checkpoints in the published layouts, under
names and subfolders nobody confirmed): checked files are moved into place, one bad file refuses them all
and leaves nothing, and a gdown failure is one line naming the folder and the --from fallback."""

import shutil
from pathlib import Path

import gdown
import pytest
from bad_input_harness import dead_pid

from bench.cli.main import main
from bench.common.temporaries import partial_name
from bench.data import synthetic
from bench.download.family_drive import DRIVE_FOLDERS
from bench.family import plan
from bench.model.random_weights import small_config, write_flat_checkpoint, write_pair_checkpoint

VOCAB = len(synthetic.vocabulary_words())
WRITERS = {"cream": write_pair_checkpoint, "sps": write_pair_checkpoint, "l2rm": write_flat_checkpoint}


@pytest.fixture
def drive(tmp_path, monkeypatch):
    """The stand-in Drive folder, and the folder ids gdown was asked for."""
    folder, asked = tmp_path / "drive", []
    folder.mkdir()

    def download_folder(id=None, output=None, quiet=False, **_):
        asked.append(id)
        shutil.copytree(folder, output, dirs_exist_ok=True)
        return [str(p) for p in Path(output).rglob("*") if p.is_file()]

    monkeypatch.setattr(gdown, "download_folder", download_folder)
    return folder, asked


def _fetch(method: str, models: Path, *extra: str) -> int:
    return main(["download", "--family", method, "--models-root", str(models), *extra])


def _left_in(models: Path) -> list[str]:
    return sorted(p.relative_to(models).as_posix() for p in models.rglob("*")) if models.exists() else []


@pytest.mark.parametrize("method", ["cream", "l2rm"])
def test_a_drive_folder_is_fetched_checked_and_moved_into_place(method, tmp_path, drive, capsys):
    folder, asked = drive
    (folder / "f30k").mkdir()
    WRITERS[method](folder / "f30k/noise_0.2.pth.tar", small_config("SGR", "f30k_precomp", VOCAB))
    WRITERS[method](folder / "coco_model_best.pth", small_config("SAF", "coco_precomp", VOCAB))
    (folder / "README.txt").write_text("not a checkpoint: not taken")
    models = tmp_path / "models"
    killed = models / "family" / partial_name(method, "", pid=dead_pid())  # a fetch killed earlier
    killed.mkdir(parents=True)
    (killed / "half.pth.tar").write_bytes(b"half")
    assert plan.run_lines(models)[0] == []  # never taken for a checkpoint
    assert _fetch(method, models) == 0
    assert asked == [DRIVE_FOLDERS[method]]
    assert _left_in(models) == ["family", f"family/{method}", f"family/{method}/coco_model_best.pth",
                                f"family/{method}/f30k_noise_0.2.pth.tar"]
    out = capsys.readouterr().out
    assert "f30k_precomp, SGR" in out and "coco_precomp, SAF" in out
    assert _fetch(method, models) == 0 and len(asked) == 1  # present: not fetched again
    assert "present (2 checkpoint(s)" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["other layout", "not a checkpoint", "unknown dataset"])
def test_one_bad_file_in_the_folder_refuses_all_and_leaves_nothing(bad, tmp_path, drive, capsys):
    folder, _ = drive
    write_pair_checkpoint(folder / "good.pth.tar", small_config("SGR", "f30k_precomp", VOCAB))
    if bad == "other layout":
        write_flat_checkpoint(folder / "z_bad.pth.tar", small_config("SGR", "f30k_precomp", VOCAB))
    elif bad == "unknown dataset":
        write_pair_checkpoint(folder / "z_bad.pth.tar", small_config("SGR", "f8k_precomp", VOCAB))
    else:
        (folder / "z_bad.pth.tar").write_bytes(b"<html>Google Drive - Quota exceeded</html>")
    models = tmp_path / "models"
    assert _fetch("sps", models) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"Google Drive folder {DRIVE_FOLDERS['sps']} (sps), file z_bad.pth.tar" in err[0]
    assert "partial" not in err[0]  # the temporary folder is not what the user is told about
    assert _left_in(models) == ["family"]


@pytest.mark.parametrize("failure", ["quota", "network", "no listing"])
def test_a_gdown_failure_is_one_line_naming_the_folder_and_the_by_hand_route(failure, tmp_path, monkeypatch, capsys):
    def download_folder(id=None, output=None, **_):
        (Path(output) / "half.pth.tar").write_bytes(b"half a file")
        if failure == "quota":
            raise gdown.exceptions.DownloadError(f"Failed to download the following files:\n- {output}/half.pth.tar")
        if failure == "network":
            raise ConnectionError("Name or service not known")
        return []  # nothing listed

    monkeypatch.setattr(gdown, "download_folder", download_folder)
    models = tmp_path / "models"
    assert _fetch("l2rm", models) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and DRIVE_FOLDERS["l2rm"] in err[0] and "--family l2rm --from DIR" in err[0]
    assert _left_in(models) == ["family"]


def test_offline_fetches_nothing_and_list_says_which_are_automatic(tmp_path, drive, capsys):
    _, asked = drive
    assert _fetch("cream", tmp_path / "models", "--offline") == 2 and asked == []
    assert "--offline fetches nothing" in capsys.readouterr().err
    assert main(["download", "--list", "--family", "all", "--offline"]) == 0
    out = capsys.readouterr().out
    automatic, by_hand = out.split("fetched automatically with gdown")[1].split("by hand (")
    assert all(f"{m} (missing)" in automatic and DRIVE_FOLDERS[m] in automatic for m in ("cream", "sps", "l2rm"))
    assert "1drv.ms" in by_hand and "1drv.ms" not in automatic


def test_family_all_fetches_every_drive_folder_and_names_bicros(tmp_path, monkeypatch, capsys):
    from bench.download import family_items

    monkeypatch.setattr(family_items, "FAMILY_ITEMS", ())  # NCR's plain downloads are tested elsewhere
    config = small_config("SGR", "cc152k_precomp", VOCAB)

    def download_folder(id=None, output=None, **_):
        method = next(m for m, folder in DRIVE_FOLDERS.items() if folder == id)
        return [str(WRITERS[method](Path(output) / "model_best.pth.tar", config))]

    monkeypatch.setattr(gdown, "download_folder", download_folder)
    models = tmp_path / "models"
    assert main(["download", "--family", "all", "--models-root", str(models), "--data-root", str(tmp_path)]) == 0
    assert _left_in(models / "family") == [f"{m}{f}" for m in sorted(WRITERS) for f in ("", "/model_best.pth.tar")]
    assert "1drv.ms" in capsys.readouterr().out
