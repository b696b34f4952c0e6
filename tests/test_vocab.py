"""Vocabulary loading and tokenisation as the original loader did it."""

import json
import sys

import pytest

from bench.common.errors import BenchError
from bench.data import vocab as vocab_module
from bench.data.vocab import Vocabulary, lower_ascii, tokenize


def test_lower_cases_ascii_bytes_only():
    assert lower_ascii("A Dog Éclair".encode()) == "a dog Éclair"


def test_treebank_rules():
    assert tokenize(b"A man's dog doesn't run.") == ["a", "man", "'s", "dog", "does", "n't", "run", "."]


@pytest.mark.parametrize("path,preserve", [("punkt_tab", False), ("preserve_line", True)])
def test_tokenizer_path_selects_nltk_mode(monkeypatch, path, preserve):
    seen = {}
    monkeypatch.setattr(vocab_module, "tokenizer_path", lambda: path)
    monkeypatch.setattr(vocab_module.nltk_module().tokenize, "word_tokenize",
                        lambda text, preserve_line: seen.setdefault("preserve", preserve_line) and [] or [])
    tokenize(b"a dog")
    assert seen["preserve"] is preserve


def test_punkt_tab_path_agrees_on_one_sentence_when_installed():
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        pytest.skip("NLTK punkt_tab is not installed here (make download installs it)")
    caption = "two dogs, playing near the beach's edge."
    assert nltk.tokenize.word_tokenize(caption) == nltk.tokenize.word_tokenize(caption, preserve_line=True)


def test_encode_adds_start_end_and_unk(golden_dir):
    vocab = Vocabulary.load(golden_dir / "vocab" / "coco_precomp_vocab.json")
    ids = vocab.encode(b"Tree zzzunknownzzz")
    assert ids[0] == 1 and ids[-1] == 2 and ids[2] == 3
    assert ids[1] == vocab.word2idx["tree"]


def test_bad_vocabularies(tmp_path):
    with pytest.raises(BenchError, match="not found"):
        Vocabulary.load(tmp_path / "none.json")
    (tmp_path / "a.json").write_text("[1, 2]")
    with pytest.raises(BenchError, match="not a SCAN vocabulary"):
        Vocabulary.load(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps({"word2idx": {"<pad>": 0, "<start>": 2, "<end>": 1, "<unk>": 3}}))
    with pytest.raises(BenchError, match="<start> must have id 1"):
        Vocabulary.load(tmp_path / "b.json")


def test_size_mismatch_with_checkpoint(golden_dir):
    vocab = Vocabulary.load(golden_dir / "vocab" / "coco_precomp_vocab.json")
    with pytest.raises(BenchError, match="vocabulary has 128 words but ck embeds 11353"):
        vocab.check_matches(11353, "ck")


def test_without_nltk_tokenizing_is_one_clear_error(monkeypatch):
    """NLTK is imported only when a caption is tokenized; without it, a BenchError says what is missing."""
    monkeypatch.setitem(sys.modules, "nltk", None)  # `import nltk` then raises ImportError
    with pytest.raises(BenchError, match="NLTK is not importable"):
        tokenize(b"a dog")
