"""SCAN vocabularies and the caption -> token ids step, as the original data loader did it."""

import functools
import json
from pathlib import Path

from bench.common.errors import BenchError
from bench.common.inputs import require_file
from bench.data.nltk_home import NLTK_SUBDIR

SPECIAL_TOKENS = {"<pad>": 0, "<start>": 1, "<end>": 2, "<unk>": 3}


def nltk_module():
    """NLTK, imported when a caption is first tokenized: the rest of the package (scoring, the
    speed benchmarks, `make gpu-check` on a node without NLTK) runs without it."""
    try:
        import nltk
    except ImportError:
        raise BenchError("NLTK is not importable by this Python: captions cannot be tokenized "
                         "(install it: pip install nltk)") from None
    return nltk


def search_nltk_data(data_root: str | Path) -> None:
    """Let NLTK find what `download` put under the data root (after $NLTK_DATA and its defaults)."""
    nltk = nltk_module()
    folder = str((Path(data_root) / NLTK_SUBDIR).resolve())
    if folder not in nltk.data.path:
        nltk.data.path.append(folder)
        tokenizer_path.cache_clear()


@functools.lru_cache(maxsize=1)
def tokenizer_path() -> str:
    """'punkt_tab' when NLTK's sentence model is installed, else 'preserve_line'.

    The two agree on one-sentence captions (almost all of COCO and Flickr30K); results
    record which one ran.
    """
    try:
        nltk_module().data.find("tokenizers/punkt_tab/english/")
        return "punkt_tab"
    except LookupError:
        return "preserve_line"


def lower_ascii(caption: bytes | str) -> str:
    """Lower-case the UTF-8 bytes (ASCII letters only, like the original), then decode."""
    raw = caption.encode("utf-8") if isinstance(caption, str) else caption
    return raw.lower().decode("utf-8")


def tokenize(caption: bytes | str) -> list[str]:
    text = lower_ascii(caption)
    return nltk_module().tokenize.word_tokenize(text, preserve_line=tokenizer_path() == "preserve_line")


class Vocabulary:
    """word2idx of a SCAN `*_vocab.json`; unknown words map to `<unk>`."""

    def __init__(self, word2idx: dict[str, int], path: Path | None = None):
        self.word2idx = word2idx
        self.path = path
        self.unk = word2idx["<unk>"]

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        path = require_file(path, "vocabulary file", " (expected SCAN's *_precomp_vocab.json)")
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a byte-order mark is no JSON
        except (ValueError, RecursionError):  # ValueError: bad JSON, not UTF-8, an integer of 4,300+ digits
            raise BenchError(f"{path}: not a SCAN vocabulary (not UTF-8 JSON, nested too deeply or a number "
                             "too long)") from None
        word2idx = document.get("word2idx") if isinstance(document, dict) else None
        if not isinstance(word2idx, dict):
            raise BenchError(f"{path}: not a SCAN vocabulary (a JSON object whose 'word2idx' maps words to ids)")
        if not all(type(index) is int for index in word2idx.values()):
            raise BenchError(f"{path}: every id in 'word2idx' must be an integer")
        for token, index in SPECIAL_TOKENS.items():
            if word2idx.get(token) != index:
                raise BenchError(f"{path}: special token {token} must have id {index}")
        if sorted(word2idx.values()) != list(range(len(word2idx))):
            raise BenchError(f"{path}: word ids must be 0..{len(word2idx) - 1} without gaps")
        return cls(word2idx, path)

    def __len__(self) -> int:
        return len(self.word2idx)

    def encode(self, caption: bytes | str) -> list[int]:
        """[<start>] + ids of the tokens + [<end>]."""
        ids = [self.word2idx.get(token, self.unk) for token in tokenize(caption)]
        return [SPECIAL_TOKENS["<start>"], *ids, SPECIAL_TOKENS["<end>"]]

    def check_matches(self, vocab_size: int, checkpoint: str) -> None:
        if len(self) != vocab_size:
            raise BenchError(
                f"{self.path}: vocabulary has {len(self)} words but {checkpoint} embeds {vocab_size}; "
                "use the vocabulary the checkpoint was trained with (--vocab)"
            )
