"""daa-bench: reproduce DAA (NeurIPS 2022) on SGRAF's SGR / SAF models with SCAN features.

From the shell:   python -m bench eval --checkpoint models/coco_sgr.pth.tar --protocol coco-5k
From Python:

    import bench
    result = bench.evaluate(["models/daa_coco_sgr.pth.tar"], "coco-5k", data_root="data")
    result.table            # one row per figure, beside the paper's (pandas)
    result.to_json("results/coco5k-sgr.json")
    other = bench.evaluate_scores("my_model_scores.npy", "coco-5k", data_root="data")  # any model's matrix

The public names below are imported on first use (PEP 562), so `import bench` and
`python -m bench --help` stay fast and import no torch.

Paper: https://openreview.net/forum?id=-KPNRZ8i0ag
"""

import importlib

__version__ = "0.1.0"

# public name -> "module:attribute" (or "module" for a module)
_EXPORTS = {
    "evaluate": "bench.results.evaluate:evaluate",
    "evaluate_scores": "bench.results.evaluate:evaluate_scores",
    "RunResult": "bench.results.run_result:RunResult",
    "load_result": "bench.results.run_result:load_result",
    "load_checkpoint": "bench.model.checkpoint:read_checkpoint",
    "load_split": "bench.data.splits:load_split",
    "score": "bench.eval.pipeline:score",
    "train": "bench.training.loop:train",
    "paper_settings": "bench.training.settings:paper_settings",
    "TrainSettings": "bench.training.settings:TrainSettings",
    "losses": "bench.training.losses",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
