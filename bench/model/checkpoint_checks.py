"""Checks a checkpoint must pass before any of it is trusted or any model is built.

The container: an empty file, or a zip whose CRCs fail (one flipped byte changes figures
without any error from torch.load). The weights: every tensor the `opt` implies, with its
shape and a floating-point dtype, computed on the meta device so that a hostile `opt`
(embed_size 10**7) costs milliseconds and allocates nothing.
"""

import zipfile
import zlib
from pathlib import Path

import torch

from bench.common.errors import BenchError
from bench.model.config import ModelConfig
from bench.model.network import SimilarityModel

PART_NAMES = ("image encoder", "text encoder", "similarity encoder")


def check_archive(path: Path) -> None:
    """Refuse an empty file, and a torch zip archive with a member that fails its CRC."""
    if path.stat().st_size == 0:
        raise BenchError(f"{path}: checkpoint file is empty")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as handle:
            if handle.read(4) == b"PK\x03\x04":
                raise BenchError(f"{path}: damaged checkpoint archive: a zip without its central directory "
                                 "(a truncated download?)")
        return  # the legacy (pre-1.6) torch format has no checksums; torch.load checks its structure
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        raise BenchError(f"{path}: damaged checkpoint archive ({err})") from None
    if damaged is not None:  # torch names the members <archive folder>/data/<n>: the folder says nothing
        raise BenchError(f"{path}: damaged checkpoint: member {damaged.split('/', 1)[-1]} fails its CRC check "
                         "(download it again)")


def expected_tensors(config: ModelConfig) -> list[dict[str, torch.Tensor]]:
    """The state dicts (meta tensors: shapes and dtypes only) a model of `config` has, per part."""
    with torch.device("meta"):
        model = SimilarityModel(config)
    return [part.state_dict() for part in model.parts()]


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:4]) + (" ..." if len(keys) > 4 else "")


def check_part(state: dict, expected: dict[str, torch.Tensor], name: str, path: Path) -> None:
    """Same keys, tensors only, the implied shapes, floating point where the model holds floats."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = ([f"missing {_listed(missing)}"] if missing else []) + \
                 ([f"unexpected {_listed(unexpected)}"] if unexpected else [])
        raise BenchError(f"{path}: {name} keys do not match the model ({'; '.join(detail)})")
    for key, want in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise BenchError(f"{path}: {name} '{key}' is a {type(value).__name__}, not a tensor")
        if value.layout != torch.strided or value.device.type == "meta":
            kind = "on the meta device (no values)" if value.device.type == "meta" else f"a {value.layout} tensor"
            raise BenchError(f"{path}: {name} '{key}' is {kind}; weights must be dense tensors with values")
        if tuple(value.shape) != tuple(want.shape):
            raise BenchError(f"{path}: {name} '{key}' has shape {tuple(value.shape)}, "
                             f"the opt implies {tuple(want.shape)}")
        if want.is_floating_point() and not value.is_floating_point():
            raise BenchError(f"{path}: {name} '{key}' holds {value.dtype}; weights must be floating point")
        if want.is_floating_point() and not _finite(value):
            raise BenchError(f"{path}: {name} '{key}' holds NaN or infinite values")
        if not want.is_floating_point() and (value.is_floating_point() or value.is_complex()):
            raise BenchError(f"{path}: {name} '{key}' holds {value.dtype}; expected integers")


def _finite(tensor: torch.Tensor) -> bool:
    """Every value finite. A NaN or inf always makes the sum non-finite, so the sum (no
    allocation) settles the common case; only a non-finite sum (maybe overflow) is looked at."""
    with torch.no_grad():
        return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def check_weights(state_dicts: list[dict], config: ModelConfig, path: Path, network: str | None = None) -> None:
    """Every part against the model `config` implies; `network` (model_A, ...) names which one of a pair."""
    for state, expected, name in zip(state_dicts, expected_tensors(config), PART_NAMES):
        check_part(state, expected, f"{network} {name}" if network else name, path)


def num_regions(sim_state: dict, path: Path) -> int:
    """Region count, read from the shape of the visual self-attention's batch norm."""
    key = "v_global_w.embedding_local.1.weight"
    value = sim_state.get(key)
    if not isinstance(value, torch.Tensor) or value.dim() != 1:
        raise BenchError(f"{path}: similarity encoder has no 1-d tensor '{key}' (not an SGR/SAF checkpoint?)")
    return int(value.shape[0])
