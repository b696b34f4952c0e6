"""Architecture hyper-parameters of one SGR / SAF model, taken from a checkpoint's `opt`."""

import argparse
from dataclasses import asdict, dataclass, fields

from bench.common.errors import BenchError

MODULE_NAMES = ("SGR", "SAF")
# Sane ranges of the integer fields: wide around the published models (vocabularies of ~10^4
# words, 2048-d regions, 1024-d embeddings, 1 GRU layer, 3 SGR steps), narrow enough that a
# hostile `opt` cannot make building the model take more than a moment.
INT_RANGES = {
    "vocab_size": (len(("<pad>", "<start>", "<end>", "<unk>")), 10**7), "img_dim": (1, 2**15),
    "word_dim": (1, 2**15), "embed_size": (1, 2**15), "sim_dim": (1, 2**15), "num_layers": (1, 8),
    "sgr_step": (1, 32), "num_regions": (1, 4096),
}
BOOL_FIELDS = ("bi_gru", "no_imgnorm", "no_txtnorm")


@dataclass(frozen=True)
class ModelConfig:
    """Everything the forward pass needs; built from `opt`, never from constants."""

    data_name: str
    vocab_size: int
    img_dim: int
    word_dim: int
    embed_size: int
    sim_dim: int
    num_layers: int
    bi_gru: bool
    no_imgnorm: bool
    no_txtnorm: bool
    module_name: str
    sgr_step: int
    num_regions: int = 36

    @classmethod
    def from_opt(cls, opt: argparse.Namespace, num_regions: int = 36, source: str = "checkpoint"):
        """Read the fields from a checkpoint's `opt`; a missing one is a clear error."""
        values = {}
        for field in fields(cls):
            if field.name == "num_regions":
                continue
            if not hasattr(opt, field.name):
                raise BenchError(f"{source}: its opt has no '{field.name}' hyper-parameter")
            values[field.name] = getattr(opt, field.name)
        values["num_regions"] = num_regions
        for name, value in values.items():
            _check_field(name, value, source)
        return cls(**values)

    def to_opt(self, **extra) -> argparse.Namespace:
        """The published `opt` layout: these fields plus training settings in `extra`."""
        values = asdict(self)
        values.pop("num_regions")
        return argparse.Namespace(**values, **extra)


def _check_field(name: str, value, source: str) -> None:
    """Type and range of one field; `bi_gru="False"` or `embed_size=1e7` is refused, not coerced."""
    problem = None
    if name in INT_RANGES:
        low, high = INT_RANGES[name]
        if type(value) is not int:
            problem = f"must be an integer, not {type(value).__name__}"
        elif not low <= value <= high:
            problem = f"must be in [{low}, {high}]"
    elif name in BOOL_FIELDS and type(value) is not bool:
        problem = f"must be True or False, not {type(value).__name__}"
    elif name == "module_name" and value not in MODULE_NAMES:
        problem = f"must be one of {', '.join(MODULE_NAMES)}"
    elif name == "data_name" and not (isinstance(value, str) and value.strip()):
        problem = "must be a non-empty string"
    if problem:
        raise BenchError(f"{source}: opt.{name} is {_short(value)}; it {problem}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
