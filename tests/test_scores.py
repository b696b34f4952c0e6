"""`eval --scores` / bench.evaluate_scores: another model's score matrix on the same yardstick."""

import csv
import hashlib
import json
import shutil

import numpy as np
import pytest

import bench
from bench.cli.main import main
from bench.common.errors import BenchError
from bench.eval.protocols import PROTOCOLS, fold_bounds
from bench.results import tables

CHECKPOINTS = {"f30k-1k": "f30k_sgr.pth.tar", "coco-1k": "coco_sgr.pth.tar", "coco-5k": "coco_sgr.pth.tar"}
SAME_IN_CSV = ("dataset", "protocol", "fold", "direction", "metric", "value", "ci_low", "ci_high")


def _eval(*args) -> None:
    assert main(["eval", *map(str, args)]) == 0


def _lift_ground_truth(sims: np.ndarray) -> np.ndarray:
    """A clearly better "model": every image's own five captions scored a little higher."""
    n_images, n_captions = sims.shape
    return sims + 0.05 * (np.arange(n_captions)[None, :] // 5 == np.arange(n_images)[:, None])


def _csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def checkpoint_runs(golden_dir, tmp_path_factory):
    """Per protocol: a checkpoint run on the golden data with its --save-sims matrix (PMRP on COCO)."""
    folder = tmp_path_factory.mktemp("checkpoint_runs")
    for protocol, checkpoint in CHECKPOINTS.items():
        _eval("--checkpoint", golden_dir / checkpoint, "--protocol", protocol, "--data-root", golden_dir,
              "--device", "cpu", "--save-sims", folder / f"{protocol}.npy", "--json", folder / f"{protocol}.json",
              "--csv", folder / f"{protocol}.csv")
    return folder


@pytest.fixture
def captions_only(golden_dir, tmp_path):
    """A data root with the golden captions, ids and annotations but no region features at all."""
    root = tmp_path / "captions_only"
    for data_dir, split in (("f30k_precomp", "test"), ("coco_precomp", "testall")):
        (root / data_dir).mkdir(parents=True)
        for ending in ("_caps.txt", "_ids.txt"):
            if (golden_dir / data_dir / f"{split}{ending}").is_file():
                shutil.copy(golden_dir / data_dir / f"{split}{ending}", root / data_dir)
    shutil.copytree(golden_dir / "coco_annotations", root / "coco_annotations")
    return root


@pytest.mark.parametrize("protocol", list(CHECKPOINTS))
def test_scores_reproduce_a_checkpoint_run(checkpoint_runs, captions_only, tmp_path, protocol):
    sims = checkpoint_runs / f"{protocol}.npy"
    _eval("--scores", sims, "--protocol", protocol, "--data-root", captions_only, "--json", tmp_path / "other.json",
          "--csv", tmp_path / "other.csv")
    ours, theirs = (json.loads(p.read_text()) for p in (checkpoint_runs / f"{protocol}.json", tmp_path / "other.json"))
    for key in ("metrics", "folds", "intervals", "bootstrap"):
        assert ours.get(key) == theirs.get(key), key
    assert ours["queries"]["sha256"] == theirs["queries"]["sha256"]
    assert (checkpoint_runs / f"{protocol}.queries.npz").read_bytes() == (tmp_path / "other.queries.npz").read_bytes()
    assert [{k: r[k] for k in SAME_IN_CSV} for r in _csv(checkpoint_runs / f"{protocol}.csv")] == \
           [{k: r[k] for k in SAME_IN_CSV} for r in _csv(tmp_path / "other.csv")]
    assert {row["status"] for row in theirs["figures"]} == {"other-model"}
    assert all(row["reference"] is None for row in theirs["figures"])
    provenance = theirs["provenance"]
    assert provenance["scores"]["sha256"] == hashlib.sha256(sims.read_bytes()).hexdigest()
    assert provenance["checkpoints"] == [] and provenance["data"]["features_shape"] is None
    assert ("pmrp" in theirs["metrics"]["i2t"]) == protocol.startswith("coco")


def test_coco_1k_takes_the_whole_matrix_and_reads_only_its_diagonal_blocks(checkpoint_runs, captions_only):
    blocks = np.load(checkpoint_runs / "coco-1k.npy")
    whole = np.full((30, 150), np.nan, dtype=np.float64)  # off-diagonal: never read, so NaN is fine
    for block, (images, captions) in zip(blocks, fold_bounds(PROTOCOLS["coco-1k"], 30)):
        whole[images, captions] = block
    from_blocks = bench.evaluate_scores(checkpoint_runs / "coco-1k.npy", "coco-1k", data_root=captions_only)
    from_whole = bench.evaluate_scores(whole, "coco-1k", data_root=captions_only, run_id="whole")
    assert from_whole.metrics == from_blocks.metrics and from_whole.folds == from_blocks.folds
    assert from_whole.queries_npz == from_blocks.queries_npz
    assert from_whole.provenance["scores"]["file"] is None and from_whole.provenance["scores"]["dtype"] == "float64"
    assert from_whole.run_id == "whole" and from_blocks.run_id == "coco-1k-other" and from_blocks.sims is None


def test_any_float_dtype_gives_the_same_figures(checkpoint_runs, captions_only, tmp_path):
    sims = np.load(checkpoint_runs / "f30k-1k.npy")
    as_float32 = bench.evaluate_scores(sims, "f30k-1k", data_root=captions_only, model="Mine")
    np.save(tmp_path / "wide.npy", sims.astype(">f8"))  # big-endian float64: still a real float matrix
    as_float64 = bench.evaluate_scores(tmp_path / "wide.npy", "f30k-1k", data_root=captions_only, model="Mine")
    assert as_float64.metrics == as_float32.metrics
    assert as_float64.figures[0]["model"] == "Mine" and as_float64.figures[0]["checkpoint"] == "wide.npy"
    half_sims = sims.astype(np.float16)
    half = bench.evaluate_scores(half_sims, "f30k-1k", data_root=captions_only)
    assert half.provenance["scores"]["dtype"] == "float16"
    # float16 -> float32 is exact, so the figures are those of the upcast matrix: recalls from their definition
    # (ties, common in float16, to the lower index), the rest from the float32 path
    upcast = half_sims.astype(np.float32)
    assert np.count_nonzero(upcast != sims) > 0.5 * sims.size  # float16 really rounded the scores
    for direction, matrix in (("i2t", upcast), ("t2i", upcast.T)):
        ranks = _first_correct_ranks(matrix, captions_per_image=5, by_image=direction == "i2t")
        for k in (1, 5, 10):
            assert half.metrics[direction][f"r{k}"] == pytest.approx(100 * np.mean(ranks < k)), (direction, k)
    assert half.metrics == bench.evaluate_scores(upcast, "f30k-1k", data_root=captions_only).metrics


def _first_correct_ranks(matrix: np.ndarray, captions_per_image: int, by_image: bool) -> np.ndarray:
    """Rank (0 = first) of each query's first correct item; equal scores go to the lower index."""
    ranks = []
    for query, scores in enumerate(matrix):
        correct = (np.arange(len(scores)) // captions_per_image == query) if by_image else \
            (np.arange(len(scores)) == query // captions_per_image)
        order = sorted(range(len(scores)), key=lambda item: (-scores[item], item))
        ranks.append(next(place for place, item in enumerate(order) if correct[item]))
    return np.asarray(ranks)


def test_compare_takes_two_score_runs_over_the_same_queries(checkpoint_runs, captions_only, tmp_path, capsys):
    sims = np.load(checkpoint_runs / "f30k-1k.npy")
    np.save(tmp_path / "sharper.npy", _lift_ground_truth(sims))
    for name, path in (("same", checkpoint_runs / "f30k-1k.npy"), ("sharper", tmp_path / "sharper.npy")):
        _eval("--scores", path, "--protocol", "f30k-1k", "--data-root", captions_only, "--json",
              tmp_path / f"{name}.json")
    assert main(["compare", str(tmp_path / "same.json"), str(tmp_path / "sharper.json"),
                 "--csv", str(tmp_path / "gains.csv")]) == 0
    rsum = next(r for r in _csv(tmp_path / "gains.csv") if r["metric"] == "rsum")
    assert float(rsum["gain"]) > 0 and float(rsum["ci_low"]) > 0


def test_table_leaves_other_models_out(checkpoint_runs, captions_only, tmp_path):
    for name in ("coco-5k.json", "coco-5k.queries.npz"):
        shutil.copy(checkpoint_runs / name, tmp_path / name)
    _eval("--scores", checkpoint_runs / "coco-5k.npy", "--protocol", "coco-5k", "--data-root", captions_only,
          "--json", tmp_path / "other.json")
    assert [key[:2] for key in tables.load_runs(tmp_path)] == [("coco-5k", "SGR")]


# ---- bad input: one line, exit 2, nothing written ----

def _refused(tmp_path, capsys, *args) -> str:
    out = tmp_path / "out"
    status = main(["eval", *map(str, args), "--json", str(out / "r.json"), "--csv", str(out / "r.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "Traceback" not in err[0], err
    assert not out.exists() or not any(out.iterdir())
    return err[0]


def _save(tmp_path, name, array, **kwargs):
    path = tmp_path / name
    np.save(path, array, **kwargs)
    return path


def _truncated(path):
    """The file cut short by a few bytes: its header still promises the whole matrix."""
    path.write_bytes(path.read_bytes()[:-8])
    return path


class Exploit:
    """Unpickling this would create the file `PWNED` in the working directory."""

    def __reduce__(self):
        return (open, ("PWNED", "w"))


@pytest.mark.parametrize("case,needle", [
    ("shape", "(25, 124), but f30k-1k on this split needs (25, 125)"),
    ("nan", "1 score(s) are NaN or infinite; the first is nan at image 3, caption 7"),
    ("inf", "2 score(s) are NaN or infinite; the first is -inf at image 0, caption 1"),
    ("int", "scores are int64; expected a real floating-point matrix"),
    ("complex", "scores are complex128"),
    ("text", "not a .npy file"),
    ("npz", "an .npz archive"),
    ("missing", "score file not found"),
    ("truncated", "cannot map the score matrix"),
])
def test_bad_score_files_are_refused_in_one_line(tmp_path, capsys, golden_dir, case, needle):
    good = np.zeros((25, 125), dtype=np.float32)
    with_nan, with_inf = good.copy(), good.copy()
    with_nan[3, 7] = np.nan
    with_inf[0, [1, 51]] = -np.inf
    paths = {"shape": lambda: _save(tmp_path, "s.npy", good[:, :124]),
             "nan": lambda: _save(tmp_path, "s.npy", with_nan),
             "inf": lambda: _save(tmp_path, "s.npy", with_inf),
             "int": lambda: _save(tmp_path, "s.npy", good.astype(np.int64)),
             "complex": lambda: _save(tmp_path, "s.npy", good.astype(np.complex128)),
             "text": lambda: tmp_path.joinpath("s.npy").write_text("0.1 0.2\n") and tmp_path / "s.npy",
             "npz": lambda: np.savez(tmp_path / "s.npz", good) or tmp_path / "s.npz",
             "missing": lambda: tmp_path / "nope.npy",
             "truncated": lambda: _truncated(_save(tmp_path, "s.npy", good))}
    path = paths[case]()
    line = _refused(tmp_path, capsys, "--scores", path, "--protocol", "f30k-1k", "--data-root", golden_dir)
    assert needle in line


def test_a_pickle_inside_the_npy_is_never_loaded(tmp_path, capsys, golden_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _save(tmp_path, "s.npy", np.array([Exploit()] * 3, dtype=object), allow_pickle=True)
    line = _refused(tmp_path, capsys, "--scores", path, "--protocol", "f30k-1k", "--data-root", golden_dir)
    assert "Python objects (a pickle), which are never loaded" in line and not (tmp_path / "PWNED").exists()
    with pytest.raises(BenchError, match="never loaded"):
        bench.evaluate_scores(np.array([Exploit()], dtype=object), "f30k-1k", data_root=golden_dir)


@pytest.mark.parametrize("extra,needle", [
    (["--checkpoint", "x.pth.tar"], "not both"),
    (["--save-sims", "s2.npy"], "--save-sims only applies to --checkpoint runs"),
    (["--precision", "bf16"], "--precision only applies to --checkpoint runs"),
])
def test_scores_with_checkpoint_options_are_refused(tmp_path, capsys, golden_dir, extra, needle):
    path = _save(tmp_path, "s.npy", np.zeros((25, 125), dtype=np.float32))
    line = _refused(tmp_path, capsys, "--scores", path, "--protocol", "f30k-1k", "--data-root", golden_dir, *extra)
    assert needle in line and not (tmp_path / "s2.npy").exists()


def test_neither_checkpoint_nor_scores_is_refused(tmp_path, capsys, golden_dir):
    line = _refused(tmp_path, capsys, "--protocol", "f30k-1k", "--data-root", golden_dir)
    assert "give either --checkpoint" in line and "or --scores" in line


def test_report_ranks_every_run_of_a_protocol_with_its_gain_over_the_best_daa_run(checkpoint_runs, captions_only,
                                                                                  data_root, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for name in ("coco-5k.json", "coco-5k.queries.npz", "f30k-1k.json", "f30k-1k.queries.npz"):
        shutil.copy(checkpoint_runs / name, results / name)
    sims = np.load(checkpoint_runs / "coco-5k.npy")
    np.save(tmp_path / "sharper.npy", _lift_ground_truth(sims))
    _eval("--scores", tmp_path / "sharper.npy", "--model-name", "Sharper", "--protocol", "coco-5k", "--data-root",
          captions_only, "--json", results / "sharper.json")
    generated = bench.evaluate_scores(np.random.default_rng(0).random((30, 150)), "coco-5k", data_root=data_root,
                                      run_id="elsewhere")  # the same protocol on other (generated) queries
    generated.write(json_path=results / "elsewhere.json")
    assert main(["report", "--results", str(results)]) == 0
    markdown = (results / "summary.md").read_text(encoding="utf-8")
    board = markdown.split("### coco-5k")[1].split("###")[0]
    # columns: rank, run, model, method, noise, kind (an other model has no method or noise)
    first, second = "| 1 | sharper | Sharper |  |  | other model |", "| 2 | coco-5k | SGR | DAA | 0 | DAA |"
    assert board.index(first) < board.index(second)
    assert "+0.00 [+0.00, +0.00] vs coco-5k |" in board
    assert "| elsewhere | other |  |  | other model |" in board
    assert "- elsewhere: no DAA run over the same queries" in board
    assert "### f30k-1k" in markdown
    summary = {(r["run_id"], r["fold"], r["direction"], r["metric"]): r for r in _csv(results / "summary.csv")}
    gained = summary[("sharper", "all", "both", "rsum")]
    assert gained["rank"] == "1" and gained["best_daa_run"] == "coco-5k" and float(gained["gain_ci_low"]) > 0
    assert summary[("coco-5k", "all", "i2t", "r1")]["gain_vs_best_daa"] == "0.0"
    assert 0 <= float(gained["gain_p_value"]) < 0.05  # the lift is no accident of the sample
