"""The benchmark scripts run end to end at tiny sizes (timings themselves are not asserted)."""

import csv

import numpy as np

from bench.perf import bootstrap_bench, metrics_bench, scores_bench, scoring_bench
from bench.perf.workload import agreement, flops_per_pair


def _rows(directory, pattern):
    (path,) = directory.glob(pattern)
    return list(csv.DictReader(path.open()))


def test_scoring_bench_writes_every_path(tmp_path):
    assert scoring_bench.main(["--images", "3", "--captions", "10", "--reference-images", "2",
                               "--reference-captions", "5", "--peak-size", "64", "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path, "cpu-scoring-*.csv")
    paths = {(r["model"], r["path"], r["precision"]) for r in rows}
    assert {("SGR", "reference", "fp32"), ("SGR", "batched", "fp32"), ("SAF", "batched", "bf16")} <= paths
    bf16 = next(r for r in rows if r["model"] == "SGR" and r["precision"] == "bf16")
    assert 0 <= float(bf16["top1_i2t"]) <= 1 and float(bf16["max_abs_diff"]) < 0.5


def test_metrics_bench_covers_every_stage(tmp_path):
    assert metrics_bench.main(["--images", "20", "--out", str(tmp_path)]) == 0
    stages = [r["stage"] for r in _rows(tmp_path, "cpu-metrics-*.csv")]
    assert len(stages) == 4 and any("PMRP" in s for s in stages)


def test_bootstrap_bench_times_every_figure(tmp_path):
    assert bootstrap_bench.main(["--images", "20", "--resamples", "50", "--out", str(tmp_path)]) == 0
    intervals, compared = _rows(tmp_path, "cpu-bootstrap-*.csv")
    assert (intervals["resamples"], intervals["figures"], compared["figures"]) == ("50", "15", "15")
    assert "paired" in compared["stage"] and int(compared["permutations"]) > 0
    assert intervals["host"] and intervals["cpu"] and float(intervals["seconds"]) >= 0


def test_scores_bench_measures_a_whole_eval_scores_run(tmp_path):
    assert scores_bench.main(["--images", "20", "--out", str(tmp_path)]) == 0
    (row,) = _rows(tmp_path, "cpu-scores-memory-*.csv")
    assert row["matrix"] == "20 x 100 float32" and float(row["peak_rss_mb"]) > 0 and row["host"]
    assert row["figures"] == "15" and float(row["rsum"]) > 0  # recalls, ranks, ASP and PMRP of both directions


def test_flop_count_matches_performance_notes():
    assert abs(flops_per_pair("SGR", 13) - 26e6) < 1e6
    assert abs(flops_per_pair("SAF", 13) - 9.3e6) < 0.5e6


def test_agreement_of_identical_and_reordered_matrices():
    sims = np.random.default_rng(0).random((4, 20)).astype(np.float32)
    same = agreement(sims, sims)
    assert same["top1_i2t"] == same["top1_t2i"] == same["r10_unchanged"] == 1.0 and same["max_abs_diff"] == 0
    flipped = agreement(-sims, sims)
    assert flipped["top1_i2t"] == 0.0
