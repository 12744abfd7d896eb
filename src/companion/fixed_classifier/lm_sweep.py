"""Grids of language-model runs of "Fix your classifier" (one per output variant), running
them, reading what is recorded, and the command line (one run is `lm_experiment.run`).

    python -m companion.fixed_classifier.lm_sweep --profile paper
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from typing import Any

from companion import records, scheduling
from companion.fixed_classifier.language_model import VARIANTS
from companion.fixed_classifier.lm_experiment import (
    CORPORA,
    LMRunConfig,
    make_config,
    record_folder,
    run_group,
)


def experiment_name(grid: Sequence[LMRunConfig]) -> str:
    """`fixed-classifier-lm-<corpus>-<profile>`; a sweep covers one corpus and one profile."""
    kinds = {(c.corpus, c.profile) for c in grid}
    if len(kinds) != 1:
        raise ValueError(f"a sweep covers one corpus and profile, got {sorted(kinds)}")
    return record_folder(grid[0])


def run_configs(grid: Sequence[LMRunConfig], n_jobs: int = 1, threads_per_run: int | None = None,
                backend: str = "loky", progress: bool = True) -> list[dict[str, Any]]:
    """Run (or read back) every config of `grid`; see `scheduling.run_sweep`."""
    run_threads = functools.partial(run_group, threads=threads_per_run)
    return scheduling.run_sweep(list(grid), run_threads, experiment_name(grid), n_jobs=n_jobs,
                                backend=backend, progress=progress)


def recorded(grid: Sequence[LMRunConfig]) -> list[dict[str, Any]]:
    """The records of the configs of `grid` that have run, in grid order; trains nothing."""
    return records.recorded(experiment_name(grid), grid)


def variant_configs(profile: str, variants: Sequence[str] = VARIANTS, seed: int = 0,
                    **overrides: Any) -> list[LMRunConfig]:
    """One config per output variant (the notebook's grid)."""
    return [make_config(variant, profile, seed, **overrides) for variant in variants]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the WikiText-2 LSTM language models of "
                                     "'Fix your classifier' and write their records.")
    parser.add_argument("--profile", default="paper", choices=("smoke", "quick", "paper"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--corpus", default=None, choices=CORPORA,
                        help="default: the profile's (synthetic for smoke/quick)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--threads-per-run", type=int, default=None)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("corpus", args.corpus), ("epochs", args.epochs))
                 if v is not None}
    grid = variant_configs(args.profile, args.variants, args.seed, device=args.device,
                           **overrides)
    for record in run_configs(grid, args.n_jobs, args.threads_per_run):
        print(f"{record['config']['variant']:9s} test perplexity {record['test_perplexity']} "
              f"({record['wall_time_s']:.0f} s, {record['device']})")


if __name__ == "__main__":
    main()
