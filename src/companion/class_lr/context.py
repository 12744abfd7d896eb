"""Context columns of Table 2: what a practitioner would use instead of a deep MLP.

Gradient-boosted trees (scikit-learn `HistGradientBoostingClassifier`) and random forests
(`RandomForestClassifier`) on exactly the splits of the MLP runs: `uci.load(name, seed=s)`, so
seed s gives the same training rows, validation rows and test set as the MLPs of seed s.

Protocol: every point of a small grid (`GRIDS`) is fitted on the training split only, the point
with the best validation accuracy is kept (ties to the earlier point of the grid), and its test
accuracy is the result. The chosen model is NOT refitted on train + validation, because the MLPs
never train on the validation rows either; the two kinds of column see the same data. Early
stopping of the boosted trees is off (it would carve its own validation split out of train).

One record per (data set, model, seed), like the MLP runs. The smoke profile shrinks the
ensembles to 20 trees or boosting rounds (100 otherwise); quick and paper use the same settings
(the models are cheap), so both read the records of `results/context-uci-paper/`.

Command line:

    nice python -m companion.class_lr.context --seeds 0 1 2 3 4 --n-jobs 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from companion import provenance, records, scheduling
from companion.class_lr.registry import datasets
from companion.data import uci
from companion.profiles import resolve_profile

EXPERIMENT = "context-uci"
MODELS = ("hist_gradient_boosting", "random_forest")
MODEL_LABELS = {"hist_gradient_boosting": "GBT", "random_forest": "RF"}
# Small grids, chosen on the validation split, and fixed settings. Ensemble sizes per profile
# below. Boosting needs some L2 on its leaf values: without it, a class with one training row
# (nursery) makes the multinomial Newton steps blow up (77.8% test accuracy instead of 99.8%).
GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "hist_gradient_boosting": {"learning_rate": (0.1,), "max_leaf_nodes": (15, 63)},
    "random_forest": {"max_features": ("sqrt",), "min_samples_leaf": (1, 5)},
}
FIXED: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {"early_stopping": False, "l2_regularization": 1.0},
    "random_forest": {"n_jobs": 1},
}
# Kept small so that 43 data sets x 5 seeds fit in well under an hour of one core.
ENSEMBLE_SIZE = {"smoke": 20, "paper": 100}


@dataclass(frozen=True)
class ContextRunConfig:
    """One context run: a model with its grid on one data set and seed (the MLPs' split)."""

    dataset: str
    model: str
    seed: int = 0
    profile: str = "paper"  # "smoke" or "paper"; quick uses "paper" (see module docstring)
    split: str = "paper"
    fold: int = 0
    # The estimator's settings, so that the config (and its hash) says what ran:
    ensemble_size: int = 100  # trees of the forest, boosting rounds
    fixed: str = "{}"  # JSON of the settings every grid point shares
    grid: str = "{}"  # JSON {parameter: [values]} searched on the validation split


def settings_profile(profile: str) -> str:
    """The profile whose settings (and records) a notebook profile uses: quick reads paper."""
    return "smoke" if resolve_profile(profile) == "smoke" else "paper"


def make_config(dataset: str, model: str, seed: int = 0, profile: str = "paper"
                ) -> ContextRunConfig:
    """A validated config; `profile` quick maps to paper."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, not {model!r}")
    if dataset not in datasets():
        raise ValueError(f"{dataset!r} is not one of the paper's data sets")
    profile = settings_profile(profile)
    return ContextRunConfig(
        dataset, model, int(seed), profile, ensemble_size=ENSEMBLE_SIZE[profile],
        fixed=json.dumps(FIXED[model], sort_keys=True),
        grid=json.dumps(GRIDS[model], sort_keys=True))


def grid_points(config: ContextRunConfig) -> list[dict[str, Any]]:
    """The config's grid as a list of parameter dicts, in a fixed order."""
    grid = json.loads(config.grid)
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def build_estimator(config: ContextRunConfig, params: dict[str, Any]) -> Any:
    """An unfitted estimator for one grid point; single-threaded trees (the sweep parallelises)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    settings = {**json.loads(config.fixed), **params, "random_state": config.seed}
    if config.model == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(max_iter=config.ensemble_size, **settings)
    return RandomForestClassifier(n_estimators=config.ensemble_size, **settings)


def run(config: ContextRunConfig) -> dict[str, Any]:
    """Fit the grid on train, keep the best on validation, record its test results."""
    import sklearn
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    data = uci.load(config.dataset, seed=config.seed, split=config.split, fold=config.fold)
    best: tuple[float, dict[str, Any], Any] | None = None
    grid_results = []
    with threadpool_limits(limits=1):  # boosting uses OpenMP; one thread per run
        for params in grid_points(config):
            estimator = build_estimator(config, params).fit(data.train.x, data.train.y)
            val_accuracy = float(np.mean(estimator.predict(data.val.x) == data.val.y))
            grid_results.append({"params": params, "val_accuracy": val_accuracy})
            if best is None or val_accuracy > best[0]:
                best = (val_accuracy, params, estimator)
        assert best is not None
        correct = best[2].predict(data.test.x) == data.test.y
    return {
        "experiment": EXPERIMENT,
        "config": records.config_dict(config),
        "params": best[1],
        "grid": grid_results,
        "val_accuracy": best[0],
        "test_accuracy": float(correct.mean()),
        "test_correct": "".join("1" if c else "0" for c in correct),
        "n_train": len(data.train),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "n_classes": data.n_classes,
        "diverged": False,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "sklearn_version": sklearn.__version__,
        **provenance.record_provenance(EXPERIMENT),
    }


def run_group(configs: Sequence[ContextRunConfig]) -> list[dict[str, Any]]:
    return [run(config) for config in configs]


def experiment_name(profile: str) -> str:
    return f"{EXPERIMENT}-{settings_profile(profile)}"


def configs(dataset_names: Sequence[str], models: Sequence[str] = MODELS,
            seeds: Sequence[int] = (0,), profile: str = "paper") -> list[ContextRunConfig]:
    """The grid, data set major."""
    return [make_config(name, model, seed, profile)
            for name in dataset_names for seed in seeds for model in models]


def run_configs(grid: list[ContextRunConfig], n_jobs: int = 1, progress: bool = True
                ) -> list[dict[str, Any]]:
    """Run (or read back) every config; records in `results/context-uci-<profile>/`."""
    profiles = {c.profile for c in grid}
    if len(profiles) > 1:
        raise ValueError(f"one profile at a time, got {sorted(profiles)}")
    name = experiment_name(profiles.pop() if profiles else "paper")
    return scheduling.run_sweep(grid, run_group, name, n_jobs=n_jobs, progress=progress)


def recorded(grid: list[ContextRunConfig]) -> list[dict[str, Any]]:
    """The records that exist for the grid's configs; runs nothing."""
    if not grid:
        return []
    return records.recorded(experiment_name(grid[0].profile), grid)


def main(argv: Sequence[str] | None = None) -> None:
    from companion.class_lr import sweep

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", choices=("smoke", "quick", "paper"))
    parser.add_argument("--datasets", nargs="*", help="default: all available, cheapest first")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args(argv)
    names = args.datasets or sweep.datasets_by_cost("paper")
    grid = configs(names, args.models, args.seeds, args.profile)
    started = time.perf_counter()
    done = run_configs(grid, n_jobs=args.n_jobs)
    print(f"{len(done)} runs recorded in results/{experiment_name(args.profile)}/ "
          f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
