"""A small generated corpus in the WikiText format, for tests and CPU-sized notebook runs.

It is SYNTHETIC: numbers measured on it say how the code behaves, not what WikiText-2 gives.

The language is a class-based hidden Markov model, so that a language model has something to
learn and word embeddings have something to capture: words fall into `n_classes` classes; the
class of the next word depends on the class of the current one (each class has a few likely
successors), and a word is drawn from its class by a Zipf law. Words of one class are therefore
interchangeable in context, which is the structure a PMI factorisation recovers.

Layout as in WikiText: " = title = " heading lines, blank lines " ", paragraph lines of
space-separated tokens with sentences ending in ".", and the rarest words written as `<unk>`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from companion.data.wikitext import SPLITS, UNK, file_names


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and seed of a generated corpus; the same spec always gives the same files."""

    vocabulary: int = 200  # distinct words before the rarest become <unk>
    train_tokens: int = 6_000
    valid_tokens: int = 1_000
    test_tokens: int = 1_000
    n_classes: int = 10
    successors: int = 3  # likely next classes of a class
    unk_fraction: float = 0.05  # rarest share of the words written as <unk>
    seed: int = 0

    def __post_init__(self) -> None:
        if self.vocabulary < 2 * self.n_classes or self.n_classes < 2:
            raise ValueError(f"need n_classes >= 2 and vocabulary >= 2 * n_classes, got "
                             f"{self.vocabulary} words in {self.n_classes} classes")
        if min(self.train_tokens, self.valid_tokens, self.test_tokens) < 100:
            raise ValueError("every split needs at least 100 tokens")
        if not 0 <= self.unk_fraction < 0.5:
            raise ValueError(f"unk_fraction must lie in [0, 0.5), not {self.unk_fraction}")

    def name(self) -> str:
        return (f"synthetic-v{self.vocabulary}-c{self.n_classes}-t{self.train_tokens}-"
                f"s{self.seed}")


class _Language:
    """The class HMM: transition matrix between classes, Zipf word laws within classes."""

    def __init__(self, spec: SyntheticSpec) -> None:
        rng = np.random.default_rng(spec.seed)
        k = spec.n_classes
        self.transitions = np.full((k, k), 0.05 / k)
        for row in range(k):
            chosen = rng.choice(k, size=min(spec.successors, k), replace=False)
            self.transitions[row, chosen] += 0.95 * rng.dirichlet(np.ones(len(chosen)))
        word_class = rng.permutation(spec.vocabulary) % k  # word id -> class
        self.members = [np.flatnonzero(word_class == c) for c in range(k)]
        self.laws = []
        for members in self.members:
            weights = 1.0 / np.arange(1, len(members) + 1) ** 1.1
            self.laws.append(weights / weights.sum())
        # the rarest words overall (lowest probability under the stationary law) become <unk>
        stationary = np.linalg.matrix_power(self.transitions.T, 200) @ np.full(k, 1.0 / k)
        probability = np.zeros(spec.vocabulary)
        for c, (members, law) in enumerate(zip(self.members, self.laws)):
            probability[members] = stationary[c] * law
        rare = np.argsort(probability)[: int(spec.unk_fraction * spec.vocabulary)]
        self.spellings = np.array([f"w{i}" for i in range(spec.vocabulary)], dtype=object)
        self.spellings[rare] = UNK

    def words(self, count: int, rng: np.random.Generator) -> list[str]:
        """`count` words of one Markov walk over the classes."""
        state = int(rng.integers(len(self.members)))
        out = []
        for _ in range(count):
            state = int(rng.choice(len(self.members), p=self.transitions[state]))
            out.append(self.spellings[rng.choice(self.members[state], p=self.laws[state])])
        return out


def _lines(language: _Language, tokens: int, rng: np.random.Generator) -> list[str]:
    """WikiText-style lines holding about `tokens` tokens (counting one <eos> per line)."""
    lines: list[str] = []
    written = 0
    while written < tokens:
        title = language.words(int(rng.integers(1, 4)), rng)
        lines += [" = " + " ".join(title) + " = ", " "]
        written += len(title) + 4  # "=", "=", and two <eos>
        for _ in range(int(rng.integers(1, 4))):  # paragraphs
            sentence_lengths = rng.integers(4, 16, size=int(rng.integers(2, 6)))
            paragraph = []
            for length in sentence_lengths:
                paragraph += [*language.words(int(length), rng), "."]
            lines += [" " + " ".join(paragraph) + " ", " "]
            written += len(paragraph) + 2
            if written >= tokens:
                break
    return lines


def generate(directory: Path | str, spec: SyntheticSpec = SyntheticSpec()) -> Path:
    """Write wiki.{train,valid,test}.tokens of `spec` into `directory`; returns the directory.

    Files are written to a temporary name and renamed, so a killed call leaves no half file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    language = _Language(spec)
    sizes = {"train": spec.train_tokens, "valid": spec.valid_tokens, "test": spec.test_tokens}
    for offset, split in enumerate(SPLITS):
        rng = np.random.default_rng([spec.seed, offset + 1])
        text = "\n".join(_lines(language, sizes[split], rng)) + "\n"
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, directory / file_names("wikitext-2")[split])
    return directory
