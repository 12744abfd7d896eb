"""The protocol study: the runs that settle the questions the paper leaves open.

Each study is a grid of paper-profile configs, chosen before any of it ran (issue 9):

- `eq6`: both minibatch readings of Eq. 6 (`statistic` "per_sample" and "class_gradient") at
  every alpha_mu of the paper's ladder (start, /10, /100, /1000), no retries, on a fixed subset
  of 13 data sets (2 to 100 classes, 89 to 8,083 training rows, 2 to 32 layers) and all three
  activations. A retry protocol under any rule of `convergence` is then read off these runs:
  a run at alpha_mu / 10 from scratch is exactly the retry of a run at alpha_mu.
- `errata`: yeast with Klambauer et al.'s 3 layers (Table 1 prints 32), wine-quality-red with
  dropout 0 (Table 1 prints 0.05), against the printed rows.
- `init`: He-normal ReLU and Glorot-normal tanh baselines beside the paper's LeCun-normal.
- `split`: image-segmentation on its original split (2,100 test rows instead of 105), its test
  file as shipped and standardised.
- `seeds`: baseline seeds 1-4 of every available data set (the seed drives the validation
  split, the initialisation, dropout and the batch order), cheapest first.
- `batch`: baselines at batch sizes 16, 64 and 128 (ours: 32; the paper names none) of the
  baseline cells still unexplained after the seeds, and of three control data sets.
- `reading`: the class-lr cells whose change differed from the paper's beyond seed noise once
  the seeds were in, rerun with the other minibatch reading of Eq. 6 (`per_sample`; the
  settled one is `class_gradient`), seeds 0-2.

Command line (what the background and GPU-machine runs use):

    python -m companion.class_lr.protocol --studies eq6 errata --n-jobs 2
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from companion import records
from companion.class_lr import experiment, registry, sweep
from companion.class_lr.convergence import non_convergence
from companion.class_lr.registry import ACTIVATIONS

EQ6_DATASETS = (
    "statlog-german-credit", "titanic", "hill-valley", "oocytes_merluccius_nucleus_4d",
    "magic", "abalone", "car", "page-blocks", "image-segmentation", "led-display",
    "cardiotocography-10clases", "plant-margin", "plant-shape",
)
READINGS = ("per_sample", "class_gradient")
LADDER_STEPS = 4  # alpha_mu, /10, /100, /1000
OUTLIER_DATASETS = (
    "yeast", "plant-shape", "hill-valley", "titanic", "image-segmentation",
    "oocytes_merluccius_nucleus_4d", "cardiotocography-10clases", "semeion", "steel-plates",
)
# The rows of Table 1 that differ from Klambauer et al.'s selected configurations.
ERRATA = {"yeast": {"layers": 3}, "wine-quality-red": {"dropout": 0.0}}  # Klambauer et al.
USUAL_INIT = {"relu": "he", "tanh": "glorot"}
STUDIES = ("eq6", "errata", "init", "split", "seeds", "batch", "reading")
# The batch-size study (the paper names no batch size; ours is 32), fixed before it ran: the
# baseline cells still unexplained once the seeds were in (2026-12-05: image-segmentation's
# three, steel-plates' SELU and ReLU, plant-shape's tanh) and, as controls, every activation of
# the three cheapest data sets whose three baselines were all within 1 point of the paper.
BATCH_SIZES = (16, 64, 128)
BATCH_CELLS = (("image-segmentation", "selu"), ("image-segmentation", "relu"),
               ("image-segmentation", "tanh"), ("steel-plates", "selu"),
               ("steel-plates", "relu"), ("plant-shape", "tanh"))
BATCH_CONTROLS = ("led-display", "titanic", "ringnorm")
BATCH_SEEDS = (0, 1, 2)
# The reading study, fixed on 2026-12-05 from the outlier table of that day: the class-lr cells
# left unexplained because their change differs from the paper's beyond seed noise (ringnorm
# tanh: ours +2.9, the paper -0.6; semeion ReLU: +0.4 and -5.6; steel-plates ReLU: -0.3 and
# +2.4), rerun with the other reading of Eq. 6. ringnorm ran first (minutes); the rule of
# `minibatch_reading` was written after its rows and before the two others ran.
READING_CELLS = (("ringnorm", "tanh"), ("semeion", "relu"), ("steel-plates", "relu"))
READING_SEEDS = (0, 1, 2)
OTHER_READING = "per_sample"
# The studies ran before their outcome became the default: they pin the settings of that time
# (LeCun init, no divergence rule; class-lr studies name their reading) so that their configs,
# and so their record names, stay what ran.
AS_RUN = {"init": None, "divergence_rule": None}


def alpha_ladder(activation: str) -> list[float]:
    """The paper's starting alpha_mu for `activation` and its reductions by 10."""
    start = experiment.ALPHA_MU[activation]
    return [start / 10**step for step in range(LADDER_STEPS)]


def eq6_grid(
    datasets: Sequence[str] = EQ6_DATASETS, readings: Sequence[str] = READINGS, **overrides
) -> list[experiment.UCIRunConfig]:
    """Every (data set, activation, reading, alpha_mu, cutoff), retries off."""
    grid = []
    for name in datasets:
        for activation in ACTIVATIONS:
            for reading in readings:
                for alpha_mu in alpha_ladder(activation):
                    grid += sweep.configs([name], [activation], ["class_lr"], profile="paper",
                                          alpha_mu=alpha_mu, statistic=reading,
                                          alpha_retries=0, **{**AS_RUN, **overrides})
    return grid


def errata_grid() -> list[experiment.UCIRunConfig]:
    """Baselines of both readings of each erratum row, plus the class-lr ladder of yeast's
    3-layer net (the printed 32-layer one is in the committed records)."""
    grid = []
    for name, change in ERRATA.items():
        printed = registry.architecture(name, printed=True)
        as_printed = {"layers": printed.layers, "dropout": printed.dropout}
        for variant in (as_printed, {**as_printed, **change}):
            grid += sweep.configs([name], methods=["baseline"], profile="paper",
                                  **AS_RUN, **variant)
    grid += eq6_grid(["yeast"], **ERRATA["yeast"])
    return grid


def init_grid(datasets: Sequence[str] | None = None) -> list[experiment.UCIRunConfig]:
    """The usual initialisation of each non-SELU activation, baselines."""
    names = datasets or sorted(set(EQ6_DATASETS) | set(OUTLIER_DATASETS))
    return [config for activation, init in USUAL_INIT.items() for name in names
            for config in sweep.configs([name], [activation], profile="paper",
                                        **{**AS_RUN, "init": init, **_printed([name])})]


def split_grid(seeds: Sequence[int] = (0, 1, 2)) -> list[experiment.UCIRunConfig]:
    """image-segmentation on its original 2,100-row test file, baselines and class-lr, with the
    test file as shipped (raw, see data.uci) and standardised by its own columns."""
    grid = []
    for scaling in (None, "standardised"):
        settings = {"profile": "paper", "split": "original", "original_test_scaling": scaling,
                    **AS_RUN}
        baselines = sweep.configs(["image-segmentation"], seeds=seeds, **settings)
        class_lr_configs = sweep.configs(["image-segmentation"], methods=["class_lr"],
                                         seeds=seeds, statistic="per_sample", **settings)
        grid += [c for seed in seeds for c in baselines + class_lr_configs if c.seed == seed]
    return grid


def seeds_grid(seeds: Sequence[int] = (1, 2, 3, 4), cheapest: int | None = None
               ) -> list[experiment.UCIRunConfig]:
    """Baseline seeds of every available data set, cheapest data set first."""
    names = sweep.datasets_by_cost("paper")[:cheapest]
    return [config for seed in seeds for name in names
            for config in sweep.configs([name], seeds=[seed], profile="paper", **AS_RUN,
                                        **_printed([name]))]


def batch_cells() -> list[tuple[str, str]]:
    """(data set, activation) of the batch-size study: the outliers, then the controls."""
    return [*BATCH_CELLS, *((name, a) for name in BATCH_CONTROLS for a in ACTIVATIONS)]


def batch_grid(batch_sizes: Sequence[int] = BATCH_SIZES) -> list[experiment.UCIRunConfig]:
    """Settled-protocol baselines of the batch-size study's cells at each other batch size,
    cheapest data set first."""
    cost = sweep.datasets_by_cost("paper")
    cells = sorted(batch_cells(), key=lambda cell: cost.index(cell[0]))
    return [config for name, activation in cells for batch_size in batch_sizes
            for config in sweep.configs([name], [activation], seeds=BATCH_SEEDS,
                                        profile="paper", batch_size=batch_size)]


def reading_grid() -> list[experiment.UCIRunConfig]:
    """Settled-protocol class-lr runs of the reading study's cells with the other reading of
    Eq. 6, cheapest data set first (the settled reading's runs are Table 2's)."""
    cost = sweep.datasets_by_cost("paper")
    cells = sorted(READING_CELLS, key=lambda cell: cost.index(cell[0]))
    return [config for name, activation in cells
            for config in sweep.configs([name], [activation], ["class_lr"], seeds=READING_SEEDS,
                                        profile="paper", statistic=OTHER_READING)]


def _printed(names: Sequence[str]) -> dict[str, int]:
    """yeast's printed 32 layers, which these studies used (ERRATA made 3 the default later)."""
    return {"layers": 32} if list(names) == ["yeast"] else {}


def study_grid(studies: Sequence[str]) -> list[experiment.UCIRunConfig]:
    """The configs of the named studies, in the order given (a sweep runs them in order);
    within `eq6`, the rungs of the alpha_mu ladder run top first, so that a sweep cut short
    leaves whole rungs."""
    builders = {"eq6": eq6_grid, "errata": errata_grid, "init": init_grid,
                "split": split_grid, "seeds": seeds_grid, "batch": batch_grid,
                "reading": reading_grid}
    unknown = [s for s in studies if s not in builders]
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {STUDIES}")
    grid: dict[experiment.UCIRunConfig, None] = {}
    for study in studies:
        configs = builders[study]()
        if study == "eq6":
            configs.sort(key=lambda c: experiment.ALPHA_MU[c.activation] / c.alpha_mu)
        grid.update(dict.fromkeys(configs))
    return list(grid)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", nargs="*", default=list(STUDIES), choices=STUDIES)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="print the grid size and stop")
    args = parser.parse_args(argv)
    grid = study_grid(args.studies)
    if args.list:
        print(f"{len(grid)} runs in {', '.join(args.studies)}")
        return
    done = sweep.run_configs(grid, n_jobs=args.n_jobs)
    print(f"{len(done)} runs recorded in results/{sweep.experiment_name(grid)}/")


if __name__ == "__main__":
    main()


def ladder(config: experiment.UCIRunConfig) -> list[experiment.UCIRunConfig]:
    """The `eq6` runs (one per alpha_mu, no retries) that a retrying class-lr config reads."""
    rungs = [config.alpha_mu / 10**step for step in range(LADDER_STEPS)]
    return [replace(config, alpha_mu=rung, alpha_retries=0, divergence_rule=None)
            for rung in rungs]


def assemble(config: experiment.UCIRunConfig) -> dict[str, Any] | None:
    """The record `run_cutoffs` would write for `config`, read off its ladder's records.

    A run at alpha_mu / 10 from scratch is exactly the retry of a run at alpha_mu, so the
    record of the first rung that converges under the config's rule is the retry protocol's
    record; it keeps the rejected rungs in `attempts` and names its sources in
    `assembled_from`. None when a rung it needs has no record.
    """
    rule = config.divergence_rule or "nonfinite"
    retries = experiment.MAX_ALPHA_RETRIES if config.alpha_retries is None else (
        config.alpha_retries)
    attempts: list[dict[str, Any]] = []
    for rung in ladder(config)[: retries + 1]:
        found = records.recorded(experiment.record_folder(config), [rung])
        if not found:
            return None
        record = {k: v for k, v in found[0].items() if k != records.DIGEST_FIELD}
        reason = non_convergence(record, rule)
        if reason is None or len(attempts) == retries:
            break
        attempts.append({"alpha_mu": rung.alpha_mu, "reason": reason})
    record.update(config=records.config_dict(config), attempts=attempts,
                  non_convergence=reason,
                  assembled_from=[records.config_hash(r) for r in ladder(config)[
                      : len(attempts) + 1]])
    return record


def assemble_settled(datasets: Sequence[str] = (*EQ6_DATASETS, "yeast"),
                     activations: Sequence[str] = ("selu", "tanh")) -> int:
    """Write the settled protocol's class-lr records that the ladders already hold (SELU and
    tanh: the ladders ran with their settled LeCun init); returns how many were written."""
    written = 0
    for config in sweep.configs(datasets, activations, ["class_lr"], profile="paper"):
        path = records.record_path(sweep.experiment_name([config]), config)
        record = None if path.is_file() else assemble(config)
        if record is not None:
            if record.get("schema_version", 1) >= 2:  # the copy's content changed: new digest
                record[records.DIGEST_FIELD] = records.record_digest(record)
            records.write_json_atomic(path, record)
            written += 1
    return written
