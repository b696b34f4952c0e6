"""Which method and noise ratio a run's checkpoints are: what the leaderboard and the figures key on.

In order: a released file's own name (the registry's), the family folder a download put it in
(`<models>/family/<method>/...`), then the layout (a flat network is L2RM's). A single-layout file is
DAA's or SGRAF's as before. The noise ratio comes from the registry, else from `opt.noise_ratio`.
"""

from pathlib import Path

from bench.family.releases import METHOD_NAMES, by_file

UNKNOWN_PAIR = "co-trained pair"  # a pair whose method nothing names: compared with no paper's figure


def _noise(checkpoint) -> str | None:
    if checkpoint.config.data_name == "cc152k_precomp":
        return "real"
    value = getattr(checkpoint.opt, "noise_ratio", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return None


def method_of(checkpoint, daa: bool) -> tuple[str, str | None]:
    """(method, noise ratio or None) of one checkpoint (a bench.model.checkpoint.Checkpoint)."""
    release = by_file(Path(checkpoint.path).name)
    if release is not None:
        return release.method, release.noise
    folder = Path(checkpoint.path).parent.name.lower()
    if folder in METHOD_NAMES:
        return METHOD_NAMES[folder], _noise(checkpoint)
    if checkpoint.layout == "flat":
        return "L2RM", _noise(checkpoint)
    if checkpoint.layout == "pair":
        return UNKNOWN_PAIR, _noise(checkpoint)
    return ("DAA" if daa else "SGRAF"), ("0" if not hasattr(checkpoint.opt, "noise_ratio") else _noise(checkpoint))


def run_method(checkpoints, daa: bool) -> tuple[str, str | None]:
    """One run's method and noise: its checkpoints' when they agree, else both joined by '+'."""
    found = [method_of(c, daa) for c in checkpoints]
    methods = sorted({m for m, _ in found})
    noises = sorted({n or "?" for _, n in found})
    return "+".join(methods), (None if noises == ["?"] else "+".join(noises))
