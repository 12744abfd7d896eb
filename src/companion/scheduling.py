"""Running the configs of a sweep that have no usable record yet, in parallel, and storing
their records (`run_sweep`): joblib workers here or the workers of a Dask cluster.

A job locks its configs first (`filelock`, in `<experiment>/.locks/`), so concurrent sweeps
and cluster workers share the work instead of duplicating it, and the joblib workers of a
killed sweep exit within a second. Storing and reading records is `companion.records`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from companion.records import RecordError, record_path, store_record, usable

LOCKS = ".locks"

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
        todo = [(c, p) for c, p in zip(group, paths) if usable(p, c, move_aside=True) is None]
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
        if usable(path, config, move_aside=True) is None:
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
    found = [usable(p, c) for c, p in zip(configs, paths)]
    missing = [str(p) for p, r in zip(paths, found) if r is None]
    if missing:
        raise RecordError(f"no usable record after the sweep for {', '.join(missing)}")
    return found  # type: ignore[return-value]


def threads_per_worker(workers: int) -> int:
    """Torch threads for each of `workers` parallel runs: this process's thread budget split
    between them. The budget is torch's own (`OMP_NUM_THREADS` when set, else the cores), so
    two sweeps started side by side with OMP_NUM_THREADS=1 run one thread each, as intended;
    taking all cores per sweep instead put 4 spinning OpenMP threads on 2 cores (runs 35x
    slower, measured)."""
    import torch

    return max(1, torch.get_num_threads() // workers)


def _joblib_jobs(todo: list, run_group: Callable, experiment: str, n_jobs: int, backend: str,
                 scheduler: Any, wait: bool) -> Iterator[tuple[bool, int]]:
    """(done, count) of each job of `todo`, in order (run by joblib, or here for one worker)."""
    if not todo:
        return iter(())
    workers = max(1, min(n_jobs if n_jobs > 0 else os.cpu_count() or 1, len(todo)))
    threads = threads_per_worker(workers)
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
