"""One split of SCAN's precomputed data: region features, captions and image ids.

Features come from `{split}_ims.npy` (memory-mapped) or `{split}.h5` (dataset `feat`);
the row layout (one row per image, or per caption with each image repeated five times) is
inferred from the shapes. Nothing here reads a whole split into memory.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common.errors import BenchError

CAPTIONS_PER_IMAGE = 5


@dataclass
class Split:
    directory: Path
    name: str
    features: object  # np.memmap or h5py.Dataset, (rows, R, D)
    feature_path: Path
    captions: list[bytes]
    ids: list[str] | None
    rows_per_image: int  # 5 when each image is repeated per caption, 1 otherwise

    @property
    def n_images(self) -> int:
        return len(self.captions) // CAPTIONS_PER_IMAGE

    @property
    def n_captions(self) -> int:
        return len(self.captions)

    @property
    def texts(self) -> list[str]:
        return [caption.decode("utf-8") for caption in self.captions]

    @property
    def image_ids(self) -> list[str] | None:
        return None if self.ids is None else self.ids[:: self.rows_per_image]

    def image_rows(self, start: int, stop: int) -> np.ndarray:
        """Features of images [start, stop) as float32 (n, R, D), checked for NaN/inf."""
        step = self.rows_per_image
        rows = np.array(self.features[start * step : stop * step : step], dtype=np.float32)
        if not np.isfinite(rows).all():
            bad = start + int(np.argwhere(~np.isfinite(rows))[0][0])
            raise BenchError(f"{self.feature_path}: non-finite feature values in image {bad} (row {bad * step})")
        return rows


def _open_features(directory: Path, split: str) -> tuple[object, Path]:
    npy, h5 = directory / f"{split}_ims.npy", directory / f"{split}.h5"
    if npy.is_file():
        try:
            return np.load(npy, mmap_mode="r"), npy
        except (ValueError, OSError) as err:
            raise BenchError(f"{npy}: not a readable .npy array ({err})") from None
    if h5.is_file():
        import h5py

        try:
            handle = h5py.File(h5, "r")
        except OSError as err:
            raise BenchError(f"{h5}: not a readable HDF5 file ({err})") from None
        if "feat" not in handle:
            raise BenchError(f"{h5}: has no dataset 'feat'")
        return handle["feat"], h5
    raise BenchError(f"{npy}: features not found (nor {h5.name}); run `make download` or pass --data-root")


def _read_lines(path: Path, what: str) -> list[bytes]:
    if not path.is_file():
        raise BenchError(f"{path}: {what} file not found")
    with open(path, "rb") as handle:
        return [line.strip() for line in handle]


def _infer_rows_per_image(rows: int, n_captions: int, path: Path) -> int:
    if n_captions == 0 or n_captions % CAPTIONS_PER_IMAGE:
        raise BenchError(f"{path}: {n_captions} captions is not a positive multiple of {CAPTIONS_PER_IMAGE}")
    if rows == n_captions:
        return CAPTIONS_PER_IMAGE
    if rows * CAPTIONS_PER_IMAGE == n_captions:
        return 1
    raise BenchError(
        f"{path}: {rows} feature rows do not fit {n_captions} captions "
        f"(expected {n_captions} rows, one per caption, or {n_captions // CAPTIONS_PER_IMAGE}, one per image)"
    )


def load_split(data_root: str | Path, data_dir: str, split: str) -> Split:
    directory = Path(data_root) / data_dir
    features, feature_path = _open_features(directory, split)
    if len(features.shape) != 3 or features.shape[1] == 0 or features.shape[2] == 0:
        raise BenchError(f"{feature_path}: features must be (rows, regions, dim), got {tuple(features.shape)}")
    captions = _read_lines(directory / f"{split}_caps.txt", "captions")
    for number, caption in enumerate(captions, start=1):
        try:
            caption.decode("utf-8")
        except UnicodeDecodeError:
            raise BenchError(f"{directory / f'{split}_caps.txt'}: line {number} is not UTF-8") from None
    rows_per_image = _infer_rows_per_image(features.shape[0], len(captions), feature_path)
    ids_path = directory / f"{split}_ids.txt"
    ids = None
    if ids_path.is_file():
        ids = [line.decode("utf-8") for line in _read_lines(ids_path, "ids")]
        if len(ids) != features.shape[0]:
            raise BenchError(f"{ids_path}: {len(ids)} ids for {features.shape[0]} feature rows")
    return Split(directory, split, features, feature_path, captions, ids, rows_per_image)
