"""Checkpoints of a family method fetched by hand from its Drive or OneDrive folder (`download --family
<method> --from DIR`): whatever the folder held is taken, each file checked before it is placed.

The folders' file names are unconfirmed, so none is assumed: every checkpoint file under DIR is read
safely, must have its method's layout (a co-trained pair for CREAM, SPS and BiCro; a flat network for
L2RM) and an `opt.data_name` of the family's datasets, and is copied to <models>/family/<method>/.
The Drive folders fetched by gdown go through the same checks (bench.download.family_drive).
"""

import os
from pathlib import Path

from bench.common.atomic import atomic_path
from bench.common.errors import BenchError
from bench.common.replace_rule import CHECKPOINT
from bench.download.prepare import CHECKPOINT_SUFFIXES
from bench.family.releases import METHOD_NAMES
from bench.model.checkpoint import Checkpoint, read_checkpoint

LAYOUT_OF = {"ncr": "pair", "cream": "pair", "sps": "pair", "bicro": "pair", "l2rm": "flat"}
DATASETS = ("f30k_precomp", "coco_precomp", "cc152k_precomp")


def import_folder(method: str, folder: Path, models_root: Path) -> list[str]:
    """Check every checkpoint under `folder`, then copy them all (none if any is wrong); one line each."""
    if method not in LAYOUT_OF:
        raise BenchError(f"--family {method} --from: name one method ({', '.join(LAYOUT_OF)})")
    if not folder.is_dir():
        raise BenchError(f"--from {folder}: not a folder (the {METHOD_NAMES[method]} folder fetched by hand)")
    return place_checked(method, check_folder(method, folder), models_root)


def check_folder(method: str, folder: Path, label: str | None = None) -> list[tuple[Path, Checkpoint, str]]:
    """Every checkpoint under `folder`, read and checked, with the name it will have; `label` names a
    temporary folder in messages (the Drive folder it was fetched from) instead of its path."""
    label = label or f"--from {folder}"
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(CHECKPOINT_SUFFIXES))
    if not files:
        raise BenchError(f"{label}: holds no checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)})")
    names = [path.relative_to(folder).as_posix().replace("/", "_") for path in files]
    checked = []
    for path, name in zip(files, names):
        shown = str(path) if label.startswith("--from") else f"{label}, file {path.relative_to(folder)}"
        try:
            checkpoint = read_checkpoint(path)
        except BenchError as err:
            raise BenchError(str(err).replace(str(path), shown)) from None
        if checkpoint.layout != LAYOUT_OF[method]:
            raise BenchError(f"{shown}: a {checkpoint.layout} checkpoint, but {METHOD_NAMES[method]} releases "
                             f"{LAYOUT_OF[method]} checkpoints")
        if checkpoint.config.data_name not in DATASETS:
            raise BenchError(f"{shown}: opt.data_name is {checkpoint.config.data_name}, none of {', '.join(DATASETS)}")
        checked.append((path, checkpoint, name))
    if len(set(names)) < len(names):
        raise BenchError(f"{label}: two checkpoints would land under one name")
    return checked


def place_checked(method: str, checked: list[tuple[Path, Checkpoint, str]], models_root: Path,
                  move: bool = False) -> list[str]:
    """Put checked checkpoints under <models>/family/<method>/ (moved from a temporary folder beside it,
    or copied from the user's); one line each."""
    lines = []
    for path, checkpoint, name in checked:
        dest = Path(models_root) / "family" / method / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest, CHECKPOINT) as tmp:
            if move:
                os.replace(path, tmp)
            else:
                tmp.write_bytes(path.read_bytes())
        lines.append(f"{dest}: {METHOD_NAMES[method]} {checkpoint.layout_label}, {checkpoint.config.data_name}, "
                     f"{checkpoint.config.module_name}")
    return lines
