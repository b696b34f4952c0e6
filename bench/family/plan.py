"""What the Makefile's family targets run, from the registry (never written out by hand).

    python -m bench.family.plan targets               # target:method:dataset:file:protocols per release
    python -m bench.family.plan runs --models-root M  # checkpoint protocol run-id, per present checkpoint

`runs` also names, one line each on stderr, every confirmed release that is not present. It reads
only file names and, for checkpoints fetched by hand, their `opt.data_name` (safely).
"""

import argparse
import sys
from pathlib import Path

from bench.family.releases import RELEASES

PROTOCOLS = {"f30k_precomp": ("f30k-1k",), "coco_precomp": ("coco-1k", "coco-5k"), "cc152k_precomp": ("cc152k-1k",)}


def target_lines() -> list[str]:
    return [f"{r.target}:{r.key}:{r.dataset.split('_')[0]}:{r.file}:{'+'.join(r.protocols)}"
            for r in RELEASES if r.target]


def _run_id(method: str, checkpoint: Path, protocol: str) -> str:
    stem = checkpoint.name.split(".pth")[0].replace("_model_best", "")
    return f"family-{method}-{stem}-{protocol}" if not stem.startswith(method) else f"family-{stem}-{protocol}"


def run_lines(models_root: Path) -> tuple[list[str], list[str]]:
    """(runs of present checkpoints, lines naming the confirmed releases that are absent)."""
    from bench.model.checkpoint import read_checkpoint

    family = models_root / "family"
    runs, missing, confirmed = [], [], set()
    for release in RELEASES:
        if release.target is None:
            continue
        path = family / release.key / release.file
        confirmed.add(path)
        if path.is_file():
            runs += [f"{path} {p} {_run_id(release.key, path, p)}" for p in release.protocols]
        else:
            missing.append(f"{release.method} {release.dataset} noise {release.noise}: not present ({path}; "
                           "make download-family)")
    for path in sorted(family.glob("*/*")) if family.is_dir() else []:
        if path in confirmed or not path.is_file() or path.parent.name.startswith("."):  # a fetch's temporary
            continue
        data_name = read_checkpoint(path).config.data_name
        runs += [f"{path} {p} {_run_id(path.parent.name, path, p)}" for p in PROTOCOLS.get(data_name, ())]
    return runs, missing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.family.plan", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("targets", "runs"))
    parser.add_argument("--models-root", type=Path, default=Path("models"))
    args = parser.parse_args(argv)
    if args.what == "targets":
        print(" ".join(target_lines()))
        return 0
    runs, missing = run_lines(args.models_root)
    for line in missing:
        print(line, file=sys.stderr)
    print("\n".join(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
