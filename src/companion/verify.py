"""`make verify`: rerun committed paper-profile records from their own configs and compare.

    python -m companion.verify [--max-seconds 60] [--limit N]

Every record of `results/*-paper/` whose recorded `wall_time_s` is under `--max-seconds` is
run again (cheapest first; class-lr cutoffs of one run together, as the sweep runs them) and
reported as `identical`, `same results` (every accuracy, prediction and other shown result
equal to the last bit; only diagnostics such as losses differ: what a processor that rounds
float32 sums differently gives), `same outcome` (both runs diverged in the same epoch, after
paths that differ) or `differs`, with the fields that differ and by how much.
Provenance (times, versions, commit, threads, CPU) is not compared. Nothing is written to or
deleted from `results/`: the reruns keep their records in memory (and any checkpoint in a
temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from companion import records
from companion.data.sources import REPO_ROOT
from companion.provenance import cpu_description

# Fields that describe how and where a record was made, not what the run computed.
PROVENANCE = frozenset({"wall_time_s", "git_commit", "torch_version", "python_version",
                        "torch_threads", "device", "platform", "cpu", "numpy_version",
                        "schema_version", "code_fingerprint", "code_fingerprint_version",
                        records.DIGEST_FIELD, "resumed_after_epoch",
                        "multiplier_mib", "seconds"})


def differences(old: Any, new: Any) -> Iterator[str]:
    """Lines `field: how it differs`, for every result field that is not bit-for-bit equal.

    Fields only the new record has are not differences: newer code records more (diagnostics
    such as `multiplier_trace`), and a committed record cannot be checked on what it lacks.
    """
    return (_line(path, what) for path, what in _differing(old, new))


def _line(path: str, what: str) -> str:
    return f"{path or '(record)'}: {what}"


def _differing(old: Any, new: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(field path, how it differs) for every result field not bit-for-bit equal; the
    path is "" for the record as a whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if key in PROVENANCE or key not in old:
                continue
            path = f"{where}.{key}" if where else key
            if key not in new or key not in old:
                yield path, f"only in the {'committed' if key in old else 'new'} record"
            else:
                yield from _differing(old[key], new[key], path)
    elif isinstance(old, list) and isinstance(new, list):
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                      for v in old + new)
        if len(old) != len(new):
            yield where, f"{len(old)} values committed, {len(new)} now"
        elif numeric and old != new:
            changed = sum(a != b for a, b in zip(old, new))
            largest = max(abs(a - b) for a, b in zip(old, new))
            yield where, f"{changed} of {len(old)} values differ, by up to {largest:.3g}"
        elif not numeric:
            for index, (a, b) in enumerate(zip(old, new)):
                yield from _differing(a, b, f"{where}[{index}]")
    elif isinstance(old, str) and isinstance(new, str) and len(old) == len(new) and old != new:
        changed = sum(a != b for a, b in zip(old, new))
        yield where, f"{changed} of {len(old)} characters differ"
    elif (isinstance(old, (int, float)) and isinstance(new, (int, float))
          and not isinstance(old, bool) and old != new):
        yield where, f"{old!r} committed, {new!r} now (difference {new - old:.3g})"
    elif old != new:
        yield where, f"{old!r} committed, {new!r} now"


# What the tables and figures show: a field whose path contains one of these words must rerun
# exactly. Everything else (losses, multiplier traces, norms) is a diagnostic of the training
# path, where another processor's float32 rounding (see `provenance.cpu_description`) grows
# over the epochs, most in runs that blow up.
RESULT_WORDS = ("accuracy", "correct", "error", "prediction", "label", "specialization",
                "diverged", "non_convergence", "alpha_mu", "parameters", "n_test", "n_train",
                "first_nonfinite.epoch")


def is_result(path: str) -> bool:
    """Whether the field at `path` (as :func:`differences` names it) is a shown result."""
    return any(word in path for word in RESULT_WORDS)


# Where a diverged run's path may differ and its outcome stay the same: the epochs before the
# overflow and the batch it came in (the tables leave diverged runs out; the findings notebook
# shows the epoch, `first_nonfinite.epoch`, which must agree).
DIVERGED_PATH = ("history.", "first_nonfinite.batch")


def verdict(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, list[str]]:
    """('identical' | 'same results' | 'same outcome' | 'differs', the differences) of a
    committed and a fresh record. 'same results': every result field (:func:`is_result`) equal
    to the last bit, only diagnostics of the training path differ (what a rerun on another
    processor gives). 'same outcome': both runs diverged in the same epoch and only the path
    there differs: a blow-up amplifies the same rounding until the loss overflows a few
    batches earlier or later."""
    found = list(_differing(old, new))
    if not found:
        return "identical", []
    lines = [_line(*item) for item in found]
    # a whole record that differs in kind (path "") is no diagnostic either
    results = [path for path, _ in found if not path or is_result(path)]
    if not results:
        return "same results", lines
    if (old.get("diverged") is True and new.get("diverged") is True
            and all(path.startswith(DIVERGED_PATH) for path in results)):
        return "same outcome", lines
    return "differs", lines


def committed(max_seconds: float, root: Path = REPO_ROOT / "results") -> list[tuple[Path, dict]]:
    """(path, record) of the committed paper-profile records under `max_seconds`, cheapest first."""
    found = []
    for path in sorted(root.glob("*-paper/*.json")):
        record = records.read_record(path)
        if (record.get("wall_time_s") or float("inf")) < max_seconds:
            found.append((path, record))
    return sorted(found, key=lambda item: item[1]["wall_time_s"])


def rerun(records_: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fresh records of the configs of `records_` (all of one experiment family)."""
    experiment = records_[0]["experiment"]
    if experiment.startswith("context-uci"):  # the GBT / RF context columns of Table 2
        from companion.class_lr import context
        return context.run_group([context.ContextRunConfig(**r["config"]) for r in records_])
    if experiment.startswith("class-lr"):
        from companion.class_lr import experiment as module
        configs = [module.UCIRunConfig(**r["config"]) for r in records_]
        return module.run_group(configs)
    from companion.fixed_classifier import experiment as module
    # JSON stores the milestones as a list; older records leave them out (the default)
    configs = [module.CIFARRunConfig(**{k: tuple(v) if k == "lr_milestones" else v
                                        for k, v in r["config"].items()}) for r in records_]
    return module.run_group(configs)


def verify(paths_and_records: Sequence[tuple[Path, dict]]
           ) -> Iterator[tuple[Path, str, list[str]]]:
    """(path, verdict, differences) per record (see :func:`verdict`), rerunning class-lr
    cutoffs of one run together."""
    from companion.class_lr.experiment import UCIRunConfig, group_key

    groups: dict[Any, list[tuple[Path, dict]]] = {}
    for path, record in paths_and_records:
        key: Any = path
        if record["experiment"].startswith("class-lr"):
            key = group_key(UCIRunConfig(**record["config"]))
        groups.setdefault(key, []).append((path, record))
    for members in groups.values():
        fresh = rerun([record for _, record in members])
        for (path, record), new in zip(members, fresh):
            yield path, *verdict(record, json.loads(json.dumps(new)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="rerun records whose recorded wall time is under this (default 60)")
    parser.add_argument("--limit", type=int, help="only the N cheapest of them")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1, as the sweeps' runs on 2 cores)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)  # float sums can depend on the thread count
    chosen = committed(args.max_seconds)[: args.limit]
    print(f"rerunning {len(chosen)} committed paper-profile records "
          f"(recorded wall time < {args.max_seconds:g} s)", flush=True)
    print(f"this processor: {cpu_description()}", flush=True)
    counts = dict.fromkeys(("identical", "same results", "same outcome", "differs"), 0)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["COMPANION_RESULTS_DIR"] = scratch  # checkpoints of CIFAR reruns go here
        made = {path: record.get("cpu", "processor not recorded") for path, record in chosen}
        for path, status, found in verify(chosen):  # grouped by run, not in `chosen` order
            counts[status] += 1
            name = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
            detail = f": {'; '.join(found[:4])} (recorded on: {made[path]})" if found else ""
            print(f"{status:<12} {name}{detail}", flush=True)
    print(", ".join(f"{n} {status}" for status, n in counts.items()) + f" of {len(chosen)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
