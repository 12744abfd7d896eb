"""Sweeps over the paper's UCI grid (data set x activation x method x seed), resumable.

Command line (what `make` and the long background runs use):

    python -m companion.class_lr.sweep --profile paper --cheapest 10 --n-jobs 2

On a Dask cluster (`dask.distributed`; on SLURM, `dask-jobqueue`'s `SLURMCluster` starts one),
whose workers see the same results directory:

    python -m companion.class_lr.sweep --profile paper --scheduler tcp://10.0.0.1:8786

On a GPU (`--device cuda`; the records are the same configs, so they fill the same tables, and
each states the device it ran on): worth it for the large nets, where one CPU core needs hours
per run (chess-krvk, wine-quality-white); several sweeps can share one GPU.

    python -m companion.class_lr.sweep --profile paper --datasets chess-krvk --device cuda
"""

from __future__ import annotations

import argparse
import functools
import hashlib
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from companion import budget, records, scheduling
from companion.class_lr import experiment
from companion.class_lr.registry import ACTIVATIONS, canonical_name, datasets
from companion.comparisons import plural
from companion.data import uci
from companion.devices import resolve_device
from companion.parameters import as_list
from companion.profiles import resolve_profile

# The seeds of every Table 2 cell at the paper profile: its numbers are means over them.
TABLE2_SEEDS = (0, 1, 2, 3, 4)


@cache
def training_cost(dataset: str, profile: str) -> float:
    """Training teraflops of one run of `dataset` at `profile` (SELU; the same for all)."""
    data = uci.load(dataset)
    config = experiment.make_config(dataset, "selu", profile=profile)
    return experiment.training_teraflops(config, len(data.train), data.n_features, data.n_classes)


def available_datasets() -> list[str]:
    """The paper's data sets whose files we have (connect-4 and miniboone lack theirs here)."""
    return [name for name in datasets() if uci.is_available(name)]


def datasets_by_cost(profile: str = "paper") -> list[str]:
    """Available data sets, cheapest first (by training compute at `profile`)."""
    return sorted(available_datasets(), key=lambda name: training_cost(name, profile))


def profile_datasets(profile: str) -> list[str]:
    """The data sets a profile covers: smoke 3 small ones, quick those whose paper-profile run
    is under `experiment.QUICK_MAX_PAPER_TERAFLOPS`, paper all available."""
    profile = resolve_profile(profile)
    if profile == "smoke":
        return list(experiment.SMOKE_DATASETS)
    names = available_datasets()
    if profile == "quick":
        cap = experiment.QUICK_MAX_PAPER_TERAFLOPS
        names = [n for n in names if training_cost(n, "paper") <= cap]
    return names


def dataset_names(requested: str | Iterable[str] | None, profile: str) -> list[str]:
    """The data sets a notebook asked for, as archive names: None is every data set the
    profile covers; one name or a list of names, the loader's or the paper's spelling."""
    names = as_list(requested)
    if names is None:
        return profile_datasets(profile)
    return list(dict.fromkeys(canonical_name(name) for name in names))


def output_suffix(profile: str, requested: str | Iterable[str] | None) -> str:
    """File-name suffix of a notebook's tables and plots: the profile for its full set of
    data sets, `<profile>-<names>` for a subset, so a subset never overwrites the profile's
    (committed) outputs."""
    profile = resolve_profile(profile)
    if requested is None:
        return profile
    names = dataset_names(requested, profile)
    if len(names) <= 3:
        return f"{profile}-" + "-".join(names)
    digest = hashlib.sha256(",".join(sorted(names)).encode()).hexdigest()[:6]
    return f"{profile}-{len(names)}-datasets-{digest}"


def configs(
    dataset_names: Iterable[str],
    activations: Sequence[str] = ACTIVATIONS,
    methods: Sequence[str] = ("baseline",),
    seeds: Sequence[int] = (0,),
    profile: str = "paper",
    cutoffs: Sequence[int] | None = None,
    **overrides: Any,
) -> list[experiment.UCIRunConfig]:
    """The grid of configs, data set major and then seed major: a sweep finishes whole data
    sets first and, within one, whole seeds (all six Table 2 columns of seed 0 before seed 1),
    so a sweep stopped part-way leaves seeds that pair the two methods.

    class_lr expands into one config per cutoff of the profile (`experiment.CUTOFFS`), or of
    `cutoffs`: a sweep of one cutoff runs it alone, a shorter job than the group of all three
    (which shares their first epochs) with the same record.
    """
    profile = resolve_profile(profile)
    chosen = experiment.CUTOFFS[profile] if cutoffs is None else tuple(as_list(cutoffs))
    if not chosen:
        raise ValueError(f"cutoffs: give at least one, e.g. {experiment.CUTOFFS[profile]}")
    grid = []
    for name in as_list(dataset_names):
        for seed in as_list(seeds):
            for activation in as_list(activations):
                for method in as_list(methods):
                    for cutoff in chosen if method == "class_lr" else (None,):
                        grid.append(experiment.make_config(
                            name, activation, method, profile, seed, cutoff, **overrides))
    return grid


def run_configs(
    grid: list[experiment.UCIRunConfig], n_jobs: int = 1, backend: str = "loky",
    scheduler: Any = None, device: str | None = "cpu",
) -> list[dict[str, Any]]:
    """Run (or read back) every config of the grid; see `scheduling.run_sweep`.

    `scheduler`: None runs locally with joblib (`n_jobs` workers); a Dask scheduler address
    (or a `distributed.Client`) sends the runs to that cluster's workers instead. `device`:
    where each run trains (see `experiment.run`), checked here before anything starts.
    """
    name = experiment_name(grid)
    resolve_device(device)  # an unavailable device fails now, with what to do instead
    stale = stale_saved_states(grid)  # fail before any run starts, not in a worker hours later
    if stale:
        raise StaleSavedStates("saved states this sweep cannot resume; nothing was started:\n"
                               + "\n".join(stale))
    run_group = functools.partial(experiment.run_group, device=device)
    return scheduling.run_sweep(grid, run_group, name, n_jobs=n_jobs, backend=backend,
                                group_key=experiment.group_key, scheduler=scheduler)


def recorded(grid: list[experiment.UCIRunConfig], pre_study: bool = True
             ) -> list[dict[str, Any]]:
    """The records that exist for the grid's configs; runs nothing (missing ones are skipped).

    With `pre_study`, a seed-0 config whose settled-protocol run has not been made yet is
    stood in for by the record of the same run under the protocol before the study (see
    `experiment.pre_study`), marked `"protocol": "pre-study"` so that tables can say so. Other
    seeds get no stand-in: a mean over seeds must not mix two protocols.
    """
    name = experiment_name(grid)
    found = []
    for config in grid:
        record = records.recorded(name, [config])
        if (not record and pre_study and config.seed == 0
                and experiment.pre_study(config) != config):
            record = [{**r, "protocol": "pre-study"}
                      for r in records.recorded(name, [experiment.pre_study(config)])]
        found += record
    return found


def missing(grid: list[experiment.UCIRunConfig]) -> pd.DataFrame:
    """What of the grid has no usable record yet, per data set and seed: the configs, their
    training compute (TFLOP: 6 flops per weight per sample per epoch, `training_cost`; a
    class-lr epoch costs 1.5-2 times a plain one on a CPU, retries more), their estimated
    CPU-hours (`budget.class_lr_hours`, one thread each; work done in saved states not
    subtracted) and the saved state a killed group resumes from (`saved_progress`). Runs
    nothing."""
    groups = unrecorded_groups(grid)
    frame = cost_by_dataset_and_seed([c for configs in groups.values() for c in configs])
    states: dict[tuple[str, int], list[str]] = {}
    for key, configs in groups.items():
        for path in state_paths(configs):
            if (saved := saved_progress(path, configs)) is not None:
                job, progress = saved
                states.setdefault((key.dataset, key.seed), []).append(
                    f"{key.activation} {key.method}{job and f' ({job})'}: {progress}")
    frame["saved state"] = ["; ".join(states.get((row.dataset, row.seed), []))
                            for row in frame.itertuples()]
    return frame


def unrecorded_groups(grid: list[experiment.UCIRunConfig]
                      ) -> dict[experiment.UCIRunConfig, list[experiment.UCIRunConfig]]:
    """The configs of `grid` without a usable record, by run group (`experiment.group_key`:
    the class-lr cutoffs that train together), in the grid's order."""
    name = experiment_name(grid)
    groups: dict[experiment.UCIRunConfig, list[experiment.UCIRunConfig]] = {}
    for config in grid:
        if records.usable(records.record_path(name, config), config) is None:
            groups.setdefault(experiment.group_key(config), []).append(config)
    return groups


def cost_by_dataset_and_seed(configs: list[experiment.UCIRunConfig]) -> pd.DataFrame:
    """Per data set and seed of `configs`: how many, how many class-lr, their training TFLOP
    (`training_cost`) and estimated CPU-hours (`budget.class_lr_hours`, one thread each)."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for config in configs:
        row = rows.setdefault((config.dataset, config.seed), {
            "dataset": config.dataset, "seed": config.seed, "configs": 0, "class-lr": 0,
            "TFLOP": 0.0})
        row["configs"] += 1
        row["class-lr"] += config.method == "class_lr"
        row["TFLOP"] += training_cost(config.dataset, config.profile)
    columns = ["dataset", "seed", "configs", "class-lr", "TFLOP"]
    frame = pd.DataFrame(list(rows.values()), columns=columns)
    frame["CPU-hours"] = budget.class_lr_hours(frame["configs"], frame["TFLOP"])
    return frame.sort_values(["dataset", "seed"], ignore_index=True)


def state_paths(configs: list[experiment.UCIRunConfig]) -> list[Path]:
    """Where saved states of a run group can be: the group's own (`experiment.state_path`)
    and, for class lr, that of each one-cutoff job (`--cutoffs N`, a shorter job with the same
    record). The job of the group's first cutoff saves where the whole group does."""
    paths = [experiment.state_path(configs)]
    if configs[0].method == "class_lr":
        paths += [experiment.state_path([config]) for config in configs]
    return list(dict.fromkeys(paths))


def _saved_cutoffs(state: dict[str, Any]) -> list[int | None]:
    """The cutoffs of the job whose saved state (as `torch.load` reads it) is `state`."""
    return [config.get("cutoff") for config in state["settings"]["configs"]]


def _job_of(saved: list[int | None], configs: list[experiment.UCIRunConfig]) -> str:
    """'' when a saved state of the job of cutoffs `saved` (`_saved_cutoffs`) is of the job
    of `configs`; else which job it is, e.g. 'the job of cutoff 20 alone', which only a sweep
    of those cutoffs resumes."""
    if set(saved) == {c.cutoff for c in configs}:
        return ""
    cutoffs = ", ".join(str(c) for c in saved)
    return f"the job of {plural('cutoff', len(saved))} {cutoffs}{' alone' * (len(saved) == 1)}"


def saved_progress(path: Path, group: list[experiment.UCIRunConfig]
                   ) -> tuple[str, str] | None:
    """Which job of the run group `group` saved the state at `path` ('' for the group's own,
    else `_job_of`) and how far that killed job got (`experiment.Resumable`), e.g. ('',
    'cutoff 10 done: 76.95%; epoch 14, cutoff 20 (alpha_mu 1e+05)'); None without a state.
    Reads only the small fields, once."""
    import torch

    from companion import provenance

    if not path.exists():
        return None
    job = ""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        job = _job_of(_saved_cutoffs(state), group)
        progress, settings = state["progress"], state["settings"]
        epoch = len(state["training"]["history"]["train_loss"])
        configs = [experiment.UCIRunConfig(**config) for config in settings["configs"]]
    except Exception as error:  # noqa: BLE001 - any broken file is reported alike
        return job, f"unreadable ({type(error).__name__}): delete {path}"
    if settings["code_fingerprint"] != provenance.code_fingerprint(experiment.EXPERIMENT):
        return job, other_code_advice(path, settings["code_fingerprint"])
    if configs[0].method != "class_lr":
        plain_left = configs[0].epochs - epoch
        return job, f"epoch {epoch}" + _time_left(progress, (0, epoch), (0, plain_left))
    pending, position = progress["pending"], progress["position"]
    cutoff = pending[position]
    # cutoffs whose branch has ended: their records are written when the whole group ends
    done = [f"cutoff {c} done: " + ("diverged" if r.get("test_accuracy") is None
                                    else f"{100 * r['test_accuracy']:.2f}%")
            for c, r in sorted(progress["results"].items())
            if c != cutoff and r.get("non_convergence") is None]
    trained, left = _segment_epochs(pending, position, epoch, configs[0].epochs)
    return job, "; ".join([*done, f"epoch {epoch}, cutoff {cutoff} (alpha_mu "
                                  f"{progress['alpha_mu']:.0e})" + _time_left(progress, trained,
                                                                              left)])


def _segment_epochs(pending: list[int], position: int, epoch: int, epochs: int
                    ) -> tuple[tuple[int, int], tuple[int, int]]:
    """(class-lr, plain) epochs that the saved segment of a class-lr group has trained, and
    those left to the group, at `epoch` of the branch of cutoff `pending[position]`.

    The branch in training started at the previous cutoff (0 for the first): class-based
    rates up to its cutoff, plain SGD after it to the last epoch. Each later cutoff's branch
    starts at its predecessor, trains with class lr to its own cutoff and plainly after it."""
    cutoff = pending[position]
    start = pending[position - 1] if position else 0
    trained = (max(min(epoch, cutoff) - start, 0), max(epoch - cutoff, 0))
    later = list(zip(pending[position:-1], pending[position + 1:], strict=True))
    left = (max(cutoff - epoch, 0) + sum(c - previous for previous, c in later),
            epochs - max(epoch, cutoff) + sum(epochs - c for _, c in later))
    return trained, left


class StaleSavedStates(RuntimeError):
    """A sweep would meet saved states that other run code wrote (`stale_saved_states`)."""


def other_code_advice(path: Path, fingerprint: str) -> str:
    """What to do with a saved state that other run code wrote: this code refuses it (a
    resumed run would mix two codes), and deleting it throws its hours away, so say first
    where the code that can resume it is."""
    from companion import provenance

    commit = provenance.latest_commit_of_fingerprint(fingerprint, experiment.EXPERIMENT)
    where = (f"resume it from a checkout of commit {commit[:10]} (`git worktree add "
             f"../resume {commit[:10]}`, then the same sweep there with "
             f"COMPANION_RESULTS_DIR={path.parent.parent})" if commit else
             "no recent commit has that code")
    return (f"made by other run code ({fingerprint[:8]}): {where}; or delete {path} to "
            "train it from the start")


def stale_saved_states(grid: list[experiment.UCIRunConfig]) -> list[str]:
    """For the groups of `grid` without records, what to do with each saved state there that
    this sweep would refuse: one that other run code wrote (`other_code_advice`), or one of
    another job of the same group (the job of cutoff 10 alone saves where the group of
    cutoffs 10, 20, 30 does); [] when there is none."""
    import torch

    from companion import provenance

    found = []
    for configs in unrecorded_groups(grid).values():
        path = experiment.state_path(configs)
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            fingerprint = state["settings"]["code_fingerprint"]
            saved = _saved_cutoffs(state)
        except Exception:  # noqa: BLE001 - an unreadable file gets its own error at the run
            continue
        if fingerprint != provenance.code_fingerprint(experiment.EXPERIMENT):
            found.append(other_code_advice(path, fingerprint))
        elif job := _job_of(saved, configs):
            cutoffs = " ".join(str(c) for c in saved)
            found.append(f"{path} is the saved state of {job}: resume it with this sweep and "
                         f"`--cutoffs {cutoffs}` (then run the rest), or delete it to train "
                         "these configs from the start")
    return found


# A class-lr epoch costs about this many plain SGD epochs of the same net (the look-ahead
# gradient and the per-class multipliers): 1.4 for chess-krvk in one process (3,000 rows,
# 2026-12-07), 1.5-1.7 in the sweeps' own epochs on the family-23 EPYC (200-223 s against
# 130-135 s, two jobs side by side, 2026-12-07). Only the time-left guide uses it.
CLASS_LR_EPOCH_COST = 1.5


def _time_left(progress: dict[str, Any], trained: tuple[int, int], left: tuple[int, int]
               ) -> str:
    """', about 3.2 h left at 95 s a plain epoch' from the seconds the saved segment took for
    its `trained` (class-lr, plain) epochs, with `left` (class-lr, plain) epochs to go ('' before
    the segment's first epoch). A class-lr epoch counts CLASS_LR_EPOCH_COST plain ones, so a
    job past its cutoff is priced at its plain rate; a rough guide, without alpha_mu retries."""
    elapsed = progress.get("elapsed")
    plain_equivalents = CLASS_LR_EPOCH_COST * trained[0] + trained[1]
    if not elapsed or not plain_equivalents:
        return ""
    per_epoch = elapsed / plain_equivalents
    hours = (CLASS_LR_EPOCH_COST * left[0] + left[1]) * per_epoch / 3600
    return f", about {hours:.1f} h left at {per_epoch:.0f} s a plain epoch"


def experiment_name(grid: list[experiment.UCIRunConfig]) -> str:
    """Records go to `results/class-lr-uci-<profile>/`; only `paper` ones are committed."""
    profiles = {c.profile for c in grid}
    if len(profiles) != 1:
        raise ValueError(f"a sweep runs one profile at a time, got {sorted(profiles)}")
    return experiment.record_folder(grid[0])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=("smoke", "quick", "paper"))
    parser.add_argument("--datasets", nargs="*", help="default: all the profile covers")
    parser.add_argument("--cheapest", type=int, help="only the N cheapest data sets")
    parser.add_argument("--activations", nargs="*", default=list(ACTIVATIONS))
    parser.add_argument("--methods", nargs="*", default=["baseline"])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--cutoffs", nargs="+", type=int,
                        help="class-lr cutoff epochs (default: the profile's, 10 20 30 at paper); "
                             "one per sweep splits a group into shorter jobs that each redo the "
                             "shared class-lr epochs (chess-krvk on one core: 1.5-1.8 h each "
                             "instead of 4.2 h for the three together)")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--backend", default="loky")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="a Dask scheduler, e.g. tcp://10.0.0.1:8786 (default: local joblib)")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default), cuda, cuda:1, mps or auto: where the runs train")
    parser.add_argument("--missing", action="store_true",
                        help="list what of the grid has no record yet, and its compute; "
                             "run nothing")
    args = parser.parse_args(argv)
    try:
        resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    profile = resolve_profile(args.profile)
    names = args.datasets or profile_datasets(profile)
    if args.cheapest:
        names = [n for n in datasets_by_cost(profile) if n in names][: args.cheapest]
    try:
        grid = configs(names, args.activations, args.methods, args.seeds, profile, args.cutoffs)
    except ValueError as error:  # an unknown data set, a bad cutoff: usage, not a trace
        parser.error(str(error))
    if args.missing:
        table = missing(grid)
        if not table["saved state"].any():
            table = table.drop(columns="saved state")
        print(table.round(2).to_string(index=False) if len(table) else "nothing missing")
        print(f"{int(table['configs'].sum())} of {len(grid)} configs missing, "
              f"{table['TFLOP'].sum():.1f} TFLOP of training, about "
              f"{table['CPU-hours'].sum():.0f} CPU-hours on one core each "
              "(budget.class_lr_hours; alpha_mu retries come on top)")
        return
    try:
        done = run_configs(grid, n_jobs=args.n_jobs, backend=args.backend,
                           scheduler=args.scheduler, device=args.device)
    except StaleSavedStates as error:
        parser.exit(2, f"{error}\n")
    print(f"{len(done)} runs recorded in results/{experiment_name(grid)}/")


if __name__ == "__main__":
    main()
