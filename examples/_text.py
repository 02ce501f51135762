"""The character corpus of the char-level examples: this repository's docs and library source."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CharCorpus:
    """The text as int32 ids over its sorted characters, split into train and the held-out last 10%."""

    text: str
    chars: list[str]
    index: dict[str, int]
    train: np.ndarray
    held_out: np.ndarray


def load_corpus(root: pathlib.Path = ROOT) -> str:
    """Every ``docs/*.md`` then every ``blox/*.py`` file, in sorted order, joined by newlines."""
    files = sorted(root.glob("docs/*.md")) + sorted(root.glob("blox/*.py"))
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def char_corpus(root: pathlib.Path = ROOT) -> CharCorpus:
    """Loads and encodes the corpus.

    Example:
        >>> corpus = char_corpus()
        >>> len(corpus.train) + len(corpus.held_out) == len(corpus.text), corpus.train.dtype
        (True, dtype('int32'))
    """
    text = load_corpus(root)
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text], np.int32)
    split = int(0.9 * len(ids))
    return CharCorpus(text, chars, index, ids[:split], ids[split:])


def unigram_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy of the character frequencies in nats per character: the loss of the best context-free model."""
    p = np.bincount(ids, minlength=vocab_size) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
