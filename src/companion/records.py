"""Run records: one JSON file per run, named by the hash of the run's frozen config.

A run is a pure function of its config, so a record is found again from the config alone:
`results/<experiment>/<config hash>.json`. Records are written atomically (temporary file,
then rename), so an interrupted sweep leaves finished records and nothing half-written, and a
sweep skips every config already recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from companion.data.sources import REPO_ROOT


def results_dir() -> Path:
    """`$COMPANION_RESULTS_DIR` or `<repo>/results`."""
    return Path(os.environ.get("COMPANION_RESULTS_DIR", REPO_ROOT / "results"))


def config_dict(config: Any) -> dict[str, Any]:
    """The config's fields as a dict, leaving out fields that are None.

    Leaving out None lets a later version add optional fields (default None) without
    changing the hash, and so the file name, of records written before.
    """
    return {k: v for k, v in dataclasses.asdict(config).items() if v is not None}


def config_hash(config: Any) -> str:
    """First 16 hex digits of the sha256 of the config's canonical JSON."""
    text = json.dumps(config_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_path(experiment: str, config: Any) -> Path:
    return results_dir() / experiment / f"{config_hash(config)}.json"


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to `path` through a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream, indent=1, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_records(experiment: str) -> list[dict[str, Any]]:
    """Every record of an experiment (empty when none ran yet)."""
    folder = results_dir() / experiment
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def recorded(experiment: str, configs: Iterable[Any]) -> list[dict[str, Any]]:
    """The records of those `configs` that have run, in order; runs nothing."""
    paths = [record_path(experiment, config) for config in configs]
    return [json.loads(path.read_text()) for path in paths if path.is_file()]


@cache
def git_commit() -> str | None:
    """The repository's HEAD commit (with '-dirty' for uncommitted changes), else
    `$COMPANION_GIT_COMMIT` where the tree has no git repository, else None."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        # A copy of the tree without .git (a cluster or GPU machine): the launcher may say.
        return os.environ.get("COMPANION_GIT_COMMIT") or None
    return commit + ("-dirty" if dirty else "")


def _run_and_store(
    run_group: Callable[[list[Any]], list[dict[str, Any]]],
    group: list[Any],
    paths: list[Path],
    threads: int,
) -> int:
    import torch

    torch.set_num_threads(threads)
    for record, path in zip(run_group(group), paths):
        write_json_atomic(path, record)
    return len(group)


def run_sweep(
    configs: Iterable[Any],
    run_group: Callable[[list[Any]], list[dict[str, Any]]],
    experiment: str,
    n_jobs: int = 1,
    backend: str = "loky",
    progress: bool = True,
    group_key: Callable[[Any], Any] = lambda config: config,
) -> list[dict[str, Any]]:
    """Run every config not yet recorded and return the records of all configs, in order.

    `run_group(configs)` returns one record per config; configs with the same `group_key`
    run as one job (e.g. class-lr cutoffs that share their first epochs). Jobs go in parallel
    through joblib (`n_jobs` workers; `backend` is any joblib backend, e.g. "dask" inside
    `joblib.parallel_config` with a Dask client for a cluster). Each worker writes its records
    when its job ends, so stopping the sweep loses only unfinished jobs.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    configs = list(configs)
    paths = [record_path(experiment, c) for c in configs]
    groups: dict[Any, tuple[list[Any], list[Path]]] = {}
    for config, path in zip(configs, paths):
        if not path.is_file():
            members, member_paths = groups.setdefault(group_key(config), ([], []))
            members.append(config)
            member_paths.append(path)
    todo = list(groups.values())
    if todo:
        workers = max(1, min(n_jobs if n_jobs > 0 else os.cpu_count() or 1, len(todo)))
        threads = max(1, (os.cpu_count() or 1) // workers)
        if workers == 1:
            results = (_run_and_store(run_group, g, p, threads) for g, p in todo)
        else:
            parallel = Parallel(workers, backend=backend, return_as="generator_unordered")
            results = parallel(delayed(_run_and_store)(run_group, g, p, threads) for g, p in todo)
        with tqdm(total=sum(len(g) for g, _ in todo), desc=experiment,
                  disable=not progress) as bar:
            for finished in results:
                bar.update(finished)
    return [json.loads(p.read_text()) for p in paths]
