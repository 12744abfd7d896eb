"""One UCI run of the class-lr paper: a pure function of a frozen config, returning a record.

Protocol (section 4 of the paper): the Table 1 architecture of the data set, plain SGD with
learning rate 0.01, 100 epochs, no early stopping, cross-entropy; the test accuracy after the
last epoch is the result.

A long run saves its state beside its record every `SAVE_EVERY_S` seconds, at the end of an
epoch (`companion.checkpoints`), and a run of the same configs by the same run code resumes from
it: a sweep killed after hours (a session's end, a pre-empted cluster job) loses minutes, and
the record equals that of an uninterrupted run except for `wall_time_s` (the time of the
segments that counted) and `resumed_at_epochs`.

Batch size (the paper does not give one): 32. A small batch keeps the number of SGD steps at
lr 0.01 large enough on the small data sets (car's 735 training rows make 23 steps an epoch);
larger batches need a larger learning rate, which the paper rules out. It is a config field.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from companion import checkpoints, provenance, records, validation
from companion.class_lr.convergence import non_convergence
from companion.class_lr.registry import ACTIVATIONS, METHODS, architecture
from companion.class_lr.training import Training, build_model, predict, specialization
from companion.devices import describe, resolve_device
from companion.profiles import resolve_profile

EXPERIMENT = "class-lr-uci"


@dataclass(frozen=True)
class UCIRunConfig:
    """Everything a UCI run depends on. Build it with `make_config`."""

    dataset: str
    activation: str
    layers: int
    hidden: int
    shape: str
    dropout: float
    method: str = "baseline"
    profile: str = "paper"
    seed: int = 0
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 0.01
    split: str = "paper"
    fold: int = 0
    # split="original" only: the test file as shipped (None) or "standardised" (see data.uci).
    original_test_scaling: str | None = None
    # Quick and smoke profiles cap the training rows seen per epoch (None: all of them).
    max_train_samples: int | None = None
    # class-lr only (None for the baseline, so baseline records keep their hash):
    cutoff: int | None = None  # epochs with class-based rates before plain SGD takes over
    alpha_mu: float | None = None  # learning rate of the multipliers (Eq. 6)
    statistic: str | None = None  # "per_sample" (default) or "class_gradient", see optimizer
    # Initialisation of the weights (None: "lecun", the paper's; "he", "glorot": see models).
    init: str | None = None
    # How many times a non-converged class-lr run is retried at alpha_mu / 10 (None: 3).
    alpha_retries: int | None = None
    # What counts as "did not converge" for that retry (None: "nonfinite"), see convergence.
    divergence_rule: str | None = None

    def __post_init__(self) -> None:
        validation.check_uci_run(self)  # one clear error per bad field (companion.validation)


# Budget of each profile. quick: 10 epochs of at most 2,000 training rows (a seeded subsample
# drawn anew each epoch), on the data sets whose paper-profile run costs at most
# QUICK_MAX_PAPER_TERAFLOPS of training compute (the 28 cheapest of the 43 available, so that
# Table 2 at quick, 336 runs, takes minutes and `make` stays under 30 minutes on 2 cores);
# smoke: 2 epochs on 256 rows of 3 small sets.
PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 2, "max_train_samples": 256},
    "quick": {"epochs": 10, "max_train_samples": 2000},
    "paper": {"epochs": 100, "max_train_samples": None},
}
QUICK_MAX_PAPER_TERAFLOPS = 0.4
SMOKE_DATASETS = ("car", "titanic", "led-display")
# Cutoff epochs of class-lr per profile (the paper: 10, 20 or 30 of 100 epochs, chosen per data
# set by validation accuracy); quick and smoke keep about the same fractions of their epochs.
CUTOFFS = {"smoke": (1,), "quick": (1, 2, 3), "paper": (10, 20, 30)}
# The paper's alpha_mu: 1e5 for SELU and tanh, 1e4 for ReLU, divided by 10 when a run diverges.
ALPHA_MU = {"selu": 1e5, "tanh": 1e5, "relu": 1e4}
MAX_ALPHA_RETRIES = 3
# How often a run saves its state to resume from (seconds, at the end of an epoch): runs shorter
# than this never write one; chess-krvk's 1-5 hour groups lose at most this much when killed.
SAVE_EVERY_S = 300.0
# The protocol settled by the study (notebooks/class_lr/protocol_findings.ipynb): the class
# part of the batch gradient, squared, as Eq. 6's statistic; a collapse driven by grown
# multipliers counts as non-convergence; He initialisation for ReLU nets. PRE_STUDY undoes it
# (the protocol of the records made before the study).
SETTLED_CLASS_LR = {"statistic": "class_gradient", "divergence_rule": "blowup"}
SETTLED_INIT = {"relu": {"init": "he"}}
PRE_STUDY = {"divergence_rule": None, "init": None}  # and class-lr statistic "per_sample"


def pre_study(config: UCIRunConfig) -> UCIRunConfig:
    """The config as the protocol before the study would have made it (printed Table 1 row,
    LeCun init, per-sample Eq. 6 reading, only non-finite losses retried)."""
    printed = architecture(config.dataset, printed=True)
    changes: dict[str, Any] = {**PRE_STUDY, "layers": printed.layers, "dropout": printed.dropout}
    if config.method == "class_lr":
        changes["statistic"] = "per_sample"
    return replace(config, **changes)


def make_config(
    dataset: str,
    activation: str,
    method: str = "baseline",
    profile: str = "paper",
    seed: int = 0,
    cutoff: int | None = None,
    **overrides: Any,
) -> UCIRunConfig:
    """The config of one run: Table 1 architecture + profile budget + any overrides.

    class-lr configs need a `cutoff` (one of `CUTOFFS[profile]` for the paper's protocol).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    profile = resolve_profile(profile)
    if method == "class_lr":
        if cutoff is None:
            raise ValueError(f"class_lr needs a cutoff epoch, e.g. one of {CUTOFFS[profile]}")
        overrides = {"cutoff": cutoff, "alpha_mu": ALPHA_MU[activation], **SETTLED_CLASS_LR,
                     **overrides}
    elif cutoff is not None:
        raise ValueError("cutoff only applies to method='class_lr'")
    overrides = {**SETTLED_INIT.get(activation, {}), **overrides}
    arch = architecture(dataset)
    config = UCIRunConfig(
        dataset=arch.dataset,
        activation=activation,
        layers=arch.layers,
        hidden=arch.hidden,
        shape=arch.shape,
        dropout=arch.dropout,
        method=method,
        profile=profile,
        seed=seed,
        **PROFILE_SETTINGS[profile],
    )
    return replace(config, **overrides)


def training_teraflops(
    config: UCIRunConfig, n_train: int, n_features: int, n_classes: int
) -> float:
    """Approximate training compute of a run: 6 flops per weight per sample (fwd + bwd)."""
    model = build_model(config, n_features, n_classes)
    weights = sum(p.numel() for p in model.parameters())
    rows = min(n_train, config.max_train_samples or n_train)
    return 6 * weights * rows * config.epochs / 1e12


def record_folder(config: UCIRunConfig) -> str:
    """The folder of the run's record under `results/`, `class-lr-uci-<profile>` (only `paper`
    ones are committed; `sweep.experiment_name` checks that a grid has one)."""
    return f"{EXPERIMENT}-{config.profile}"


def make_record(training: Training, config: UCIRunConfig, started: float, **extra: Any
                ) -> dict[str, Any]:
    """The record of `config` from the state `training` reached (`extra`: more fields)."""
    data = training.data
    record: dict[str, Any] = {
        "config": records.config_dict(config),
        "experiment": EXPERIMENT,
        "history": training.history,
        "diverged": training.diverged,
        "n_train": len(data.train),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "n_classes": data.n_classes,
        **extra,
    }
    k = data.n_classes
    record.update(
        initial_train_loss=training.initial_train_loss,
        test_label_counts=np.bincount(data.test.y, minlength=k).tolist(),
        first_nonfinite=training.first_nonfinite,
    )
    if config.method == "class_lr":
        record["multiplier_trace"] = training.multiplier_trace
    if training.diverged:
        record.update(test_accuracy=None, val_accuracy=None, test_correct=None,
                      neuron_specialization=None, test_prediction_counts=None)
    else:
        predictions = predict(training.model, training.x_test).numpy()
        correct = (predictions == data.test.y).astype(np.uint8)
        record.update(
            # the histogram of predicted classes shows a collapse to one class
            test_prediction_counts=np.bincount(predictions, minlength=k).tolist(),
            test_accuracy=float(correct.mean()),
            val_accuracy=training.history["val_accuracy"][-1],
            # one character per test sample, "1" = correctly classified (McNemar's test)
            test_correct="".join(map(str, correct)),
            neuron_specialization=specialization(training.model, training.x_test, data.test.y,
                                                  data.n_classes),
        )
    record.update(
        wall_time_s=round(time.perf_counter() - started, 3),
        **provenance.record_provenance(EXPERIMENT, describe(training.device)),
    )
    return record




def group_key(config: UCIRunConfig) -> UCIRunConfig:
    """Configs with the same key train together (class-lr cutoffs share their first epochs)."""
    return replace(config, cutoff=None)


def state_path(configs: Sequence[UCIRunConfig]) -> Path:
    """Where a run group saves its state: beside the record of its first config (`run_group`
    and `run_cutoffs` sort class-lr configs by cutoff), `<hash>.checkpoint.pt`."""
    first = min(configs, key=lambda c: c.cutoff or 0)
    return checkpoints.beside(records.record_path(record_folder(first), first))


class Resumable:
    """The saved progress of a run group, beside the record of its first config.

    `progress` is what the caller's loop needs to pick up where it stopped (plain data);
    `offer` is `Training.on_epoch_end`: every `save_every_s` seconds (None: never) it saves the
    progress with the training state, atomically. The file holds the configs and the run
    code's fingerprint: other configs or other code refuse it (delete it to start afresh).
    """

    def __init__(self, configs: Sequence[UCIRunConfig], save_every_s: float | None,
                 progress: dict[str, Any]) -> None:
        self.path = state_path(configs)
        self.settings = {"configs": [records.config_dict(c) for c in configs],
                         "code_fingerprint": provenance.code_fingerprint(EXPERIMENT)}
        self.save_every_s, self.last_save = save_every_s, time.perf_counter()
        self.saved = None if save_every_s is None else checkpoints.load(
            self.path, "cpu", self.settings)
        self.progress = progress if self.saved is None else self.saved["progress"]
        self.started = time.perf_counter() - self.progress.get("elapsed", 0.0)

    def resume(self, training: Training) -> None:
        """Put `training` where the saved state left it (once), and let it save from now on."""
        if self.saved is not None:
            training.restore(self.saved["training"])
            self.progress["resumed_at_epochs"].append(training.epoch)
            self.saved = None
        training.on_epoch_end = self.offer

    def new_segment(self) -> None:
        """The next record's clock and resume log start now."""
        self.started = time.perf_counter()
        self.progress["resumed_at_epochs"] = []

    def offer(self, state: Callable[[], dict[str, Any]]) -> None:
        if self.save_every_s is None or time.perf_counter() - self.last_save < self.save_every_s:
            return
        self.progress["elapsed"] = time.perf_counter() - self.started
        checkpoints.save({"settings": self.settings, "progress": self.progress,
                          "training": state()}, self.path)
        self.last_save = time.perf_counter()

    def segment_fields(self) -> dict[str, Any]:
        """Record fields of the segment ending now: its resumes, when there were any."""
        resumed = self.progress["resumed_at_epochs"]
        return {"resumed_at_epochs": list(resumed)} if resumed else {}

    def finish(self) -> None:
        """The records are made: the state is of no more use (a run that does not save leaves
        alone a file that another, saving, process may be using)."""
        if self.save_every_s is not None:
            self.path.unlink(missing_ok=True)


def run_group(configs: Sequence[UCIRunConfig], device: str | None = "cpu",
              save_every_s: float | None = SAVE_EVERY_S) -> list[dict[str, Any]]:
    """Records of configs sharing one `group_key`, in the order given (`device`: see `run`;
    `save_every_s`: see `Resumable`)."""
    if configs[0].method == "class_lr":
        return run_cutoffs(configs, device, save_every_s)
    return [run(config, device, save_every_s) for config in configs]


def run(config: UCIRunConfig, device: str | None = "cpu",
        save_every_s: float | None = SAVE_EVERY_S) -> dict[str, Any]:
    """Train and evaluate one config; return its record (see `records`).

    `device` ("cpu", the default; "cuda", "cuda:1", "mps", or "auto"/None for the best there
    is) is where it trains, not part of the config, and the record states it (`device`,
    `cpu`). On every device the initial weights and the batch order are the same (drawn on the
    CPU); float rounding differs, and so do dropout masks, which a GPU draws from its own
    generator: a GPU run of a net with dropout is another draw of the same seed's run. On a
    GPU the class-lr step runs in torch ops (`optimizer.ClassLR`, backend "torch").
    """
    if config.method == "class_lr":
        return run_cutoffs([config], device, save_every_s)[0]
    saver = Resumable([config], save_every_s, {"resumed_at_epochs": []})
    training = Training(config, resolve_device(device))
    saver.resume(training)
    training.train_sgd(config.epochs)
    record = make_record(training, config, saver.started, **saver.segment_fields())
    saver.finish()
    return record


def run_cutoffs(configs: Sequence[UCIRunConfig], device: str | None = "cpu",
                save_every_s: float | None = SAVE_EVERY_S) -> list[dict[str, Any]]:
    """Class-lr runs that differ only in their cutoff, sharing the epochs before each cutoff.

    Train with class-based rates to the first cutoff, branch off a copy that finishes with
    plain SGD, go on to the next cutoff, and so on: each record equals that of a run from
    scratch. A cutoff whose run did not converge (`convergence.non_convergence` under the
    config's `divergence_rule`) is retried with alpha_mu / 10 (the paper's rule), up to
    `alpha_retries` times (default MAX_ALPHA_RETRIES); the record keeps the alpha_mu that was
    used and, in `attempts`, every alpha_mu tried with the reason it was rejected. The loop's
    state lives in `saver.progress`, so that a resumed group re-enters it where it stopped.
    """
    given = list(configs)
    configs = sorted(given, key=lambda c: c.cutoff or 0)
    shared = {group_key(c) for c in configs}
    if len(shared) != 1 or any(c.method != "class_lr" for c in configs):
        raise ValueError("run_cutoffs takes class-lr configs that differ only in cutoff")
    first = configs[0]
    retries = MAX_ALPHA_RETRIES if first.alpha_retries is None else first.alpha_retries
    rule = first.divergence_rule or "nonfinite"
    by_cutoff = {c.cutoff: c for c in configs}
    saver = Resumable(configs, save_every_s, {
        "attempt": 0, "alpha_mu": first.alpha_mu, "pending": [c.cutoff for c in configs],
        "position": 0, "failed": [], "results": {}, "resumed_at_epochs": [],
        "rejected": {c.cutoff: [] for c in configs},
        "branch": None, "multiplier_mib": None})  # branch: the state at the cutoff, in SGD
    progress = saver.progress
    while progress["pending"] and progress["attempt"] <= retries:
        pending = [by_cutoff[cutoff] for cutoff in progress["pending"]]
        training = Training(pending[0], resolve_device(device))
        saver.resume(training)
        for position in range(progress["position"], len(pending)):
            config, alpha_mu = pending[position], progress["alpha_mu"]
            progress["position"] = position
            if progress["branch"] is None:  # not yet past this cutoff's class-lr epochs
                optimizer = training.train_class_lr(config.cutoff, alpha_mu)
                progress["multiplier_mib"] = round(optimizer.multiplier_bytes / 2**20, 3)
                progress["branch"] = training.checkpoint()
            training.train_sgd(config.epochs)
            record = make_record(training, config, saver.started, alpha_mu_used=alpha_mu,
                                 multiplier_mib=progress["multiplier_mib"],
                                 attempts=list(progress["rejected"][config.cutoff]),
                                 **saver.segment_fields())
            reason = non_convergence(record, rule)
            record["non_convergence"] = reason
            if reason is not None:
                progress["failed"].append(config.cutoff)
                progress["rejected"][config.cutoff].append(
                    {"alpha_mu": alpha_mu, "reason": reason})
            progress["results"][config.cutoff] = record
            training.restore(progress["branch"])
            progress["branch"] = None
            saver.new_segment()
        progress.update(pending=progress["failed"], failed=[], position=0,
                        alpha_mu=progress["alpha_mu"] / 10, attempt=progress["attempt"] + 1)
    saver.finish()
    return [progress["results"][c.cutoff] for c in given]
