"""The extra cost of a co-trained pair (NCR, CREAM, SPS, BiCro): one file, two networks, one matrix.

Each run is a real `eval` in a child process on generated Flickr30K-layout data, so the figures are
the command's own: one SGR network, a co-trained pair of two SGR networks (the mean of their
matrices), and the SGRAF ensemble (SGR + SAF, two files) whose memory the pair must stay within.
Scoring seconds come from each run's provenance (the scoring stages only); peak memory is the
child's own resident peak. The fastest of `--repeats` runs counts.

    python -m bench.perf.pair_bench --out results/perf      # make bench
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common.host import cpu_model
from bench.data import synthetic
from bench.model.random_weights import small_config, write_checkpoint, write_pair_checkpoint
from bench.perf.child_memory import run_measured
from bench.perf.report import publish

DIMS = dict(img_dim=256, word_dim=128, embed_size=256, sim_dim=64)  # big enough that scoring dominates


def _files(root: Path, images: int) -> dict[str, list[Path]]:
    synthetic.write_split(root / "data" / "f30k_precomp", "test", images, img_dim=DIMS["img_dim"], seed=1)
    vocab = len(synthetic.vocabulary_words())
    synthetic.write_vocab(root / "data" / "vocab" / "f30k_precomp_vocab.json")
    sgr, saf = (small_config(m, "f30k_precomp", vocab, **DIMS) for m in ("SGR", "SAF"))
    return {"one network (SGR)": [write_checkpoint(root / "sgr.pth.tar", sgr, seed=1)],
            "co-trained pair (2 x SGR)": [write_pair_checkpoint(root / "pair.pth.tar", sgr, seeds=(1, 2))],
            "SGRAF ensemble (SGR + SAF)": [root / "sgr.pth.tar", write_checkpoint(root / "saf.pth.tar", saf, seed=3)]}


def _run(root: Path, checkpoints: list[Path], out: Path) -> tuple[float, float, int]:
    """(scoring seconds, wall seconds, peak RSS bytes) of one eval."""
    command = [sys.executable, "-m", "bench", "eval", "--protocol", "f30k-1k", "--data-root", str(root / "data"),
               "--device", "cpu", "--json", str(out), "--threads", "1"]
    for path in checkpoints:
        command += ["--checkpoint", str(path)]
    code, wall, peak = run_measured(command, stdout=subprocess.DEVNULL)
    if code != 0:
        raise SystemExit(f"pair_bench: eval exited {code}: {' '.join(command)}")
    seconds = json.loads(out.read_text())["provenance"]["seconds"]
    return sum(v for k, v in seconds.items() if k.startswith("score_")), wall, peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        runs = _files(root, args.images)
        best: dict[str, tuple[float, float, int]] = {}
        for _ in range(args.repeats):  # interleaved: a slow spell of a shared machine hits every run alike
            for name, checkpoints in runs.items():
                figures = _run(root, checkpoints, root / "run.json")
                best[name] = min(best.get(name, figures), figures)
    one, pair, sgraf = (best[name] for name in runs)
    rows = [{"run": name, "images": args.images, "captions": 5 * args.images, "score_seconds": round(b[0], 3),
             "wall_seconds": round(b[1], 2), "peak_rss_mb": round(b[2] / 2**20, 1),
             "score_time_vs_one_network": round(b[0] / one[0], 2)} for name, b in best.items()]
    rows[1]["within_sgraf_memory"] = pair[2] <= sgraf[2]
    publish(rows, args.out, "cpu-pair", f"co-trained pair vs one network on {cpu_model()}, 1 thread")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
