"""What a training run is: its settings, and the paper's settings per dataset and model.

`PAPER_RUNS` is the one home of the paper's table (docs/training.md, README "Training"); the CLI
fills unset flags from it and a test checks the Makefile and README against it. Torch-free,
so that `python -m bench train --help` starts fast.

    from bench.training.settings import paper_settings
    settings = paper_settings("f30k", "SAF", max_steps=100)
"""

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.common.errors import BenchError
from bench.common.threads import usable_cpus
from bench.model.config import INT_RANGES, MODULE_NAMES

DATA_NAMES = ("coco_precomp", "f30k_precomp")
DAA_FORMS = ("released", "row")
PRECISIONS = ("fp32", "tf32", "bf16", "fp64")  # eval's three, plus fp64 for checks against references
DEVICE_TYPES = ("cpu", "cuda")
PAPER_DROPOUT = 0.4  # SGRAF's dropout in the word embedding and the self-attention blocks


@dataclass(frozen=True)
class PaperRun:
    """One row of the paper's training table; the learning rate is before the x processes scaling."""

    num_epochs: int
    learning_rate: float
    lr_update: int
    processes: int
    daa_weight: float


PAPER_RUNS = {
    ("coco_precomp", "SGR"): PaperRun(30, 0.00015, 20, 4, 25.0),
    ("coco_precomp", "SAF"): PaperRun(30, 0.00015, 20, 4, 25.0),
    ("f30k_precomp", "SGR"): PaperRun(40, 0.0006, 30, 1, 10.0),
    ("f30k_precomp", "SAF"): PaperRun(40, 0.0006, 20, 1, 10.0),
}
# Architecture of every published model; a None dimension in TrainSettings means this value,
# or the --init-from checkpoint's.
PAPER_DIMS = {"embed_size": 1024, "word_dim": 300, "sim_dim": 256, "num_layers": 1, "sgr_step": 3}


@dataclass
class TrainSettings:
    """Everything a run needs. The four per-run paper fields have no defaults (see paper_settings);
    the others default to the paper's values or to "derived" (None)."""

    data_name: str
    module_name: str
    num_epochs: int
    learning_rate: float  # per process: multiplied by the number of processes, as the original
    lr_update: int  # x0.1 every this many epochs
    daa_weight: float  # weight of each DAA direction; 0 trains the contrastive loss only
    out_dir: Path | None = None  # None: default_out_dir(data_name, module_name)
    data_root: Path = Path("data")
    vocab: Path | None = None  # None: <data_root>/vocab/<data_name>_vocab.json
    daa_form: str = "released"
    batch_size: int = 128
    margin: float = 0.2
    max_violation: bool = True
    grad_clip: float = 2.0
    dropout: float = PAPER_DROPOUT
    embed_size: int | None = None  # None: --init-from's, else PAPER_DIMS
    word_dim: int | None = None
    sim_dim: int | None = None
    num_layers: int | None = None
    sgr_step: int | None = None
    init_from: Path | None = None  # start from these weights (published layout), new optimizer
    max_steps: int | None = None  # stop after this many optimizer steps (then validate and save)
    save_every_steps: int | None = None  # also save a resumable checkpoint every N steps
    train_captions: int | None = None  # the first N training captions only (smoke runs)
    val_captions: int | None = None  # None: COCO's first 5,000, the whole split elsewhere
    train_split: str = "train"
    val_split: str = "dev"
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    threads: int | None = None  # CPU threads for torch (None: torch's choice)
    deterministic: bool = False  # deterministic kernels (CUDA: index_add, cuBLAS, cuDNN) at some speed cost
    resume: bool = False
    quiet: bool = False
    # Hook: an object with block(caption_indices) -> (B, B) relevance in collate order; None: the
    # TF-IDF relevance of the training captions (docs/training.md). Tests inject reference matrices here.
    relevance: object | None = field(default=None, repr=False, compare=False)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) if self.out_dir is not None else default_out_dir(self.data_name, self.module_name)


def default_out_dir(data_name: str, module_name: str, models_root: Path = Path("models")) -> Path:
    """The one name of a run's folder (CLI default, make targets, README): <root>/trained/<data>_<module>."""
    return Path(models_root) / "trained" / f"{data_name}_{module_name.lower()}"


def batches_per_epoch(samples: int, batch_size: int) -> int:
    """Full batches, plus the last partial one unless it holds a single sample (merged into the batch
    before: batch norms cannot train on one), or unless it is the only one."""
    full, rest = divmod(samples, batch_size)
    return full + (rest > 1 or (rest == 1 and full == 0))


def _data_name(dataset: str) -> str:
    name = dataset if dataset.endswith("_precomp") else f"{dataset}_precomp"
    if name not in DATA_NAMES:
        raise BenchError(f"dataset {dataset!r}: expected one of coco, f30k ({', '.join(DATA_NAMES)})")
    return name


def paper_settings(dataset: str, module: str, **changes) -> TrainSettings:
    """The paper's settings for COCO or F30K and SGR or SAF (`changes` override any field)."""
    data_name, module_name = _data_name(dataset), module.upper()
    if module_name not in MODULE_NAMES:
        raise BenchError(f"module {module!r}: expected one of {', '.join(MODULE_NAMES)}")
    paper = PAPER_RUNS[(data_name, module_name)]
    values = dict(num_epochs=paper.num_epochs, learning_rate=paper.learning_rate, lr_update=paper.lr_update,
                  daa_weight=paper.daa_weight)
    return TrainSettings(data_name=data_name, module_name=module_name, **(values | changes))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


_WHOLE_AT_LEAST = {"num_epochs": 1, "lr_update": 1, "batch_size": 2, "max_steps": 1,
                   "save_every_steps": 1, "train_captions": 5, "val_captions": 5}
MAX_STEPS = 2**62  # an int64 step counter (the checkpoint's Eiters) holds it
MAX_WORKERS_PER_CPU = 4


def _whole_ranges() -> dict[str, tuple[int, int | None]]:
    """(minimum, maximum or None) of every whole-number setting. The model's sizes share eval's and
    checkpoint loading's table (a model trained here is one eval accepts); a seed fits every generator
    (numpy's take 32 bits); loader workers beyond a few per core only add processes."""
    return {**{name: (minimum, MAX_STEPS) for name, minimum in _WHOLE_AT_LEAST.items()},
            **{name: INT_RANGES[name] for name in PAPER_DIMS}, "seed": (0, 2**32 - 1),
            "workers": (0, MAX_WORKERS_PER_CPU * usable_cpus()), "threads": (1, usable_cpus())}


_REAL_AT_LEAST = {"daa_weight": 0, "margin": 0, "dropout": 0}
_REAL_ABOVE_ZERO = ("learning_rate", "grad_clip")


def _check_number(name: str, value, minimum, whole: bool, above: bool = False, maximum=None) -> None:
    flag = f"{_flag(name)} {value}"
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        raise BenchError(f"{flag}: expected a {'whole ' if whole else ''}number")
    if maximum is not None and not minimum <= value <= maximum:
        raise BenchError(f"{flag}: must be in [{minimum}, {maximum}]")
    if not math.isfinite(value) or value < minimum or (above and value == minimum):
        raise BenchError(f"{flag}: must be {'' if whole else 'a finite number '}{'above' if above else 'at least'} "
                         f"{minimum}")


def check_settings(settings: TrainSettings) -> None:
    """Refuse values that would crash or silently misbehave later, naming the flag."""
    for name, options in (("data_name", DATA_NAMES), ("module_name", MODULE_NAMES), ("daa_form", DAA_FORMS),
                          ("precision", PRECISIONS)):
        if getattr(settings, name) not in options:
            raise BenchError(f"{_flag(name)} {getattr(settings, name)}: expected one of {', '.join(options)}")
    for name, (minimum, maximum) in _whole_ranges().items():
        if getattr(settings, name) is not None:
            _check_number(name, getattr(settings, name), minimum, whole=True, maximum=maximum)
    for name, minimum in _REAL_AT_LEAST.items():
        _check_number(name, getattr(settings, name), minimum, whole=False)
    for name in _REAL_ABOVE_ZERO:
        _check_number(name, getattr(settings, name), 0, whole=False, above=True)
    if settings.dropout >= 1:
        raise BenchError(f"--dropout {settings.dropout}: must be below 1")
    device_type = str(settings.device).split(":")[0]
    if settings.device != "auto" and device_type not in DEVICE_TYPES:
        raise BenchError(f"--device {settings.device}: expected auto, cpu, cuda or cuda:N")


def model_dims(settings: TrainSettings, init_opt=None, source: str = "--init-from") -> dict:
    """Architecture sizes: --init-from's opt where given (a contradicting flag is refused), else the paper's."""
    dims = {}
    for name, paper in PAPER_DIMS.items():
        given = getattr(settings, name)
        stored = getattr(init_opt, name, None) if init_opt is not None else None
        if stored is not None and given is not None and given != stored:
            raise BenchError(f"{_flag(name)} {given}: contradicts {source}, whose opt has {name}={stored}; "
                             "leave the flag out (the model's dimensions come from the checkpoint)")
        dims[name] = stored if stored is not None else (paper if given is None else given)
    return dims


# Fields a resumed run takes from its checkpoint and may not change: they decide the trajectory.
RESUME_FIXED = ("data_name", "module_name", "learning_rate", "lr_update", "daa_weight", "daa_form", "batch_size",
                "margin", "max_violation", "grad_clip", "dropout", *PAPER_DIMS, "train_captions", "train_split",
                "val_captions", "val_split", "seed", "precision")


def settings_record(settings: TrainSettings, dims: dict) -> dict:
    """Plain values (str, int, float, bool, None) for the checkpoint: what --resume restores."""
    record = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name != "relevance"}
    record.update(dims)
    return {name: str(value) if isinstance(value, Path) else value for name, value in record.items()}


def check_resume_matches(record: dict, given: dict, source: str) -> None:
    """Refuse a resumed run whose flags contradict the settings it was started with."""
    for name in RESUME_FIXED:
        if given.get(name) is not None and name in record and given[name] != record[name]:
            raise BenchError(f"{_flag(name)} {given[name]}: contradicts {source}, which was trained with "
                             f"{name}={record[name]}; leave the flag out to resume, or use another --out-dir")


def resumed_settings(record: dict, given: dict, source: str) -> TrainSettings:
    """The recorded run's settings, updated by the flags given now (those that may change)."""
    check_resume_matches(record, given, source)
    paths = {"out_dir", "data_root", "vocab", "init_from"}
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    values = {k: (Path(v) if k in paths and v is not None else v) for k, v in record.items() if k in names}
    return TrainSettings(**(values | {k: v for k, v in given.items() if v is not None} | {"resume": True}))

