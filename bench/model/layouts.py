"""The three checkpoint layouts of the SGRAF family, recognised from the saved dictionary itself.

- single (DAA, SGRAF): `model` = [image encoder, text encoder, similarity encoder] state dicts,
  with or without DistributedDataParallel's `module.` prefix;
- pair (NCR, CREAM, SPS, BiCro): `model_A` and `model_B`, two co-trained networks of that shape
  sharing one `opt`; their evaluation ranks the mean of the two networks' score matrices;
- flat (L2RM): `net` = one state dict whose keys carry `img_enc.` / `txt_enc.` / `sim_enc.`
  (and `cost_function`, a training-only network, which is not part of the retrieval model).

See docs/family.md.
"""

from dataclasses import dataclass
from pathlib import Path

from bench.common.errors import BenchError

DDP_PREFIX = "module."
SINGLE, PAIR, FLAT = "single", "pair", "flat"
PAIR_KEYS = ("model_A", "model_B")
FLAT_PREFIXES = ("img_enc.", "txt_enc.", "sim_enc.")
LAYOUT_KEYS = {SINGLE: ("model",), PAIR: PAIR_KEYS, FLAT: ("net",)}
TRAINING_ONLY = ("cost_function",)  # L2RM's learned cost network: saved beside `net`, not used to rank
NOT_FAMILY = ("not a checkpoint of the SGRAF family (expected a dict with 'opt' and 'model', or 'model_A' "
              "and 'model_B', or 'net')")
EMBEDDING_KEY = "embed.weight"  # the text encoder's word embedding: V rows, or V+1 in L2RM's evaluation


@dataclass(frozen=True)
class Networks:
    """What a checkpoint holds: its layout, and per network (one, or two for a pair) three state dicts."""

    layout: str
    names: tuple[str, ...]  # where each network was stored: ("model",), ("model_A", "model_B") or ("net",)
    networks: tuple[list[dict], ...]


def strip_prefix(state_dict: dict) -> dict:
    """Remove DDP's `module.` prefix when every key has it (DAA); the others have none."""
    if state_dict and all(isinstance(key, str) and key.startswith(DDP_PREFIX) for key in state_dict):
        return {key[len(DDP_PREFIX):]: value for key, value in state_dict.items()}
    return dict(state_dict)


def _three_parts(parts, where: str, path: Path) -> list[dict]:
    if not isinstance(parts, (list, tuple)) or len(parts) != 3 or not all(isinstance(p, dict) for p in parts):
        raise BenchError(f"{path}: '{where}' must be a list of three state dicts "
                         "(image encoder, text encoder, similarity encoder)")
    return [strip_prefix(part) for part in parts]


def _flat_parts(net, path: Path) -> list[dict]:
    """L2RM's one state dict split by its prefixes; a missing prefix or a foreign key is refused."""
    if not isinstance(net, dict):
        raise BenchError(f"{path}: 'net' is {type(net).__name__}, expected one state dict")
    net = strip_prefix(net)
    foreign = sorted(str(key) for key in net if not (isinstance(key, str) and key.startswith(FLAT_PREFIXES)))
    if foreign:
        shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise BenchError(f"{path}: 'net' has keys outside {', '.join(FLAT_PREFIXES)} ({shown})")
    parts = [{key[len(prefix):]: value for key, value in net.items() if key.startswith(prefix)}
             for prefix in FLAT_PREFIXES]
    empty = [prefix for prefix, part in zip(FLAT_PREFIXES, parts) if not part]
    if empty:
        raise BenchError(f"{path}: 'net' has no {', '.join(empty)} keys (an L2RM network holds all three encoders)")
    return parts


def recognise(raw: dict, path: Path) -> Networks:
    """The layout of a loaded checkpoint dictionary, from the keys it has; anything else is refused."""
    found = [layout for layout in (SINGLE, PAIR, FLAT) if any(key in raw for key in LAYOUT_KEYS[layout])]
    if len(found) > 1:
        raise BenchError(f"{path}: holds the keys of several layouts ({', '.join(found)}); expected one of "
                         "'model', 'model_A' + 'model_B' or 'net'")
    if not found:
        raise BenchError(f"{path}: {NOT_FAMILY}")
    layout = found[0]
    if layout == SINGLE:
        return Networks(SINGLE, ("model",), (_three_parts(raw["model"], "model", path),))
    if layout == PAIR:
        missing = [key for key in PAIR_KEYS if key not in raw]
        if missing:
            present = next(key for key in PAIR_KEYS if key in raw)
            raise BenchError(f"{path}: a co-trained pair needs both model_A and model_B; it has only {present}")
        return Networks(PAIR, PAIR_KEYS, tuple(_three_parts(raw[key], key, path) for key in PAIR_KEYS))
    return Networks(FLAT, ("net",), (_flat_parts(raw["net"], path),))


def check_pair_alike(networks: Networks, path: Path) -> None:
    """The two networks of a pair must be the same model: the same keys and shapes in each part."""
    if networks.layout != PAIR:
        return
    first, second = networks.networks
    for number, (a, b) in enumerate(zip(first, second)):
        part = ("image encoder", "text encoder", "similarity encoder")[number]
        if set(a) != set(b):
            differ = sorted(set(a) ^ set(b))
            raise BenchError(f"{path}: model_A and model_B differ in their {part}'s modules "
                             f"({', '.join(differ[:3])}{' ...' if len(differ) > 3 else ''}); a pair is two "
                             "networks of one architecture")
        for key in a:
            shape_a, shape_b = tuple(getattr(a[key], "shape", ())), tuple(getattr(b[key], "shape", ()))
            if shape_a != shape_b:
                raise BenchError(f"{path}: model_A and model_B differ in {part} '{key}' ({shape_a} vs {shape_b})")


def embedding_rows(networks: Networks, vocab_size: int, path: Path) -> int:
    """Rows of the word embedding beyond opt.vocab_size: 0, or 1 for L2RM's appended `<mask>` word
    (a flat network only). Any other count is refused."""
    weight = networks.networks[0][1].get(EMBEDDING_KEY)
    rows = getattr(weight, "shape", (None,))[0] if getattr(weight, "dim", lambda: 0)() == 2 else None
    if networks.layout != FLAT or rows is None or rows == vocab_size:
        return 0  # the weight checks name any other problem
    if rows == vocab_size + 1:
        return 1
    raise BenchError(f"{path}: the word embedding has {rows} rows; an L2RM network has the vocabulary's "
                     f"{vocab_size} (V) or {vocab_size + 1} (V+1, with <mask>), nothing else")
