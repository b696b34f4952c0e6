"""Architecture hyper-parameters of one SGR / SAF model, taken from a checkpoint's `opt`."""

import argparse
from dataclasses import asdict, dataclass, fields

from bench.common.errors import BenchError

MODULE_NAMES = ("SGR", "SAF")


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
        config = cls(num_regions=num_regions, **values)
        if config.module_name not in MODULE_NAMES:
            raise BenchError(
                f"{source}: opt.module_name is {config.module_name!r}; expected one of {MODULE_NAMES}"
            )
        return config

    def to_opt(self, **extra) -> argparse.Namespace:
        """The published `opt` layout: these fields plus training settings in `extra`."""
        values = asdict(self)
        values.pop("num_regions")
        return argparse.Namespace(**values, **extra)
