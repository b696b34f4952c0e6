"""The benchmark scripts run end to end at tiny sizes (timings themselves are not asserted)."""

import csv
import time

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import host
from bench.eval.scoring import score_matrix
from bench.model.random_weights import random_model, small_config
from bench.model.reference_loop import reference_scores
from bench.perf import bootstrap_bench, metrics_bench, scores_bench, scoring_bench
from bench.perf.workload import agreement, embeddings, flops_per_pair


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
    # calibrated scores differ by far less than their spread in bf16: top-1 must mostly agree
    assert float(bf16["max_abs_diff"]) < 0.05 and float(bf16["top1_i2t"]) >= 2 / 3 and float(bf16["top1_t2i"]) >= 0.7
    batched = next(r for r in rows if r["model"] == "SGR" and (r["path"], r["precision"]) == ("batched", "fp32"))
    reference = next(r for r in rows if r["model"] == "SGR" and r["path"] == "reference")
    assert float(batched["mflop_per_pair"]) < 0.7 * float(reference["mflop_per_pair"])  # the engine's shortcuts
    peak = next(r for r in rows if r["model"] == "SGR" and r["path"].startswith("matmul") and r["precision"] == "fp32")
    # the peak of its own rounds; the CSV rounds the peak to 0.1 and the rate to 0.01 GFLOP/s, which
    # moves the ratio by up to 0.05/peak and 0.005/rate of itself (a slow spell can make the peak small)
    model_rate, peak_rate = float(batched["model_gflops"]), float(peak["model_gflops"])
    rounding = 0.05 / peak_rate + 0.005 / model_rate
    assert float(batched["of_matmul_peak"]) == pytest.approx(model_rate / peak_rate,
                                                              rel=0.02 + rounding, abs=2e-3)


MIN_SECONDS = 0.05  # each spied stage takes at least this long, so a timer that misses it reads less


def _slow_spy(calls: list, name: str, real):
    """`real`, noted in `calls` and made to last at least MIN_SECONDS: a stage's timer must enclose it."""
    def spy(*args, **kwargs):
        started = time.perf_counter()
        calls.append((name, args))
        result = real(*args, **kwargs)
        time.sleep(max(0.0, MIN_SECONDS - (time.perf_counter() - started)))
        return result
    return spy


def test_metrics_bench_covers_every_stage(tmp_path, monkeypatch):
    """Each row times the work it names: recalls, the coco-5k and coco-1k protocols, PMRP."""
    calls = []
    for name in ("recall_metrics", "protocol_metrics", "protocol_pmrp"):
        monkeypatch.setattr(metrics_bench, name, _slow_spy(calls, name, getattr(metrics_bench, name)))
    assert metrics_bench.main(["--images", "20", "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path, "cpu-metrics-*.csv")
    called = [(name, args[0].name if name == "protocol_metrics" else args[0] if name == "protocol_pmrp" else "")
              for name, args in calls]
    assert called == [("recall_metrics", ""), ("protocol_metrics", "coco-5k"), ("protocol_metrics", "coco-1k"),
                      ("protocol_pmrp", "coco-5k")]
    assert [r["stage"].split(" (")[0] for r in rows] == ["recalls", "coco-5k protocol", "coco-1k protocol",
                                                         "PMRP coco-5k"]
    assert all(float(r["seconds"]) >= MIN_SECONDS - 0.005 for r in rows)  # the CSV rounds to 0.01 s


def test_bootstrap_bench_times_every_figure(tmp_path, monkeypatch):
    """Both rows time the whole of their work (replicates + intervals; the paired comparison), on
    every figure of both directions and rsum."""
    calls = []
    monkeypatch.setattr(bootstrap_bench.bootstrap, "replicates",
                        _slow_spy(calls, "replicates", bootstrap_bench.bootstrap.replicates))
    monkeypatch.setattr(bootstrap_bench.bootstrap, "intervals",
                        _slow_spy(calls, "intervals", bootstrap_bench.bootstrap.intervals))
    monkeypatch.setattr(bootstrap_bench.paired, "paired_gains",
                        _slow_spy(calls, "paired_gains", bootstrap_bench.paired.paired_gains))
    assert bootstrap_bench.main(["--images", "20", "--resamples", "50", "--out", str(tmp_path)]) == 0
    intervals, compared = _rows(tmp_path, "cpu-bootstrap-*.csv")
    names = [name for name, _ in calls]
    assert names[:3] == ["replicates", "intervals", "paired_gains"] and names.count("paired_gains") == 1
    # 7 figures per direction (R@1/5/10, medr, meanr, ASP, PMRP) and rsum; meanr has a gain but no interval
    # of its own (long-tailed ranks: docs/statistics.md)
    assert (intervals["resamples"], intervals["figures"], compared["figures"]) == ("50", "13", "15")
    assert "paired" in compared["stage"] and int(compared["permutations"]) > 0
    assert float(intervals["seconds"]) >= 2 * MIN_SECONDS - 0.005  # replicates and intervals both inside
    assert float(compared["seconds"]) >= MIN_SECONDS - 0.005 and intervals["host"] and intervals["cpu"]


def _reference_rsum(sims: np.ndarray) -> float:
    """R@1/5/10 of both directions, summed, straight from the definition (5 captions per image)."""
    n_images = sims.shape[0]
    owner = np.arange(sims.shape[1]) // 5
    i2t = [int(np.sum(row > row[owner == i].max())) for i, row in enumerate(sims)]
    t2i = [int(np.sum(sims[:, j] > sims[owner[j], j])) for j in range(sims.shape[1])]
    return sum(100 * np.mean(np.asarray(ranks) < k) for ranks in (i2t, t2i) for k in (1, 5, 10)) if n_images else 0


def test_scores_bench_measures_a_whole_eval_scores_run(tmp_path):
    """The row's rsum is the coco-5k rsum of the very matrix the bench writes: the child evaluated it."""
    assert scores_bench.main(["--images", "20", "--out", str(tmp_path)]) == 0
    (row,) = _rows(tmp_path, "cpu-scores-memory-*.csv")
    scores_bench.write_matrix(tmp_path / "same.npy", 20)
    expected = _reference_rsum(np.load(tmp_path / "same.npy"))
    assert float(row["rsum"]) == pytest.approx(expected, abs=0.006)  # the CSV rounds to 0.01
    assert row["matrix"] == "20 x 100 float32" and float(row["peak_rss_mb"]) > 0 and row["host"]
    assert row["figures"] == "15"  # recalls, ranks, ASP and PMRP of both directions, and rsum


def test_flop_count_matches_performance_notes():
    assert abs(flops_per_pair("SGR", 13) - 26e6) < 1e6
    assert abs(flops_per_pair("SAF", 13) - 9.3e6) < 0.5e6


def _counted_flops(fn, model, n_images, n_captions, tokens, dims) -> int:
    images, words, lens = embeddings(n_images, n_captions, embed=dims.embed_size, regions=dims.num_regions)
    lens[:] = tokens
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(model, images, words[:, :tokens], lens)
    return counter.get_total_flops()


@pytest.mark.parametrize("module", ["SGR", "SAF"])
def test_flop_counts_are_what_each_path_executes(module):
    """torch's FLOP counter over 2-4 images x 5-10 captions; the mixed difference keeps the per-pair
    work only (per-image and per-caption encoders cancel)."""
    dims = small_config(module, "coco_precomp", 50, embed_size=64, sim_dim=16, num_regions=6)
    model = random_model(dims)
    paths = {"engine": (lambda m, i, w, lens: score_matrix(m, i, w, lens), True),
             "reference": (lambda m, i, w, lens: reference_scores(m.sim_enc, i, w, lens), False)}
    for fn, executed in paths.values():
        total = {(i, c): _counted_flops(fn, model, i, c, 7, dims) for i in (2, 4) for c in (5, 10)}
        per_pair = (total[4, 10] - total[2, 10] - total[4, 5] + total[2, 5]) / ((4 - 2) * (10 - 5))
        assert per_pair == flops_per_pair(module, 7, embed=64, sim=16, regions=6, executed=executed)


def test_host_features_come_from_cpuinfo(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Test CPU 9000\nflags\t\t: fpu avx2 fma avx512f amx_tile avx512_bf16 sse\n")
    monkeypatch.setattr(host, "CPUINFO", cpuinfo)
    assert host.cpu_model() == "Test CPU 9000"
    assert host.cpu_features() == ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"]
    assert host.features_text().startswith("avx2 fma avx512f avx512_bf16 amx_tile (not: avx512_vnni")
    monkeypatch.setattr(host, "CPUINFO", tmp_path / "absent")
    assert host.cpu_features() is None and "unknown" in host.features_text()


def test_agreement_of_identical_and_reordered_matrices():
    sims = np.random.default_rng(0).random((4, 20)).astype(np.float32)
    same = agreement(sims, sims)
    assert same["top1_i2t"] == same["top1_t2i"] == same["r10_unchanged"] == 1.0 and same["max_abs_diff"] == 0
    flipped = agreement(-sims, sims)
    assert flipped["top1_i2t"] == 0.0


def test_cpu_peak_reset_hands_freed_memory_back_only_when_asked(monkeypatch, tmp_path):
    """Asked to, the high-water mark restarts from what the process holds: malloc_trim runs before
    clear_refs is written, or a path measured after another would read the first one's peak; not
    otherwise (a timed run after it would pay to fault the memory in again)."""
    from bench.perf import measure

    calls = []

    class FakeLibc:
        def malloc_trim(self, pad):
            calls.append(("trim", pad))

    clear_refs = tmp_path / "clear_refs"
    clear_refs.write_text("")
    real_path = measure.Path
    monkeypatch.setattr(measure.ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(measure, "Path",
                        lambda name: clear_refs if name == "/proc/self/clear_refs" else real_path(name))
    original_write = type(clear_refs).write_text
    monkeypatch.setattr(type(clear_refs), "write_text",
                        lambda self, text, *a, **k: (calls.append(("clear", text)), original_write(self, text))[1])
    measure.reset_peak_memory(torch.device("cpu"))
    assert calls == [("clear", "5")]
    measure.reset_peak_memory(torch.device("cpu"), hand_back=True)
    assert calls == [("clear", "5"), ("trim", 0), ("clear", "5")]
