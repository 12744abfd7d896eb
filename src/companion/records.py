"""Run records: one JSON file per run, named by the hash of the run's frozen config.

A run is a pure function of its config, so a record is found again from the config alone:
`results/<experiment>/<config hash>.json`. What makes a record trustworthy:

- it is used only if its stored config equals the requested one (after the normalisation
  that makes the hash) and, for records of schema 2 on, its `record_sha256` matches its
  content; anything else (a copy under another config's name, an edited or truncated file,
  NaN in the JSON) is named by path, moved to `<experiment>/quarantine/` (never deleted) and
  run again by a sweep, or left out by the readers;
- it carries its provenance (`provenance()`): schema version, code commit, a fingerprint of
  the code that computes runs (`code_fingerprint`), torch and Python versions, threads, device;
- it is written atomically through a temporary `.<hash>.*.partial` file (never `*.json`), and
  NaN or infinity never reach it (`allow_nan=False`);
- a sweep takes a per-run lock (`filelock`), so concurrent sweeps and cluster workers share
  the work instead of duplicating it, and its joblib workers exit when the sweep is killed.

Records without `schema_version` are schema 1 (written before these checks) and are read
unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from functools import cache
from pathlib import Path
from typing import Any

from companion.data.sources import REPO_ROOT

SCHEMA_VERSION = 2
DIGEST_FIELD = "record_sha256"
QUARANTINE = "quarantine"
LOCKS = ".locks"
# Modules that only present, check or schedule runs: editing them changes no run's numbers,
# so they are left out of `code_fingerprint`.
NOT_RUN_CODE = frozenset({"tables.py", "figures.py", "outputs.py", "sweep.py", "verify.py",
                          "records.py", "validation.py", "capture.py", "__main__.py"})
SUBPACKAGES = {"class-lr": "class_lr", "fixed-classifier": "fixed_classifier"}


class RecordError(ValueError):
    """A record file that cannot be used; the message names the file and says why."""


class RecordWarning(UserWarning):
    """A record was left out or moved aside (the message names it)."""


def results_dir() -> Path:
    """`$COMPANION_RESULTS_DIR` or `<repo>/results`."""
    return Path(os.environ.get("COMPANION_RESULTS_DIR", REPO_ROOT / "results"))


def config_dict(config: Any) -> dict[str, Any]:
    """The config's fields as a dict (a dataclass or a record's config), leaving out None.

    Leaving out None lets a later version add optional fields (default None) without
    changing the hash, and so the file name, of records written before.
    """
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    return {k: v for k, v in values.items() if v is not None}


def normalised_config(config: Any) -> dict[str, Any]:
    """The config as it reads back from a record (tuples become lists): what records store."""
    return json.loads(json.dumps(config_dict(config)))


def config_hash(config: Any) -> str:
    """First 16 hex digits of the sha256 of the config's canonical JSON."""
    text = json.dumps(config_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_path(experiment: str, config: Any) -> Path:
    return results_dir() / experiment / f"{config_hash(config)}.json"


# ---- provenance ---------------------------------------------------------------------------

@cache
def git_commit() -> str | None:
    """The repository's HEAD commit (with '-dirty' for uncommitted changes), else
    `$COMPANION_GIT_COMMIT` where the tree has no git repository, else None."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        # A copy of the tree without .git (a cluster or GPU machine): the launcher may say.
        return os.environ.get("COMPANION_GIT_COMMIT") or None
    return commit + ("-dirty" if dirty else "")


def _git(*arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def run_code_files(experiment: str) -> list[Path]:
    """The source files whose code computes the runs of `experiment` (shared + its paper's)."""
    package = Path(__file__).resolve().parent
    folders = [package, package / "data"]
    sub = next((s for prefix, s in SUBPACKAGES.items() if experiment.startswith(prefix)), None)
    folders += [package / sub] if sub else [p for p in package.iterdir() if p.is_dir()
                                            and p.name in SUBPACKAGES.values()]
    return sorted(p for folder in folders for p in folder.iterdir()
                  if p.suffix in (".py", ".cpp", ".csv", ".txt") and p.name not in NOT_RUN_CODE)


@cache
def code_fingerprint(experiment: str) -> str:
    """sha256 prefix of the files of `run_code_files`: equal fingerprints, same run code."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in run_code_files(experiment):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def provenance(experiment: str, device: str = "cpu") -> dict[str, Any]:
    """Where and with what a record was made: stored in every record by `store_record`."""
    import torch

    return {"schema_version": SCHEMA_VERSION, "git_commit": git_commit(),
            "code_fingerprint": code_fingerprint(experiment),
            "torch_version": torch.__version__, "python_version": platform.python_version(),
            "torch_threads": torch.get_num_threads(), "device": device,
            "platform": platform.platform()}


@cache
def _same_run_code_since(commit: str, experiment: str) -> bool:
    package = Path(__file__).resolve().parent
    paths = [str(p.relative_to(REPO_ROOT)) for p in run_code_files(experiment)]
    try:
        listed = _git("ls-tree", "-r", "--name-only", commit, "--",
                      str(package.relative_to(REPO_ROOT)))
        subprocess.run(["git", "diff", "--quiet", commit, "--", *paths], cwd=REPO_ROOT,
                       check=True, capture_output=True)
    except (OSError, ValueError, subprocess.CalledProcessError):
        return False  # other code, or a commit this clone does not have
    return set(paths) <= set(listed.splitlines())


def code_status(record: Mapping[str, Any], experiment: str) -> str:
    """"this code" when the record was computed by the checkout's run code, else "other code".

    The rule: a record with a `code_fingerprint` is this code's when the fingerprint equals
    the checkout's. An older record without one is this code's when its `git_commit` is a
    clean commit of this clone whose run-code files (`run_code_files`) equal the checkout's;
    otherwise (dirty, unknown or changed since) it is "other code". Either way it is shown.
    """
    if "code_fingerprint" in record:
        same = record["code_fingerprint"] == code_fingerprint(experiment)
    else:
        commit = record.get("git_commit") or ""
        same = bool(commit) and not commit.endswith("-dirty") and _same_run_code_since(
            commit, experiment)
    return "this code" if same else "other code"


# ---- writing --------------------------------------------------------------------------------

def _non_finite(value: Any, where: str = "") -> str | None:
    """The path of the first NaN or infinity inside `value`, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "(the value)"
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if (found := _non_finite(item, f"{where}.{key}" if where else str(key))) is not None:
            return found
    return None


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to `path` through a temporary file in the same directory and a rename.

    The temporary file is `.<name>.<random>.partial`, which no `*.json` pattern matches.
    NaN and infinity are refused with a ValueError naming the file and the field.
    """
    if (where := _non_finite(payload)) is not None:
        raise ValueError(f"{path}: not written, {where} is NaN or infinite (JSON allows "
                         "neither); store None for a value that does not exist")
    text = json.dumps(payload, indent=1, sort_keys=True, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                         suffix=".partial")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def record_digest(record: Mapping[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its own digest field."""
    content = {k: v for k, v in record.items() if k != DIGEST_FIELD}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def store_record(path: Path, record: dict[str, Any], experiment: str) -> dict[str, Any]:
    """Add provenance (fields the run set itself are kept) and the digest; write; return it."""
    stamped = {**provenance(experiment, str(record.get("device", "cpu"))), **record}
    stamped["schema_version"] = SCHEMA_VERSION
    stamped["code_fingerprint"] = code_fingerprint(experiment)
    stamped = json.loads(json.dumps(stamped))  # as it reads back (tuples become lists)
    stamped[DIGEST_FIELD] = record_digest(stamped)
    write_json_atomic(path, stamped)
    return stamped


# ---- reading --------------------------------------------------------------------------------

def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_record(path: Path, config: Any = None) -> dict[str, Any]:
    """The record at `path`, checked; `RecordError` naming the file when it cannot be used.

    Checked: valid JSON (no NaN), an object with a `config`, a schema this code knows, the
    digest (schema 2 on), and that its config is `config` (or, without `config`, that its
    config hashes to the file's name).
    """
    try:
        record = json.loads(path.read_text(), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RecordError(f"{path}: unreadable record ({error})") from error
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise RecordError(f"{path}: not a run record (no 'config' object)")
    schema = record.get("schema_version", 1)
    if not isinstance(schema, int) or not 1 <= schema <= SCHEMA_VERSION:
        raise RecordError(f"{path}: schema_version {schema!r}; this code reads 1 to "
                          f"{SCHEMA_VERSION} (update the code to read newer records)")
    if schema >= 2 and record.get(DIGEST_FIELD) != record_digest(record):
        raise RecordError(f"{path}: edited after it was written ({DIGEST_FIELD} does not "
                          "match its content)")
    if config is not None:
        if record["config"] != normalised_config(config):
            raise RecordError(f"{path}: foreign record, its config is not the requested one "
                              f"(it belongs to {config_hash(record['config'])}.json)")
    elif config_hash(record["config"]) != path.stem:
        raise RecordError(f"{path}: foreign record, its config hashes to "
                          f"{config_hash(record['config'])}, not to its file name")
    return record


def quarantine(path: Path, reason: str) -> Path:
    """Move `path` to `<its folder>/quarantine/` (never deleted) and warn; the new path."""
    folder = path.parent / QUARANTINE
    folder.mkdir(exist_ok=True)
    target = folder / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.bad"
    os.replace(path, target)
    warnings.warn(f"{reason}; moved to {target}", RecordWarning, stacklevel=2)
    return target


def _usable(path: Path, config: Any = None, move_aside: bool = False) -> dict[str, Any] | None:
    """The record at `path` if it exists and can be used; else None (warned, maybe moved)."""
    if not path.is_file():
        return None
    try:
        return read_record(path, config)
    except RecordError as error:
        if move_aside:
            quarantine(path, str(error))
        else:
            warnings.warn(f"{error}; left out", RecordWarning, stacklevel=3)
        return None


def load_records(experiment: str) -> list[dict[str, Any]]:
    """Every usable record of an experiment (empty when none ran yet); bad ones are named."""
    folder = results_dir() / experiment
    found = (_usable(path) for path in sorted(folder.glob("*.json")))
    return [record for record in found if record is not None]


def recorded(experiment: str, configs: Iterable[Any]) -> list[dict[str, Any]]:
    """The usable records of those `configs` that have run, in order; runs nothing."""
    found = (_usable(record_path(experiment, config), config) for config in configs)
    return [record for record in found if record is not None]


# ---- sweeps ---------------------------------------------------------------------------------

_WATCHED: set[int] = set()


def _exit_with(sweep_pid: int) -> None:
    """In a worker process: exit as soon as the sweep process `sweep_pid` is gone (kill -9
    of a sweep would otherwise leave its joblib workers training on)."""
    if sweep_pid == os.getpid() or sweep_pid in _WATCHED:
        return
    _WATCHED.add(sweep_pid)
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(sweep_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            if os.getppid() != parent:  # reparented: the process that started us died
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-sweep", daemon=True).start()


def _lock_path(path: Path) -> Path:
    return path.parent / LOCKS / f"{path.stem}.lock"


def _run_and_store(
    run_group: Callable[[list[Any]], list[dict[str, Any]]],
    group: list[Any],
    paths: list[Path],
    experiment: str,
    threads: int | None,
    sweep_pid: int | None,
    wait: bool,
) -> tuple[bool, int]:
    """Lock, run the group's configs still without a usable record, store them.

    Returns (done, number of configs); done is False when another process holds a lock and
    `wait` is False (the sweep comes back to the group later).
    """
    from filelock import FileLock, Timeout

    if sweep_pid is not None:
        _exit_with(sweep_pid)
    with ExitStack() as held:
        try:
            for path in sorted(paths):
                lock_file = _lock_path(path)
                lock_file.parent.mkdir(parents=True, exist_ok=True)
                held.enter_context(FileLock(lock_file, timeout=-1 if wait else 0))
        except Timeout:
            return False, len(group)
        todo = [(c, p) for c, p in zip(group, paths) if _usable(p, c, move_aside=True) is None]
        if todo:
            if threads is not None:
                import torch

                torch.set_num_threads(threads)
            configs = [c for c, _ in todo]
            for record, (_, path) in zip(run_group(configs), todo):
                store_record(path, record, experiment)
    return True, len(group)


def run_sweep(
    configs: Iterable[Any],
    run_group: Callable[[list[Any]], list[dict[str, Any]]],
    experiment: str,
    n_jobs: int = 1,
    backend: str = "loky",
    progress: bool = True,
    group_key: Callable[[Any], Any] = lambda config: config,
    scheduler: Any = None,
) -> list[dict[str, Any]]:
    """Run every config without a usable record and return the records of all, in order.

    `run_group(configs)` returns one record per config; configs with the same `group_key`
    run as one job (e.g. class-lr cutoffs that share their first epochs). Jobs go in parallel
    through joblib (`n_jobs` workers, `backend` any joblib backend), or, with `scheduler` (a
    Dask scheduler address such as "tcp://10.0.0.1:8786", or a `distributed.Client`), to the
    workers of a Dask cluster, which must see the same results directory. Each job writes
    its records when it ends, so stopping the sweep loses only unfinished jobs; a job locks
    its configs first, so another sweep into the same directory skips them meanwhile and
    reads their records when they are done.
    """
    configs = list(configs)
    paths = [record_path(experiment, c) for c in configs]
    groups: dict[Any, tuple[list[Any], list[Path]]] = {}
    for config, path in zip(configs, paths):
        if _usable(path, config, move_aside=True) is None:
            members, member_paths = groups.setdefault(group_key(config), ([], []))
            members.append(config)
            member_paths.append(path)
    todo = list(groups.values())
    if todo:
        from tqdm.auto import tqdm

        run = _dask_jobs if scheduler is not None else _joblib_jobs
        with tqdm(total=sum(len(g) for g, _ in todo), desc=experiment,
                  disable=not progress) as bar:
            busy = []
            for job, (done, count) in zip(todo, run(todo, run_group, experiment, n_jobs,
                                                     backend, scheduler, wait=False)):
                if done:
                    bar.update(count)
                else:
                    busy.append(job)
            for _, count in run(busy, run_group, experiment, n_jobs, backend, scheduler,
                                   wait=True):  # what other sweeps held: wait, then read
                bar.update(count)
    found = [_usable(p, c) for c, p in zip(configs, paths)]
    missing = [str(p) for p, r in zip(paths, found) if r is None]
    if missing:
        raise RecordError(f"no usable record after the sweep for {', '.join(missing)}")
    return found  # type: ignore[return-value]


def _joblib_jobs(todo: list, run_group: Callable, experiment: str, n_jobs: int, backend: str,
                 scheduler: Any, wait: bool) -> Iterator[tuple[bool, int]]:
    """(done, count) of each job of `todo`, in order (run by joblib, or here for one worker)."""
    if not todo:
        return iter(())
    workers = max(1, min(n_jobs if n_jobs > 0 else os.cpu_count() or 1, len(todo)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    if workers == 1:
        return (_run_and_store(run_group, g, p, experiment, threads, None, wait)
                for g, p in todo)
    from joblib import Parallel, delayed

    parallel = Parallel(workers, backend=backend, return_as="generator")
    return parallel(delayed(_run_and_store)(run_group, g, p, experiment, threads, os.getpid(),
                                            wait) for g, p in todo)


def _dask_jobs(todo: list, run_group: Callable, experiment: str, n_jobs: int, backend: str,
               scheduler: Any, wait: bool) -> Iterator[tuple[bool, int]]:
    """(done, count) of each job of `todo`, in order, run on the Dask cluster at `scheduler`."""
    if not todo:
        return
    from distributed import Client

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = [client.submit(_run_and_store, run_group, g, p, experiment, None, None, wait,
                                 pure=False) for g, p in todo]
        for future in futures:
            yield future.result()
    finally:
        if client is not scheduler:
            client.close()
