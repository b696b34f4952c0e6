"""CREAM's, SPS's and L2RM's Google Drive folders fetched with gdown (`download --family cream|sps|l2rm|all`).

The folders' file names are unconfirmed, so the whole folder is fetched into a temporary folder beside
the destination (`<models>/family/.<method>.partial-...`), every checkpoint it holds is checked exactly
as `--from DIR` checks one fetched by hand (bench.download.family_import), and only then are they moved
into `<models>/family/<method>/`; on any failure the temporary folder is removed and nothing is placed.
BiCro's OneDrive folders cannot be fetched this way: they stay by hand (`--from`).
"""

import shutil
from pathlib import Path

from bench.common.errors import BenchError
from bench.common.temporaries import partial_name, sweep_partials
from bench.family.releases import RELEASES

DRIVE_FOLDERS = {r.key: r.location for r in RELEASES if r.host == "drive-folder"}


def drive_methods(family: str | None) -> list[str]:
    """The methods of --family whose folders gdown fetches (none for ncr, bicro, or no --family)."""
    return [method for method in DRIVE_FOLDERS if family in ("all", method)]


def present_checkpoints(models_root: Path, method: str) -> list[Path]:
    from bench.download.prepare import CHECKPOINT_SUFFIXES

    folder = Path(models_root) / "family" / method
    return sorted(p for p in folder.glob("*") if p.is_file() and p.name.endswith(CHECKPOINT_SUFFIXES))


def fetch_drive_folder(method: str, models_root: Path, offline: bool = False) -> list[str]:
    """Fetch, check and place one method's Drive folder; one line per checkpoint placed. A folder
    already holding checkpoints is left as it is (remove them to fetch again)."""
    from bench.download.family_import import check_folder, place_checked

    folder_id = DRIVE_FOLDERS[method]
    destination = Path(models_root) / "family" / method
    present = present_checkpoints(models_root, method)
    if present:
        return [f"{destination}: present ({len(present)} checkpoint(s); remove them to fetch the folder again)"]
    if offline:
        raise BenchError(f"{destination}: no checkpoint present, and --offline fetches nothing (Google Drive "
                         f"folder {folder_id})")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.parent / partial_name(method, "")
    sweep_partials(staging)  # the temporary folders of fetches that were killed
    try:
        staging.mkdir()
        _gdown_folder(method, folder_id, staging)
        checked = check_folder(method, staging, f"Google Drive folder {folder_id} ({method})")
        return place_checked(method, checked, models_root, move=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _gdown_folder(method: str, folder_id: str, output: Path) -> None:
    """gdown's folder download; any failure of it (quota, network, a folder gone or private) is one line."""
    import gdown

    try:
        fetched = gdown.download_folder(id=folder_id, output=str(output), quiet=True)
        failure = None if fetched else "gdown fetched nothing"
    except Exception as err:  # noqa: BLE001  (gdown raises its own, requests' and OS errors alike)
        failure = " ".join(str(err).replace(f"{output}/", "").split()) or type(err).__name__
    if failure:
        raise BenchError(f"Google Drive folder {folder_id} ({method}): {failure[:300]}; fetch it by hand from "
                         f"https://drive.google.com/drive/folders/{folder_id}, then "
                         f"`download --family {method} --from DIR`")
