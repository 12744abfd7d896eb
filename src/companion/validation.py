"""Checks of run configs where they are made: one clear error per bad field, saying what is allowed.

A rule takes a value and returns None when it is allowed, else the sentence "must be ...".
Each config class has a table field -> rule (`UCI_RUN_RULES`, `CIFAR_RUN_RULES`); fields
without a rule are not checked, and a rule whose field a config lacks is skipped, so adding a
field means adding one line to its table.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from companion.class_lr.registry import ACTIVATIONS, METHODS
from companion.data import uci
from companion.profiles import PROFILES

Rule = Callable[[Any], str | None]


class ConfigError(ValueError):
    """A config with one or more bad fields; the message lists each of them on its own line."""


def _shown(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def integer(low: int | None = None, high: int | None = None) -> Rule:
    """An int (not a bool, not a float such as 32.5) in [low, high]."""
    if low is not None and high is not None:
        allowed = f"an integer from {low} to {high}"
    elif low == 1:
        allowed = "a positive integer"
    elif low is not None:
        allowed = f"an integer >= {low}"
    else:
        allowed = "an integer"

    def rule(value: Any) -> str | None:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        ok = ok and (low is None or value >= low) and (high is None or value <= high)
        return None if ok else f"must be {allowed}"
    return rule


def number(low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> Rule:
    """A finite real number (NaN and infinity are refused) within the given bounds."""
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    allowed = "a finite number" + (" " + " and ".join(bounds) if bounds else "")

    def rule(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"must be {allowed}"
        value = float(value)
        ok = math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        return None if ok else f"must be {allowed}"
    return rule


def choice(allowed: Iterable[Any]) -> Rule:
    allowed = tuple(allowed)

    def rule(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(map(repr, allowed))}"
    return rule


def text() -> Rule:
    def rule(value: Any) -> str | None:
        return None if isinstance(value, str) and value else "must be a non-empty string"
    return rule


def boolean() -> Rule:
    def rule(value: Any) -> str | None:
        return None if isinstance(value, bool) else "must be True or False"
    return rule


def optional(inner: Rule) -> Rule:
    """None, or what `inner` allows."""
    def rule(value: Any) -> str | None:
        if value is None:
            return None
        message = inner(value)
        return None if message is None else f"{message}, or None"
    return rule


def sequence_of(inner: Rule) -> Rule:
    """A tuple or list whose every item `inner` allows."""
    def rule(value: Any) -> str | None:
        if not isinstance(value, (tuple, list)):
            return "must be a tuple of values"
        bad = [item for item in value if inner(item) is not None]
        return None if not bad else f"must hold only items that {inner(bad[0])[5:]}"
    return rule


def problems(values: Mapping[str, Any], rules: Mapping[str, Rule]) -> list[str]:
    """One line `field: must be ..., got value (type)` per field of `values` breaking its rule."""
    lines = []
    for field, rule in rules.items():
        if field in values and (message := rule(values[field])) is not None:
            lines.append(f"{field}: {message}, got {_shown(values[field])}")
    return lines


def check(values: Mapping[str, Any], rules: Mapping[str, Rule], what: str = "config") -> None:
    """Raise `ConfigError` listing every bad field of `values` (a dict or a dataclass)."""
    if dataclasses.is_dataclass(values):
        values = {f.name: getattr(values, f.name) for f in dataclasses.fields(values)}
    if lines := problems(values, rules):
        raise ConfigError(f"invalid {what}:\n  " + "\n  ".join(lines))


# ---- the two papers' run configs ------------------------------------------------------------

POSITIVE = integer(1)

UCI_RUN_RULES: dict[str, Rule] = {
    "dataset": text(),
    "activation": choice(ACTIVATIONS),
    "layers": POSITIVE,
    "hidden": POSITIVE,
    "shape": choice(("conic", "rectangular")),
    "dropout": number(0, 1, high_open=True),
    "method": choice(METHODS),
    "profile": choice(PROFILES),
    "seed": integer(0),
    "epochs": POSITIVE,
    "batch_size": POSITIVE,
    "learning_rate": number(0, low_open=True),
    "split": choice(uci.SPLITS),
    "fold": integer(0, 3),
    "original_test_scaling": optional(choice(uci.ORIGINAL_TEST_SCALINGS)),
    # 0 would silently have meant "all rows" before: only None means that
    "max_train_samples": optional(POSITIVE),
    "cutoff": optional(POSITIVE),
    "alpha_mu": optional(number(0, low_open=True)),
    "statistic": optional(choice(("per_sample", "class_gradient"))),
    "init": optional(choice(("lecun", "he", "glorot"))),
    "alpha_retries": optional(integer(0, 10)),
    "divergence_rule": optional(choice(("nonfinite", "blowup"))),
}


def check_uci_run(config: Any) -> None:
    """Validate a `class_lr.experiment.UCIRunConfig` (field rules, then cutoff <= epochs)."""
    check(config, UCI_RUN_RULES, "UCI run config")
    if config.original_test_scaling is not None and config.split != "original":
        raise ConfigError("invalid UCI run config:\n  original_test_scaling: applies to "
                          f"split='original' only, got split={config.split!r}")
    if config.cutoff is not None and config.cutoff > config.epochs:
        raise ConfigError(f"invalid UCI run config:\n  cutoff: must be at most epochs "
                          f"({config.epochs}), got {config.cutoff!r}")


CIFAR_RUN_RULES: dict[str, Rule] = {
    "network": text(),
    "classifier": choice(("learned", "fixed", "hadamard")),
    "scale": optional(number(0, low_open=True)),
    "dataset": text(),
    "profile": choice(PROFILES),
    "seed": integer(0),
    "epochs": POSITIVE,
    "batch_size": POSITIVE,
    "learning_rate": number(0, low_open=True),
    "lr_milestones": sequence_of(integer(0)),
    "lr_decay": number(0, 1, low_open=True),
    "momentum": number(0, 1, high_open=True),
    "weight_decay": number(0),
    "decay_scale_and_bias": boolean(),
    "max_train_samples": optional(POSITIVE),
    "max_test_samples": optional(POSITIVE),
    "log_interval": POSITIVE,
    "init_scale": optional(number(0, low_open=True)),
    "data_source": optional(text()),
    "device": optional(text()),
}


def check_cifar_run(config: Any) -> None:
    """Validate a `fixed_classifier.experiment.CIFARRunConfig`."""
    check(config, CIFAR_RUN_RULES, "CIFAR run config")
