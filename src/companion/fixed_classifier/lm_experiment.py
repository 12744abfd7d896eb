"""One language-model run of "Fix your classifier": a pure function of a frozen config.

The paper trains a 2-layer LSTM, embedding and hidden size 512, on WikiText-2 with four output
layers (learned, tied, fixed random orthogonal, fixed pre-trained embeddings) and publishes no
perplexity, only that the random orthogonal layer did poorly and the pre-trained one well.
Here the five variants of `language_model` (Hadamard added) train with the recipe of
`lm_training` (SGD lr 20, clip 0.25, lr / 4 on validation plateaus, batch 20, BPTT 35).

Profiles (one code path, three budgets):

| profile | corpus | vocabulary | training tokens | E = H | dropout | epochs |
|---|---|---|---|---|---|---|
| smoke | SYNTHETIC (generated) | about 190 | about 4,000 | 32 | 0.2 | 2 |
| quick | SYNTHETIC (generated) | about 950 | about 30,000 | 96 | 0.2 | 6 |
| paper | WikiText-2 | 33,278 | 2,088,628 | 512 | 0.5 | 40 |

WikiText-2 is not on the project's machine, and one paper-size epoch is hours on its 2-core
CPU: `smoke` and `quick` train on a generated corpus in the WikiText format
(`companion.data.synthetic_text`), labelled synthetic in every record. Any profile can take
`corpus="wikitext-2"` instead. From a shell (GPU picked automatically when present):

    python -m companion.fixed_classifier.lm_sweep --profile paper

Records go to `results/fixed-classifier-lm-<corpus>-<profile>/<config hash>.json`; grids,
running and reading them, and the command line are `lm_sweep`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from companion import checkpoints, provenance, records
from companion.data import synthetic_text, wikitext
from companion.data.sources import cache_dir
from companion.fixed_classifier.language_model import (
    LSTMLanguageModel,
    check_architecture,
    parameter_breakdown,
    pmi_embeddings,
)
from companion.fixed_classifier.lm_training import LMTrainer, LMTrainingSettings, perplexity
from companion.profiles import resolve_profile

EXPERIMENT = "fixed-classifier-lm"
CORPORA = ("wikitext-2", "wikitext-2-raw", "synthetic")


@dataclass(frozen=True)
class LMRunConfig:
    """Everything a run depends on. Build it with `make_config` (which validates it)."""

    variant: str = "learned"  # one of language_model.VARIANTS
    corpus: str = "wikitext-2"  # "wikitext-2", "wikitext-2-raw" or "synthetic"
    profile: str = "paper"
    seed: int = 0
    epochs: int = 40
    embedding_size: int = 512
    hidden_size: int = 512
    layers: int = 2
    dropout: float = 0.5
    batch_size: int = 20
    eval_batch_size: int = 10
    bptt: int = 35
    learning_rate: float = 20.0
    clip: float = 0.25
    anneal: float = 4.0  # lr divided by this after an epoch without a better validation loss
    pmi_window: int = 2  # co-occurrence window of the PMI embeddings (tokens either side)
    pmi_shift: float = 1.0  # k of the shifted PPMI (log k subtracted); 1: plain PPMI
    synthetic_vocabulary: int | None = None  # generated corpus only (see synthetic_text)
    synthetic_classes: int | None = None
    synthetic_train_tokens: int | None = None
    device: str = "auto"  # "auto": CUDA, then MPS, then the CPU


PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"corpus": "synthetic", "synthetic_vocabulary": 200, "synthetic_classes": 10,
              "synthetic_train_tokens": 4_000, "embedding_size": 32, "hidden_size": 32,
              "dropout": 0.2, "epochs": 2, "batch_size": 10, "bptt": 20},
    "quick": {"corpus": "synthetic", "synthetic_vocabulary": 1_000, "synthetic_classes": 25,
              "synthetic_train_tokens": 30_000, "embedding_size": 96, "hidden_size": 96,
              "dropout": 0.2, "epochs": 6},
    "paper": {},
}
SYNTHETIC_FIELDS = ("synthetic_vocabulary", "synthetic_classes", "synthetic_train_tokens")


def validate(config: LMRunConfig) -> None:
    """Raise ValueError naming the field and what is allowed."""
    if config.corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, not {config.corpus!r}")
    check_architecture(config.variant, 2, config.embedding_size, config.hidden_size,
                       config.layers, config.dropout)
    for name in ("epochs", "batch_size", "eval_batch_size", "bptt", "pmi_window"):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    for name in ("learning_rate", "clip", "pmi_shift"):
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive number, not {value!r}")
    if not isinstance(config.anneal, (int, float)) or config.anneal < 1:
        raise ValueError(f"anneal must be a number >= 1 (1: never anneal), not {config.anneal!r}")
    synthetic = [getattr(config, name) for name in SYNTHETIC_FIELDS]
    if config.corpus == "synthetic" and None in synthetic:
        raise ValueError(f"a synthetic corpus needs {', '.join(SYNTHETIC_FIELDS)}")
    if config.corpus != "synthetic" and any(v is not None for v in synthetic):
        raise ValueError(f"{', '.join(SYNTHETIC_FIELDS)} apply to corpus='synthetic' only")
    resolve_device(config.device)


def make_config(variant: str = "learned", profile: str = "paper", seed: int = 0,
                **overrides: Any) -> LMRunConfig:
    """The config of one run: the profile's budget, the recipe's defaults, and any overrides.

    `corpus="wikitext-2"` on the smoke or quick profile drops the profile's synthetic fields.
    """
    profile = resolve_profile(profile)
    unknown = sorted(set(overrides) - {f.name for f in fields(LMRunConfig)})
    if unknown:
        raise ValueError(f"unknown config fields {unknown}")
    settings = {**PROFILE_SETTINGS[profile], **overrides}
    if settings.get("corpus", "wikitext-2") != "synthetic":
        for name in SYNTHETIC_FIELDS:
            if name not in overrides:
                settings.pop(name, None)
    config = LMRunConfig(variant=variant, profile=profile, seed=seed, **settings)
    validate(config)
    return config


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA, then MPS, then CPU; any other name must be a usable torch device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device {name!r} is not a torch device ({error}); use 'auto', 'cpu', "
                         "'cuda' or 'mps'") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: torch sees no CUDA GPU here; use 'auto' or 'cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r}: MPS is not available here; use 'auto' or 'cpu'")
    return device


def synthetic_spec(config: LMRunConfig) -> synthetic_text.SyntheticSpec:
    train = config.synthetic_train_tokens
    return synthetic_text.SyntheticSpec(
        vocabulary=config.synthetic_vocabulary, n_classes=config.synthetic_classes,
        train_tokens=train, valid_tokens=max(1_000, train // 10),
        test_tokens=max(1_000, train // 10), seed=0)


def load_corpus(config: LMRunConfig) -> wikitext.Corpus:
    """WikiText-2 (local copy, cache or download) or the generated corpus of the config."""
    if config.corpus != "synthetic":
        return wikitext.load(config.corpus)
    spec = synthetic_spec(config)
    folder = cache_dir() / "wikitext" / spec.name()
    if not all((folder / name).is_file() for name in wikitext.file_names("wikitext-2").values()):
        synthetic_text.generate(folder, spec)
    return wikitext.read(folder, label=f"SYNTHETIC corpus {spec.name()}", synthetic=True)


def build_model(config: LMRunConfig, corpus: wikitext.Corpus) -> LSTMLanguageModel:
    """The model of `config`; weights from the global RNG (seed it first), PMI from the corpus."""
    vocab_size = len(corpus.vocabulary)
    embeddings = None
    if config.variant == "pmi":
        embeddings = pmi_embeddings(corpus.train, vocab_size, config.embedding_size,
                                    config.pmi_window, config.pmi_shift, config.seed)
    return LSTMLanguageModel(vocab_size, config.variant, config.embedding_size,
                             config.hidden_size, config.layers, config.dropout,
                             embeddings=embeddings, seed=config.seed)


def training_settings(config: LMRunConfig) -> LMTrainingSettings:
    return LMTrainingSettings(
        epochs=config.epochs, batch_size=config.batch_size,
        eval_batch_size=config.eval_batch_size, bptt=config.bptt,
        learning_rate=float(config.learning_rate), clip=float(config.clip),
        anneal=float(config.anneal), seed=config.seed)


def record_folder(config: LMRunConfig) -> str:
    """The experiment of the run's record, `fixed-classifier-lm-<corpus>-<profile>`: its folder
    under `results/` (`lm_sweep.experiment_name` checks that a grid has one)."""
    return f"{EXPERIMENT}-{config.corpus}-{config.profile}"


def checkpoint_path(config: LMRunConfig) -> Path:
    """Beside the run's record: `<hash>.checkpoint.pt`."""
    return checkpoints.beside(records.record_path(record_folder(config), config))


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run(config: LMRunConfig) -> dict[str, Any]:
    """Train and evaluate one config; return its record (JSON-ready, no NaN or inf)."""
    started = time.perf_counter()
    validate(config)
    device = resolve_device(config.device)
    corpus = load_corpus(config)
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
        torch.manual_seed(config.seed)
        model = build_model(config, corpus)
        streams = {"train": corpus.train, "valid": corpus.valid, "test": corpus.test}
        trainer = LMTrainer(model, training_settings(config), streams,
                            checkpoint=checkpoint_path(config), device=device)
        result = trainer.fit()
        valid_loss, test_loss = trainer.evaluate("valid"), trainer.evaluate("test")
    history = {key: [v if v is None or math.isfinite(v) else None for v in values]
               for key, values in result.history.items()}
    diverged = result.diverged or not math.isfinite(test_loss)
    record = {
        "config": records.config_dict(config),
        "experiment": record_folder(config),
        "history": history,
        "diverged": diverged,
        "initial_valid_perplexity": _json_number(perplexity(result.initial_valid_loss)),
        "best_epoch": result.best_epoch,
        "valid_perplexity": None if diverged else _json_number(perplexity(valid_loss)),
        "test_perplexity": None if diverged else _json_number(perplexity(test_loss)),
        "test_loss": None if diverged else _json_number(test_loss),
        "vocabulary_size": len(corpus.vocabulary),
        "tokens": {"train": len(corpus.train), "valid": len(corpus.valid),
                   "test": len(corpus.test)},
        "corpus_source": corpus.source,
        "synthetic": corpus.synthetic,
        "parameters": parameter_breakdown(model),
        "wall_time_s": round(time.perf_counter() - started, 3),  # of the last process only
        "resumed_after_epoch": trainer.resumed_epochs,
        **provenance.record_provenance(EXPERIMENT, torch.cuda.get_device_name(device)
                                       if device.type == "cuda" else device.type),
    }
    return json.loads(json.dumps(record, allow_nan=False))  # as read back from its file


def run_group(configs: Sequence[LMRunConfig], threads: int | None = None) -> list[dict[str, Any]]:
    """Records of `configs`, in order; `threads` overrides the torch threads of the worker."""
    if threads is not None:
        torch.set_num_threads(threads)
    return [run(config) for config in configs]
