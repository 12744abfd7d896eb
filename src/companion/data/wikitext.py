"""WikiText-2 (Merity et al. 2016) for word-level language modelling, and a synthetic stand-in.

Files: `wiki.{train,valid,test}.tokens` (the standard, tokenised variant "wikitext-2", rare words
already replaced by `<unk>`) or `wiki.{train,valid,test}.raw` ("wikitext-2-raw", untokenised
text, nothing replaced). Sources of `load(variant)`, in order:

1. `$COMPANION_WIKITEXT2_DIR`: a directory holding the three files (directly or in a
   `wikitext-2/` / `wikitext-2-raw/` folder), or the published zip archive itself;
2. the cache `data/wikitext/<variant>/` (an earlier download);
3. a download of the published zip with pooch, checked against its sha256 (the hashes below
   are the ones the WikiText.jl DataDeps registry publishes for the Salesforce archives; the
   raw one is also the sha256 the llama.cpp CI mirror is pinned to). The hash is compulsory:
   an archive whose sha256 differs is refused, nothing unverified is ever read.

Vocabulary (the standard one, as in PyTorch's word_language_model example): every line is
split on whitespace and ends with `<eos>` (empty lines too), tokens are kept as given, and
words are numbered in order of first appearance in the training split. The standard training
split has 33,278 distinct tokens this way, `<unk>` included. Validation and test tokens that
the training split lacks (only in the raw variant) are mapped to `<unk>`.

Streams: `batchify` cuts a token stream (T,) into B parallel columns (T // B, B), dropping the
remainder; `bptt_windows` walks down the columns in windows of `bptt` steps, giving inputs
x = data[i:i+L] and targets y = data[i+1:i+1+L], each (L, B).

`synthetic_text.generate` writes a small corpus in the same format (see that module): the tests and
the `smoke`/`quick` notebooks use one because WikiText-2 is not on the project's machine.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from companion.data.sources import DataError, cache_dir, download, env_path, sha256

ENV_VARIABLE = "COMPANION_WIKITEXT2_DIR"
SPLITS = ("train", "valid", "test")
EOS = "<eos>"
UNK = "<unk>"
STANDARD_VOCABULARY_SIZE = 33_278  # wikitext-2 training split, <eos> and <unk> included


@dataclass(frozen=True)
class Variant:
    """One published WikiText-2 archive: mirrors, its sha256, its folder and file suffix."""

    urls: tuple[str, ...]
    sha256: str
    folder: str
    suffix: str


VARIANTS = {
    "wikitext-2": Variant(
        urls=("https://wikitext.smerity.com/wikitext-2-v1.zip",
              "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip"),
        sha256="92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c",
        folder="wikitext-2",
        suffix="tokens",
    ),
    "wikitext-2-raw": Variant(
        urls=("https://wikitext.smerity.com/wikitext-2-raw-v1.zip",
              "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-raw-v1.zip"),
        sha256="ef7edb566e3e2b2d31b29c1fdb0c89a4cc683597484c3dc2517919c615435a11",
        folder="wikitext-2-raw",
        suffix="raw",
    ),
}


class MissingCorpusError(DataError):
    """No local copy and no download: the message says which variable to set."""


@dataclass(frozen=True)
class Vocabulary:
    """Words in id order; `index` maps a word to its id."""

    words: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {word: i for i, word in enumerate(self.words)})

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Token ids (n,) int64; words not in the vocabulary become `<unk>`."""
        index, unk = self.index, self.index[UNK]  # type: ignore[attr-defined]
        return np.fromiter((index.get(t, unk) for t in tokens), dtype=np.int64, count=len(tokens))


@dataclass(frozen=True)
class Corpus:
    """A vocabulary and the three splits as token-id streams (n,) int64."""

    vocabulary: Vocabulary
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    source: str = ""
    synthetic: bool = False


def file_names(variant: str) -> dict[str, str]:
    """{split: file name}, e.g. {"train": "wiki.train.tokens", ...}."""
    return {split: f"wiki.{split}.{_variant(variant).suffix}" for split in SPLITS}


def _variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown WikiText variant {name!r}; valid: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def tokenize(path: Path) -> list[str]:
    """Every token of a WikiText file, `<eos>` at the end of each line (empty lines too)."""
    tokens: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            tokens.extend(line.split())
            tokens.append(EOS)
    return tokens


def build_vocabulary(tokens: Sequence[str]) -> Vocabulary:
    """Words in order of first appearance; `<unk>` and `<eos>` appended when absent."""
    words = dict.fromkeys(tokens)
    for special in (EOS, UNK):
        words.setdefault(special)
    return Vocabulary(tuple(words))


def read(directory: Path | str, variant: str = "wikitext-2", label: str = "",
         synthetic: bool = False) -> Corpus:
    """The corpus of a directory holding the three files of `variant` (no cache, no download)."""
    folder = _files_folder(Path(directory).expanduser(), variant)
    if folder is None:
        names = ", ".join(file_names(variant).values())
        raise MissingCorpusError(f"{directory} does not hold {names} (directly or in a "
                                 f"'{_variant(variant).folder}/' folder)")
    tokens = {split: tokenize(folder / name) for split, name in file_names(variant).items()}
    vocabulary = build_vocabulary(tokens["train"])
    streams = {split: vocabulary.encode(tokens[split]) for split in SPLITS}
    return Corpus(vocabulary, **streams, source=label or str(folder), synthetic=synthetic)


def _files_folder(directory: Path, variant: str) -> Path | None:
    """`directory` or its variant folder, whichever holds all three files."""
    for folder in (directory, directory / _variant(variant).folder):
        if all((folder / name).is_file() for name in file_names(variant).values()):
            return folder
    return None


def _extract_zip(archive: Path, destination: Path, variant: str) -> Path:
    """Extract the three files of `variant` from the published zip into `destination`."""
    wanted = file_names(variant).values()
    destination.mkdir(parents=True, exist_ok=True)
    partial = destination / ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        with zipfile.ZipFile(archive) as handle:
            members = {Path(name).name: name for name in handle.namelist()
                       if Path(name).name in wanted}
            missing = sorted(set(wanted) - set(members))
            if missing:
                raise DataError(f"{archive} lacks {', '.join(missing)}: not a WikiText-2 archive")
            for name, member in members.items():
                (partial / name).write_bytes(handle.read(member))  # names only: no path escapes
        for name in wanted:
            (partial / name).replace(destination / name)
    except zipfile.BadZipFile as error:
        raise DataError(f"{archive} is not a readable zip archive ({error})") from error
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return destination


def locate(variant: str = "wikitext-2", allow_download: bool = True) -> Path:
    """A directory holding the three files of `variant`: local copy, cache, or a download."""
    spec = _variant(variant)
    cached = cache_dir() / "wikitext" / variant
    local = env_path(ENV_VARIABLE)
    if local is not None:
        if local.is_file():
            if sha256(local) != spec.sha256:
                raise DataError(f"{local} (from {ENV_VARIABLE}) is not the published "
                                f"{variant} archive: its sha256 differs from {spec.sha256}")
            return _extract_zip(local, cached, variant)
        folder = _files_folder(local, variant)
        if folder is None:
            raise MissingCorpusError(
                f"{ENV_VARIABLE}={local} holds no {', '.join(file_names(variant).values())}: "
                f"point it at the unzipped '{spec.folder}' folder or the zip archive")
        return folder
    if _files_folder(cached, variant) is not None:
        return cached
    if not allow_download:
        raise MissingCorpusError(f"{variant} is not here: set {ENV_VARIABLE} to a local copy "
                                 "(see README.md, 'The language-model experiment')")
    errors = []
    for url in spec.urls:
        try:
            archive = download(url, f"sha256:{spec.sha256}", cache_dir() / "wikitext",
                               ENV_VARIABLE)
        except DataError as error:
            errors.append(str(error))
            continue
        return _extract_zip(archive, cached, variant)
    raise MissingCorpusError(" / ".join(errors))


def available(variant: str = "wikitext-2") -> bool:
    """Whether `variant` can be read without a download."""
    try:
        locate(variant, allow_download=False)
    except DataError:
        return False
    return True


def load(variant: str = "wikitext-2", allow_download: bool = True) -> Corpus:
    """The WikiText-2 corpus of `variant` ("wikitext-2" or "wikitext-2-raw")."""
    folder = locate(variant, allow_download)
    return read(folder, variant, label=f"{variant} ({folder})")


def batchify(stream: np.ndarray | Tensor, batch_size: int) -> Tensor:
    """(T,) ids -> (T // B, B): column b is the b-th consecutive slice of the stream."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    ids = torch.as_tensor(stream, dtype=torch.int64)
    steps = len(ids) // batch_size
    if steps < 2:
        raise ValueError(f"a stream of {len(ids)} tokens is too short for {batch_size} columns")
    return ids[: steps * batch_size].view(batch_size, steps).t().contiguous()


def bptt_windows(data: Tensor, bptt: int) -> Iterator[tuple[Tensor, Tensor]]:
    """(inputs, targets) windows of at most `bptt` steps down a (T, B) batchified stream."""
    if bptt < 1:
        raise ValueError(f"bptt must be positive, not {bptt}")
    for start in range(0, len(data) - 1, bptt):
        length = min(bptt, len(data) - 1 - start)
        yield data[start:start + length], data[start + 1:start + 1 + length]
