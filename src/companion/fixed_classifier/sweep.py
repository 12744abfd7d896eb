"""Grids of CIFAR runs of "Fix your classifier": building them, running them, reading what is
recorded, and the command line (one run is `experiment.run`).

    python -m companion.fixed_classifier.sweep --profile paper --network resnet20 --epochs 30 \\
        --classifiers learned fixed --n-jobs 2

    python -m companion.fixed_classifier.sweep --profile paper --device cuda   # ResNet-56, 164 ep

Each run's record lands in `results/fixed-classifier-<dataset>-<profile>/<config hash>.json`,
the same file the notebooks read, so a run done here is shown, not recomputed, by the notebooks
given the same parameters. Runs already recorded are skipped, and a run that was killed goes on
from its last complete epoch (see `experiment.run`). `--scales 0.1 1 10` adds the fixed-alpha
runs of Figure 3 (fixed orthonormal classifier).
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Sequence
from typing import Any

from companion import records, scheduling
from companion.fixed_classifier import experiment
from companion.fixed_classifier.devices import AUTO
from companion.fixed_classifier.experiment import CLASSIFIERS, CIFARRunConfig, make_config
from companion.parameters import as_list

FIGURE3_SCALES = (0.1, 1.0, 10.0)


# ---- grids ------------------------------------------------------------------------------------

def config_overrides(network: str | None = None, epochs: int | None = None,
                     device: str | None = None) -> dict[str, Any]:
    """The notebooks' `network`, `epochs` and `device` parameters as `make_config` overrides
    (None: keep the profile's; device None or "auto": the best device here). Other epochs move
    the lr drops to 50% and 75%."""
    overrides: dict[str, Any] = {"device": device} if device not in (None, AUTO) else {}
    if network is not None:
        experiment.network_depth(network)  # validates the name
        overrides["network"] = network
    if epochs is not None:
        if int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, not {epochs!r}")
        overrides["epochs"] = int(epochs)
    return overrides


def output_suffix(profile: str, overrides: dict[str, Any]) -> str:
    """File-name suffix of a notebook's tables and plots: the profile, after the overridden
    budget (`config_overrides`), so a changed budget never overwrites the profile's outputs.

    `paper` alone is ResNet-56 for 164 epochs; `resnet20-30ep_paper` is the paper profile's
    data and recipe with ResNet-20 for 30 epochs.
    """
    parts = [overrides["network"]] if "network" in overrides else []
    if "epochs" in overrides:
        parts.append(f"{overrides['epochs']}ep")
    return "_".join(["-".join(parts), profile]) if parts else profile


def classifier_configs(profile: str, seeds: Sequence[int] = (0,),
                       classifiers: Sequence[str] = CLASSIFIERS,
                       **overrides: Any) -> list[CIFARRunConfig]:
    """Learned vs fixed vs Hadamard classifier, alpha learned (Figures 1 and 2, Table 1)."""
    return [make_config(kind, None, profile, seed, **overrides)
            for kind in as_list(classifiers) for seed in as_list(seeds)]


def scale_configs(profile: str, scales: Sequence[float] = FIGURE3_SCALES,
                  seeds: Sequence[int] = (0,), **overrides: Any) -> list[CIFARRunConfig]:
    """Fixed classifier with alpha fixed at each of `scales`, then learned (Figure 3)."""
    return [make_config("fixed", scale, profile, seed, **overrides)
            for scale in (*as_list(scales), None) for seed in as_list(seeds)]


def grid(profile: str, classifiers: Sequence[str], scales: Sequence[float],
         seeds: Sequence[int], **overrides: Any) -> list[CIFARRunConfig]:
    """The learned-alpha runs of `classifiers`, then the fixed-alpha runs of `scales`."""
    configs = classifier_configs(profile, seeds, classifiers, **overrides)
    if scales:  # scale_configs ends with the learned-alpha fixed run, already in `configs`
        configs += [c for c in scale_configs(profile, scales, seeds, **overrides)
                    if c.scale is not None]
    return configs


def experiment_name(grid: Sequence[CIFARRunConfig]) -> str:
    """`fixed-classifier-<dataset>-<profile>`; a sweep covers one data set and one profile."""
    kinds = {(c.dataset, c.profile) for c in grid}
    if len(kinds) != 1:
        raise ValueError(f"a sweep covers one data set and profile, got {sorted(kinds)}")
    return experiment.record_folder(grid[0])


# ---- running and reading ----------------------------------------------------------------------

def run_configs(grid: Sequence[CIFARRunConfig], n_jobs: int = 1,
                threads_per_run: int | None = None, backend: str = "loky",
                progress: bool = True, compile: bool = False) -> list[dict[str, Any]]:
    """Run (or read back) every config; see `scheduling.run_sweep`.

    `threads_per_run=None` lets the sweep split the cores between its workers. On a machine
    shared with other jobs, 1 is much faster: a 2-thread ResNet-8 step was 5-8 times slower
    than a 1-thread one on the project's busy 2-core machine (OpenMP threads wait for each other
    whenever another process holds a core).
    """
    run_threads = functools.partial(experiment.run_group, threads=threads_per_run,
                                    compile=compile)
    return scheduling.run_sweep(list(grid), run_threads, experiment_name(grid), n_jobs=n_jobs,
                                backend=backend, progress=progress,
                                group_key=experiment.group_key)


def recorded(grid: Sequence[CIFARRunConfig]) -> list[dict[str, Any]]:
    """The records of the configs of `grid` that have run, in grid order; trains nothing."""
    return records.recorded(experiment_name(grid), grid)


def _without_device(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key != "device"}


def read_or_run(grid: Sequence[CIFARRunConfig], run_missing: bool = True, n_jobs: int = 1,
                threads_per_run: int | None = None) -> list[dict[str, Any]]:
    """Records of `grid` in order, accepting a run of the same config on any device.

    A config whose record exists only with another `device` (e.g. the run of a GPU machine,
    `device="cuda"`, in a folder read on a CPU) is read, not trained again; the others are
    trained when `run_missing`, else left out.
    """
    by_config = {}
    for record in records.load_records(experiment_name(grid)):
        by_config.setdefault(json.dumps(_without_device(record["config"]), sort_keys=True),
                             record)
    keys = [json.dumps(_without_device(records.config_dict(c)), sort_keys=True) for c in grid]
    missing = [c for c, key in zip(grid, keys) if key not in by_config]
    if missing and run_missing:
        for config, record in zip(missing, run_configs(missing, n_jobs, threads_per_run)):
            by_config.setdefault(keys[grid.index(config)], record)
    return [by_config[key] for key in keys if key in by_config]


# ---- command line -----------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick", help="smoke, quick or paper")
    parser.add_argument("--network", help="override the profile's network, e.g. resnet20")
    parser.add_argument("--epochs", type=int, help="override the profile's epochs")
    parser.add_argument("--device", help="torch device, e.g. cuda (default: auto, CUDA, MPS "
                        "or the CPU)")
    parser.add_argument("--compile", action="store_true", help="train through torch.compile")
    parser.add_argument("--dataset", default="cifar10", help="cifar10 or cifar100")
    parser.add_argument("--data-source", help="a local archive or split/class/image folder")
    parser.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS),
                        choices=CLASSIFIERS)
    parser.add_argument("--scales", nargs="*", type=float, default=[],
                        help="fixed values of alpha to run as well (Figure 3: 0.1 1 10)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--n-jobs", type=int, default=1, help="runs in parallel")
    parser.add_argument("--threads-per-run", type=int, default=None,
                        help="torch threads per run (default: the cores split between runs)")
    args = parser.parse_args(argv)
    try:
        overrides = config_overrides(args.network, args.epochs, args.device)
        configs = grid(args.profile, args.classifiers, args.scales, args.seeds,
                       dataset=args.dataset, data_source=args.data_source, **overrides)
        experiment.training_device(configs[0])  # no GPU here: say so before any work
    except ValueError as error:
        parser.error(str(error))
    done = run_configs(configs, args.n_jobs, args.threads_per_run, compile=args.compile)
    for config, record in zip(configs, done, strict=True):
        summary = {"classifier": config.classifier, "scale": config.scale, "seed": config.seed,
                   "network": config.network, "epochs": config.epochs,
                   "test_accuracy": record["test_accuracy"], "diverged": record["diverged"]}
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
