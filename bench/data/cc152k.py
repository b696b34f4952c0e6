"""NCR's CC152K split: `{split}_caps.tsv` captions and `{split}_ims.npy` features, one caption per image.

The captions are read exactly as NCR's data loader reads them: `csv.reader(f, delimiter="\\t")` over
the file opened as text, column 0 the image id, column 1 the caption (`.strip()`), further columns
(the public test file has the image URL) ignored. Feature row i is the image of caption i.
"""

import csv
from pathlib import Path

from bench.common.errors import BenchError
from bench.data.splits import Split, open_split_features

TSV_ENDING = "_caps.tsv"


def _check_bytes(path: Path) -> None:
    """A NUL byte (a binary or damaged file) and text that is not UTF-8 are refused, by line."""
    if not path.is_file():
        raise BenchError(f"{path}: captions file not found (NCR's CC152K layout: image id <TAB> caption per line)")
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if b"\0" in line:
            raise BenchError(f"{path}: line {number} holds a NUL byte (not a text file, or damaged)")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise BenchError(f"{path}: line {number} is not UTF-8") from None


def read_tsv_captions(path: Path) -> tuple[list[str], list[bytes]]:
    """(image ids, captions) of a CC152K captions file; a row without a caption is refused."""
    _check_bytes(path)
    ids, captions = [], []
    with open(path, encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        try:
            for row in reader:
                if len(row) < 2:
                    raise BenchError(f"{path}: line {reader.line_num} has {len(row)} column(s); expected "
                                     "image id <TAB> caption")
                caption = row[1].strip()
                if not caption:
                    raise BenchError(f"{path}: line {reader.line_num} has an empty caption")
                ids.append(row[0])
                captions.append(caption.encode("utf-8"))
        except csv.Error as err:
            raise BenchError(f"{path}: line {reader.line_num}: not tab-separated text ({err})") from None
    if not captions:
        raise BenchError(f"{path}: holds no captions")
    return ids, captions


def load_tsv_split(data_root: str | Path, data_dir: str, split: str, features: bool = True) -> Split:
    """The split with its features (one row per caption's image), or captions and ids only."""
    directory = Path(data_root) / data_dir
    captions_path = directory / f"{split}{TSV_ENDING}"
    ids, captions = read_tsv_captions(captions_path)
    array, feature_path = open_split_features(directory, split) if features else (None, None)
    if array is not None and array.shape[0] != len(captions):
        raise BenchError(f"{captions_path}: {len(captions)} captions, but {feature_path} has {array.shape[0]} "
                         "feature rows; CC152K has one image row per caption")
    return Split(directory, split, array, feature_path, captions, ids, rows_per_image=1, captions_per_image=1,
                 captions_name=captions_path.name)
