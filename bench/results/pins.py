"""The installed versions against the project's pins (constraints.txt, what `make install` installs):
provenance records the file's sha256 and every pinned package whose installed version differs, so a
figure obtained off the pinned set says so."""

import hashlib
from importlib import metadata
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[2] / "constraints.txt"  # in a checkout; absent when installed


def read_pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a pip constraints file; comments and blank lines skipped."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip()] = version.strip()
    return pins


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def pin_record(path: Path = CONSTRAINTS) -> dict | None:
    """{"file", "sha256", "pinned": count, "differs": {name: installed or None}}; None without the file.
    A local build tag (torch's `+cpu`, `+cu126`) is not a difference: the pin names the release."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    pins = read_pins(path)
    differs = {}
    for name, pinned in pins.items():
        installed = installed_version(name)
        if installed is None or installed.split("+", 1)[0] != pinned:
            differs[name] = installed
    return {"file": path.name, "sha256": hashlib.sha256(raw).hexdigest(), "pinned": len(pins), "differs": differs}
