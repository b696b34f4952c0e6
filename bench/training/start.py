"""Where a run's weights come from: SGRAF's initialisation, a checkpoint to fine-tune
(--init-from: weights only, new optimizer), or the run's own newest checkpoint (--resume).

The model is built in the run's dtype (float64 for `--precision fp64`) with the run's dropout.
"""

import dataclasses

import torch
from torch import nn

from bench.common.errors import BenchError
from bench.data.splits import Split
from bench.data.vocab import Vocabulary
from bench.eval.score_split import check_features_fit
from bench.model.checkpoint import Checkpoint, build_model, read_checkpoint
from bench.model.config import ModelConfig
from bench.model.network import SimilarityModel, init_weights
from bench.training.settings import PAPER_DIMS, TrainSettings, model_dims


def run_dtype(precision: str) -> torch.dtype:
    """fp64 keeps model, features and loss in float64; every other precision trains float32 weights."""
    return torch.float64 if precision == "fp64" else torch.float32


def set_dropout(model: nn.Module, probability: float) -> None:
    """Every dropout of the model (word embedding, self-attention blocks) to this probability."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = probability


def fresh_model(settings: TrainSettings, dims: dict, vocab: Vocabulary, features_shape: tuple) -> SimilarityModel:
    config = ModelConfig(
        data_name=settings.data_name, vocab_size=len(vocab), img_dim=int(features_shape[2]), bi_gru=True,
        no_imgnorm=False, no_txtnorm=False, module_name=settings.module_name, num_regions=int(features_shape[1]),
        **dims)
    torch.manual_seed(settings.seed)  # the same initial weights on every process
    model = SimilarityModel(config)
    init_weights(model)
    return model


def checkpoint_model(checkpoint: Checkpoint, dtype: torch.dtype) -> SimilarityModel:
    """The checkpoint's weights in `dtype`: build_model checks keys and shapes; the stored tensors are
    then loaded again into the converted model, so float64 weights keep every bit."""
    model = build_model(checkpoint).to(dtype)
    for part, state in zip(model.parts(), checkpoint.state_dicts):
        part.load_state_dict(state)
    return model


def _init_from(settings: TrainSettings, vocab: Vocabulary, train: Split) -> tuple[SimilarityModel, dict]:
    checkpoint = read_checkpoint(settings.init_from)
    source = f"--init-from {checkpoint.path}"
    if len(checkpoint.networks) > 1:
        raise BenchError(f"{source}: a co-trained pair (model_A and model_B); training starts from one network")
    if checkpoint.config.module_name != settings.module_name:
        raise BenchError(f"--module-name {settings.module_name}: contradicts {source}, a "
                         f"{checkpoint.config.module_name} model")
    dims = model_dims(settings, checkpoint.opt, source)
    check_features_fit(checkpoint, train)
    vocab.check_matches(checkpoint.config.vocab_size, str(checkpoint.path))
    checkpoint.config = dataclasses.replace(checkpoint.config, data_name=settings.data_name)
    return checkpoint_model(checkpoint, run_dtype(settings.precision)), dims


def initial_model(settings: TrainSettings, vocab: Vocabulary, train: Split,
                  resumed: Checkpoint | None) -> tuple[SimilarityModel, dict]:
    """The model to train (in training mode, run dtype and dropout) and its architecture sizes."""
    if resumed is not None:
        check_features_fit(resumed, train)
        vocab.check_matches(resumed.config.vocab_size, str(resumed.path))
        model = checkpoint_model(resumed, run_dtype(settings.precision))
        dims = {name: getattr(resumed.config, name) for name in PAPER_DIMS}
    elif settings.init_from is not None:
        model, dims = _init_from(settings, vocab, train)
    else:
        dims = model_dims(settings)
        model = fresh_model(settings, dims, vocab, train.features.shape).to(run_dtype(settings.precision))
    set_dropout(model, settings.dropout)
    return model.train(), dims
