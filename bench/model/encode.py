"""Encode a split's images and captions into the embeddings the similarity engine scores."""

import torch

from bench.common.errors import BenchError
from bench.common.progress import progress_bar
from bench.data.splits import Split
from bench.data.vocab import Vocabulary
from bench.model.network import SimilarityModel


def pad_tokens(token_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, L) int64 ids with <pad>=0, and the true lengths (B,)."""
    lengths = torch.tensor([len(t) for t in token_lists], dtype=torch.int64)
    tokens = torch.zeros(len(token_lists), int(lengths.max()), dtype=torch.int64)
    for row, ids in enumerate(token_lists):
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return tokens, lengths


@torch.no_grad()
def encode_images(model: SimilarityModel, split: Split, device: torch.device, batch: int = 128,
                  ranges: list[slice] | None = None) -> torch.Tensor:
    """(n, R, E) region embeddings of the images in `ranges` (all by default), concatenated, read from
    the memory map one batch at a time (in the model's dtype: float64 for training's fp64 runs).

    Under torchrun each process passes only its own ranges: no process encodes the whole split.
    """
    ranges = ranges if ranges is not None else [slice(0, split.n_images)]
    chunks = []
    with progress_bar("encoding images", sum(r.stop - r.start for r in ranges), unit="images") as advance:
        for images in ranges:
            for start in range(images.start, images.stop, batch):
                stop = min(start + batch, images.stop)
                regions = torch.from_numpy(split.image_rows(start, stop)).to(device, model.img_enc.fc.weight.dtype)
                chunks.append(model.img_enc(regions))
                advance(stop - start)
    if not chunks:
        return torch.empty(0, model.config.num_regions, model.config.embed_size, device=device,
                           dtype=model.img_enc.fc.weight.dtype)
    return torch.cat(chunks)


MAX_CAPTION_TOKENS = 512  # every caption is padded to the longest: one huge line would exhaust memory


def tokenize_captions(vocab: Vocabulary, captions: list[bytes],
                      source: str = "captions") -> tuple[torch.Tensor, torch.Tensor]:
    """Padded token ids and lengths; NLTK is the slow part, so callers may reuse the result.

    A caption over MAX_CAPTION_TOKENS is refused, naming `source` and its line.
    """
    token_lists = []
    for number, caption in enumerate(captions, start=1):
        ids = vocab.encode(caption)
        if len(ids) - 2 > MAX_CAPTION_TOKENS:
            raise BenchError(f"{source}: line {number} has {len(ids) - 2} tokens; captions over "
                             f"{MAX_CAPTION_TOKENS} are refused (all captions are padded to the longest)")
        token_lists.append(ids)
    return pad_tokens(token_lists)


@torch.no_grad()
def encode_captions(model: SimilarityModel, vocab: Vocabulary, captions: list[bytes], device: torch.device,
                    batch: int = 128, tokenized: tuple[torch.Tensor, torch.Tensor] | None = None):
    """(n_captions, L, E) word embeddings (zeros past each length) and lengths (n_captions,).

    `tokenized` (from tokenize_captions) skips tokenising again, e.g. for SGRAF's second model.
    """
    tokens, lengths = tokenized if tokenized is not None else tokenize_captions(vocab, captions)
    chunks = []
    with progress_bar("encoding captions", len(captions), unit="captions") as advance:
        for start in range(0, len(captions), batch):
            part = slice(start, start + batch)
            chunks.append(model.txt_enc(tokens[part].to(device), lengths[part]))
            advance(chunks[-1].shape[0])
    return torch.cat(chunks), lengths
