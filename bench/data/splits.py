"""One split of SCAN's precomputed data: region features, captions and image ids.

Features come from `{split}_ims.npy` (memory-mapped) or `{split}.h5` (dataset `feat`);
the row layout (one row per image, or per caption with each image repeated five times) is
inferred from the shapes. Nothing here reads a whole split into memory.
"""

import codecs
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common.errors import BenchError
from bench.common.inputs import require_file

CAPTIONS_PER_IMAGE = 5


@dataclass
class Split:
    directory: Path
    name: str
    features: object  # np.memmap or h5py.Dataset, (rows, R, D); None for a captions-only split
    feature_path: Path | None
    captions: list[bytes]
    ids: list[str] | None
    rows_per_image: int  # 5 when each image is repeated per caption, 1 otherwise
    captions_per_image: int = CAPTIONS_PER_IMAGE  # 1 for CC152K
    captions_name: str | None = None  # the captions file; None: SCAN's {split}_caps.txt

    @property
    def captions_path(self) -> Path:
        return self.directory / (self.captions_name or f"{self.name}_caps.txt")

    @property
    def n_images(self) -> int:
        return len(self.captions) // self.captions_per_image

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


def split_files(data_root: str | Path, data_dir: str, split: str) -> list[Path]:
    """Every file a split may be read from (features in either format, captions, ids)."""
    directory = Path(data_root) / data_dir
    return [directory / f"{split}{ending}" for ending in ("_ims.npy", ".h5", "_caps.txt", "_caps.tsv", "_ids.txt")]


def _open_npy(npy: Path):
    try:
        array = np.load(npy, mmap_mode="r")
    except (ValueError, OSError, EOFError) as err:
        first_line = (str(err).strip().splitlines() or ["empty or truncated"])[0][:200]
        raise BenchError(f"{npy}: not a readable .npy array ({first_line})") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise BenchError(f"{npy}: is an .npz archive, not one .npy array (save it with np.save)")
    return array


def _open_h5(h5: Path):
    import h5py

    try:
        handle = h5py.File(h5, "r")
    except OSError as err:
        raise BenchError(f"{h5}: not a readable HDF5 file ({err})") from None
    if not isinstance(handle.get("feat"), h5py.Dataset):
        raise BenchError(f"{h5}: has no dataset 'feat' (missing, or a group)")
    return handle["feat"]


def open_feature_file(path: Path):
    """A feature file opened again by its path (a data-loader worker opens its own handle)."""
    return _open_h5(path) if path.suffix == ".h5" else _open_npy(path)


def open_split_features(directory: Path, split: str) -> tuple[object, Path]:
    """The feature array of a split, checked to be (rows, regions, dim) floating point."""
    npy, h5 = directory / f"{split}_ims.npy", directory / f"{split}.h5"
    if npy.is_file():
        features, path = _open_npy(npy), npy
    elif h5.is_file():
        features, path = _open_h5(h5), h5
    else:
        raise BenchError(f"{npy}: features not found (nor {h5.name}); run `make download` or pass --data-root")
    if features.dtype.kind != "f":
        raise BenchError(f"{path}: features are {features.dtype}; expected floating point (float32)")
    if len(features.shape) != 3 or 0 in features.shape:
        raise BenchError(f"{path}: features must be (rows, regions, dim), got {tuple(features.shape)}")
    return features, path


def _read_lines(path: Path, what: str) -> list[bytes]:
    """The file's lines, stripped; a UTF-8 byte-order mark (Windows editors add one) is not part of
    the first line, and a NUL byte (a binary or damaged file) is refused."""
    require_file(path, f"{what} file")
    with open(path, "rb") as handle:
        lines = [line.strip() for line in handle]
    if lines and lines[0].startswith(codecs.BOM_UTF8):
        lines[0] = lines[0][len(codecs.BOM_UTF8):].strip()
    for number, line in enumerate(lines, start=1):
        if b"\0" in line:
            raise BenchError(f"{path}: line {number} holds a NUL byte (not a text file, or damaged)")
    return lines


REPEAT_SAMPLES = 8  # images whose rows are compared; spread over the file, a wrong layout shows in any


def _unrepeated_image(features) -> int | None:
    """The first sampled image whose CAPTIONS_PER_IMAGE rows are not copies of one row (None: all are)."""
    n_images = features.shape[0] // CAPTIONS_PER_IMAGE
    for image in sorted({int(i) for i in np.linspace(0, n_images - 1, min(n_images, REPEAT_SAMPLES))}):
        rows = np.asarray(features[image * CAPTIONS_PER_IMAGE:(image + 1) * CAPTIONS_PER_IMAGE])
        unreadable = ~np.isfinite(rows) | ~np.isfinite(rows[:1])  # NaN and inf are refused later, by row
        if not ((rows == rows[:1]) | unreadable).all():
            return image
    return None if n_images else 0


def _check_caption_count(n_captions: int, captions_path: Path) -> None:
    if n_captions == 0 or n_captions % CAPTIONS_PER_IMAGE:
        raise BenchError(f"{captions_path}: {n_captions} captions is not a positive multiple of {CAPTIONS_PER_IMAGE}")


def _infer_rows_per_image(features, n_captions: int, path: Path, captions_path: Path) -> int:
    """5 (a row per caption) or 1 (a row per image); an ambiguous or impossible count is refused."""
    rows = features.shape[0]
    _check_caption_count(n_captions, captions_path)
    if rows == n_captions:
        image = _unrepeated_image(features)
        if image is not None:
            first = image * CAPTIONS_PER_IMAGE + 1
            raise BenchError(f"{path}: {rows} rows, a row per caption, but rows "
                             f"{first}-{first + CAPTIONS_PER_IMAGE - 1} "
                             f"are not {CAPTIONS_PER_IMAGE} copies of one image's features; the file is not in "
                             "SCAN's per-caption layout")
        return CAPTIONS_PER_IMAGE
    if rows * CAPTIONS_PER_IMAGE == n_captions:
        if _unrepeated_image(features) is None:
            raise BenchError(
                f"{captions_path}: {n_captions} captions, but {path} has {rows} rows that repeat each image "
                f"{CAPTIONS_PER_IMAGE} times (a row per caption), so {rows} captions were expected")
        return 1
    raise BenchError(
        f"{path}: {rows} feature rows do not fit {n_captions} captions "
        f"(expected {n_captions} rows, one per caption, or {n_captions // CAPTIONS_PER_IMAGE}, one per image)"
    )


def _read_ids(path: Path, rows: int, rows_per_image: int, lines: list[bytes] | None = None) -> list[str]:
    """The ids, checked against the feature rows; `lines` when the caller has already read the file."""
    lines = _read_lines(path, "ids") if lines is None else lines
    if len(lines) != rows:
        raise BenchError(f"{path}: {len(lines)} ids for {rows} feature rows")
    try:
        ids = [line.decode("utf-8") for line in lines]
    except UnicodeDecodeError:
        raise BenchError(f"{path}: not UTF-8 text (expected one image id per line)") from None
    if rows_per_image > 1 and len(set(ids[:rows_per_image])) > 1:
        raise BenchError(f"{path}: rows 1-{rows_per_image} name different images, but the features have a row "
                         "per caption (each image repeated); the ids and features do not belong together")
    return ids


def _read_captions(captions_path: Path) -> list[bytes]:
    captions = _read_lines(captions_path, "captions")
    for number, caption in enumerate(captions, start=1):
        try:
            caption.decode("utf-8")
        except UnicodeDecodeError:
            raise BenchError(f"{captions_path}: line {number} is not UTF-8") from None
    return captions


def load_split(data_root: str | Path, data_dir: str, split: str) -> Split:
    directory = Path(data_root) / data_dir
    features, feature_path = open_split_features(directory, split)
    captions_path = directory / f"{split}_caps.txt"
    captions = _read_captions(captions_path)
    rows_per_image = _infer_rows_per_image(features, len(captions), feature_path, captions_path)
    ids_path = directory / f"{split}_ids.txt"
    ids = _read_ids(ids_path, features.shape[0], rows_per_image) if ids_path.is_file() else None
    return Split(directory, split, features, feature_path, captions, ids, rows_per_image)


def load_text_split(data_root: str | Path, data_dir: str, split: str) -> Split:
    """Captions and ids only (`features` None): all that evaluating another model's score matrix
    reads, so its user needs no region features. The ids file may hold a row per image or per caption."""
    directory = Path(data_root) / data_dir
    captions_path = directory / f"{split}_caps.txt"
    captions = _read_captions(captions_path)
    _check_caption_count(len(captions), captions_path)
    ids_path = directory / f"{split}_ids.txt"
    ids, rows_per_image = None, 1
    if ids_path.is_file():
        lines = _read_lines(ids_path, "ids")
        rows_per_image = CAPTIONS_PER_IMAGE if len(lines) == len(captions) else 1
        ids = _read_ids(ids_path, len(captions) // CAPTIONS_PER_IMAGE * rows_per_image, rows_per_image, lines)
    return Split(directory, split, None, None, captions, ids, rows_per_image)
