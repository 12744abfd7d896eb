"""CIFAR runs of "Fix your classifier" from the command line: batch jobs, clusters, GPUs.

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
import json
from collections.abc import Sequence

from companion.fixed_classifier import experiment


def grid(profile: str, classifiers: Sequence[str], scales: Sequence[float],
         seeds: Sequence[int], **overrides: object) -> list[experiment.CIFARRunConfig]:
    """The learned-alpha runs of `classifiers`, then the fixed-alpha runs of `scales`."""
    configs = experiment.classifier_configs(profile, seeds, classifiers, **overrides)
    if scales:  # scale_configs ends with the learned-alpha fixed run, already in `configs`
        configs += [c for c in experiment.scale_configs(profile, scales, seeds, **overrides)
                    if c.scale is not None]
    return configs


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
    parser.add_argument("--classifiers", nargs="+", default=list(experiment.CLASSIFIERS),
                        choices=experiment.CLASSIFIERS)
    parser.add_argument("--scales", nargs="*", type=float, default=[],
                        help="fixed values of alpha to run as well (Figure 3: 0.1 1 10)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--n-jobs", type=int, default=1, help="runs in parallel")
    parser.add_argument("--threads-per-run", type=int, default=None,
                        help="torch threads per run (default: the cores split between runs)")
    args = parser.parse_args(argv)
    try:
        overrides = experiment.notebook_overrides(args.network, args.epochs, args.device)
        configs = grid(args.profile, args.classifiers, args.scales, args.seeds,
                       dataset=args.dataset, data_source=args.data_source, **overrides)
        experiment.training_device(configs[0])  # no GPU here: say so before any work
    except ValueError as error:
        parser.error(str(error))
    found = experiment.run_configs(configs, args.n_jobs, args.threads_per_run,
                                   compile=args.compile)
    for config, record in zip(configs, found, strict=True):
        summary = {"classifier": config.classifier, "scale": config.scale, "seed": config.seed,
                   "network": config.network, "epochs": config.epochs,
                   "test_accuracy": record["test_accuracy"], "diverged": record["diverged"]}
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
