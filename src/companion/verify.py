"""`make verify`: rerun committed paper-profile records from their own configs and compare.

    python -m companion.verify [--max-seconds 60] [--limit N]
    python -m companion.verify --per-version [--max-seconds 900]

Every record of `results/*-paper/` whose recorded `wall_time_s` is under `--max-seconds` is
run again (cheapest first; class-lr cutoffs of one run together, as the sweep runs them) and
reported as `identical`, `same results` (every accuracy, prediction and other shown result
equal to the last bit; only diagnostics such as losses differ: what a processor that rounds
float32 sums differently gives), `same outcome` (both runs diverged in the same epoch, after
paths that differ) or `differs`, with the fields that differ and by how much.
Provenance (times, versions, commit, threads, CPU) is not compared. Nothing is written to or
deleted from `results/`: the reruns keep their records in memory (and any checkpoint in a
temporary folder).

`--per-version` answers the question the tables raise when most of their records were made
by earlier run code (`provenance.code_status`): do those versions compute what this code
computes? It reruns, for every version of the run code found among the records (`version`)
and every method, the cheapest run (all cutoffs of a class-lr run), and merges the outcome
into `results/verification.json` (`VERIFICATION`), which `summary` reads under the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from companion import records
from companion.comparisons import plural
from companion.data.sources import REPO_ROOT
from companion.provenance import (
    code_fingerprint,
    code_status,
    cpu_description,
    git_commit,
    run_code_commit,
)

VERIFICATION = REPO_ROOT / "results" / "verification.json"
AGREES = ("identical", "same results", "same outcome")

# Fields that describe how and where a record was made, not what the run computed.
PROVENANCE = frozenset({"wall_time_s", "git_commit", "torch_version", "python_version",
                        "torch_threads", "device", "platform", "cpu", "numpy_version",
                        "schema_version", "code_fingerprint", "code_fingerprint_version",
                        records.DIGEST_FIELD, "resumed_after_epoch", "resumed_at_epochs",
                        "multiplier_mib", "seconds"})


def differences(old: Any, new: Any) -> Iterator[str]:
    """Lines `field: how it differs`, for every result field that is not bit-for-bit equal.

    Fields only the new record has are not differences: newer code records more (diagnostics
    such as `multiplier_trace`), and a committed record cannot be checked on what it lacks.
    """
    return (_line(path, what) for path, what in _differing(old, new))


def _line(path: str, what: str) -> str:
    return f"{path or '(record)'}: {what}"


# Fields that earlier run code recorded and this code no longer computes: a rerun lacks them
# by design, so they are not compared (class-lr's per-epoch test accuracy, dropped 2026-12-07
# for its cost; the final test accuracy and predictions are still compared bit for bit).
RETIRED_FIELDS = frozenset({"history.test_accuracy"})


def _differing(old: Any, new: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(field path, how it differs) for every result field not bit-for-bit equal; the
    path is "" for the record as a whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if key in PROVENANCE or key not in old:
                continue
            path = f"{where}.{key}" if where else key
            if key not in new and path in RETIRED_FIELDS:
                continue
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


def _seconds(record: dict[str, Any]) -> float:
    return record.get("wall_time_s") or float("inf")


def _run_seconds(run: Sequence[tuple[Path, dict]]) -> float:
    """What rerunning a run costs: its records' longest wall time (the cutoffs of a class-lr
    run train together)."""
    return max(_seconds(record) for _, record in run)


def committed(max_seconds: float, root: Path = REPO_ROOT / "results") -> list[tuple[Path, dict]]:
    """(path, record) of the committed paper-profile records under `max_seconds`, cheapest first."""
    found = [(path, records.read_record(path)) for path in sorted(root.glob("*-paper/*.json"))]
    return sorted([item for item in found if _seconds(item[1]) < max_seconds],
                  key=lambda item: _seconds(item[1]))


def version(record: dict[str, Any]) -> str:
    """The version of the run code that computed `record`: its code fingerprint
    ('v2:<fingerprint>', 'v1:<fingerprint>') or, for records older than fingerprints, its
    commit ('commit:<sha>[-dirty]'). Records of one version were computed by the same code."""
    fingerprint = record.get("code_fingerprint")
    if fingerprint:
        return f"v{record.get('code_fingerprint_version', 1)}:{fingerprint}"
    return f"commit:{record.get('git_commit') or 'unknown'}"


def _run_key(record: dict[str, Any]) -> tuple[str, str]:
    """Records with the same key are one run (class-lr cutoffs train together)."""
    experiment = record["experiment"]
    if experiment.startswith("class-lr-uci"):
        from companion.class_lr.experiment import UCIRunConfig, group_key
        return experiment, records.config_hash(group_key(UCIRunConfig(**record["config"])))
    return experiment, records.config_hash(record["config"])


def by_version(found: Sequence[tuple[Path, dict]], max_seconds: float
               ) -> tuple[list[tuple[Path, dict]], dict[tuple[str, str], str]]:
    """The cheapest run of each (experiment, version, method) among the CPU records of
    `found`, with all its records (class-lr cutoffs), cheapest first, and why the versions
    left out were:
    {(experiment, version): 'cheapest run N s' (`max_seconds` or more) | 'trained on a GPU'}
    (a GPU draws its own dropout masks, so a CPU rerun cannot match it). Versions that are
    this checkout's run code need no rerun and are left out silently."""
    runs: dict[tuple[str, str, Any], dict[Any, list[tuple[Path, dict]]]] = {}
    skipped: dict[tuple[str, str], str] = {}
    for path, record in found:
        experiment = record["experiment"]
        if code_status(record, experiment) == "this code":
            continue
        if record.get("device", "cpu") != "cpu":
            skipped[experiment, version(record)] = "trained on a GPU"
            continue
        kind = (experiment, version(record), record["config"].get("method"))
        runs.setdefault(kind, {}).setdefault(_run_key(record), []).append((path, record))
    picked = []
    for (experiment, code, _), members in sorted(runs.items(), key=str):
        cheapest = min(members.values(), key=_run_seconds)
        if _run_seconds(cheapest) < max_seconds:
            picked.append(cheapest)
        else:
            skipped[experiment, code] = f"cheapest run {_run_seconds(cheapest):.0f} s"
    # cheapest first: a verification stopped part way has covered the most versions
    chosen = [item for run in sorted(picked, key=_run_seconds) for item in run]
    covered = {(r["experiment"], version(r)) for _, r in chosen}
    return chosen, {key: why for key, why in skipped.items() if key not in covered}


def rerun(records_: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fresh records of the configs of `records_` (all of one experiment family)."""
    experiment = records_[0]["experiment"]
    if experiment.startswith("context-uci"):  # the GBT / RF context columns of Table 2
        from companion.class_lr import context
        return context.run_group([context.ContextRunConfig(**r["config"]) for r in records_])
    if experiment.startswith("class-lr-table3-reading"):  # Table 3's reading study
        from companion.class_lr import table3_reading
        from companion.class_lr.experiment import UCIRunConfig
        return [table3_reading.run(UCIRunConfig(**r["config"])) for r in records_]
    if experiment.startswith("class-lr"):
        from companion.class_lr import experiment as module
        configs = [module.UCIRunConfig(**r["config"]) for r in records_]
        return module.run_group(configs)
    from companion.fixed_classifier import experiment as module
    # JSON stores the milestones as a list; older records leave them out (the default)
    configs = [module.CIFARRunConfig(**{k: tuple(v) if k == "lr_milestones" else v
                                        for k, v in r["config"].items()}) for r in records_]
    return module.run_group(configs)


# Run in a subprocess on a copy of an earlier commit's `src/`: reruns configs with that
# commit's run code. Only names every version has (`experiment.run_group` or `run`).
_OWN_CODE_SCRIPT = """
import json, sys
import torch
torch.set_num_threads(int(sys.argv[3]))
job = json.load(open(sys.argv[1]))
name = job["experiment"]
if name.startswith("context-uci"):
    from companion.class_lr import context
    fresh = context.run_group([context.ContextRunConfig(**c) for c in job["configs"]])
else:
    from companion.class_lr import experiment
    configs = [experiment.UCIRunConfig(**c) for c in job["configs"]]
    if name.startswith("class-lr-table3-reading"):
        from companion.class_lr import table3_reading
        fresh = [table3_reading.run(c) for c in configs]
    elif hasattr(experiment, "run_group"):
        fresh = experiment.run_group(configs)
    else:
        fresh = [experiment.run(c) for c in configs]
json.dump(fresh, open(sys.argv[2], "w"))
"""


def rerun_with_code(commit: str, records_: Sequence[dict[str, Any]], threads: int = 1
                    ) -> list[dict[str, Any]]:
    """Fresh records of the configs of `records_` (one run, one experiment) computed by the
    run code of `commit`, on this processor: the code of the commit is copied out of git
    (`git archive`) into a temporary folder and run in a subprocess of this interpreter, with
    its own data cache. With :func:`rerun` it separates the two causes of a record that
    reruns differently here: another processor (the commit's code and this code agree here)
    or a change of the run code (they do not)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        archive = subprocess.run(["git", "archive", commit, "src"], cwd=REPO_ROOT,
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        job, out = root / "job.json", root / "fresh.json"
        job.write_text(json.dumps({"experiment": records_[0]["experiment"],
                                   "configs": [r["config"] for r in records_]}))
        env = {**os.environ, "PYTHONPATH": str(root / "src"),
               "COMPANION_DATA_DIR": str(root / "data"),
               "COMPANION_RESULTS_DIR": str(root / "results"),
               "COMPANION_GIT_COMMIT": commit}
        done = subprocess.run([sys.executable, "-c", _OWN_CODE_SCRIPT, str(job), str(out),
                               str(threads)], cwd=root, env=env, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the run code of {commit[:12]} failed: "
                               f"{done.stderr.strip().splitlines()[-1:]}")
        return json.loads(out.read_text())


def verify_runs(paths_and_records: Sequence[tuple[Path, dict]]
                ) -> Iterator[list[tuple[Path, dict, dict]]]:
    """Per run (class-lr cutoffs of one run together): (path, committed record, fresh record
    as JSON reads it back) of each of its records."""
    groups: dict[Any, list[tuple[Path, dict]]] = {}
    for path, record in paths_and_records:
        groups.setdefault(_run_key(record), []).append((path, record))
    for members in groups.values():
        fresh = rerun([record for _, record in members])
        yield [(path, record, json.loads(json.dumps(new)))
               for (path, record), new in zip(members, fresh)]


def verify(paths_and_records: Sequence[tuple[Path, dict]]
           ) -> Iterator[tuple[Path, str, list[str]]]:
    """(path, verdict, differences) per record (see :func:`verdict`)."""
    for run in verify_runs(paths_and_records):
        for path, record, fresh in run:
            yield path, *verdict(record, fresh)


def own_code_commit(record: dict[str, Any], found: Sequence[dict[str, Any]]) -> str | None:
    """The commit whose run code made `record` (`provenance.run_code_commit`), else the clean
    commit of another record of its version among `found` (a fingerprint recomputed today
    can miss: the modules counted as run code have changed since)."""
    commit = run_code_commit(record, record["experiment"])
    return commit or next((r["git_commit"] for r in found if version(r) == version(record)
                           and not (r.get("git_commit") or "-dirty").endswith("-dirty")), None)


NO_COMMIT = "no commit of this clone holds its run code"


def base_commit(record: dict[str, Any]) -> str | None:
    """The commit that a record made from an uncommitted edit ('<sha>-dirty') was made on,
    where this clone has it; None for any other record."""
    commit = record.get("git_commit") or ""
    if not commit.endswith("-dirty"):
        return None
    base = commit.removesuffix("-dirty")
    try:
        subprocess.run(["git", "cat-file", "-e", f"{base}^{{commit}}"], cwd=REPO_ROOT,
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return base


def own_code_status(run: Sequence[tuple[Path, dict, dict]], commit: str | None
                    ) -> dict[str, Any]:
    """Whether a run's own code (that of `commit`) computes here what this code computes
    here: {'commit', 'status': worst verdict over the run's records} or {'why': ...}."""
    if commit is None:
        return {"why": NO_COMMIT}
    try:
        own = rerun_with_code(commit, [record for _, record, _ in run])
    except (RuntimeError, subprocess.CalledProcessError) as error:
        return {"commit": commit, "why": str(error)}
    statuses = [verdict(old, fresh)[0] for old, (_, _, fresh) in zip(own, run)]
    order = (*AGREES, "differs")
    return {"commit": commit, "status": max(statuses, key=order.index)}


def own_code_check(run: Sequence[tuple[Path, dict, dict]], found: Sequence[dict[str, Any]]
                   ) -> dict[str, Any]:
    """`own_code_status` with the run's own commit (`own_code_commit`); for a run made from
    an uncommitted edit that no commit holds, with the commit the edit was made on, marked
    `base_of_uncommitted_edit`: it cannot clear the run (the edit is not in it), but where it
    computes here what this code computes, the difference lies in the edit or the processor,
    not in any committed change."""
    record = run[0][1]
    commit = own_code_commit(record, found)
    base = base_commit(record) if commit is None else None
    if base is None:
        return own_code_status(run, commit)
    return {**own_code_status(run, base), "base_of_uncommitted_edit": True}


def write_report(outcomes: Sequence[tuple[Path, dict, str, list[str], dict | None]],
                 skipped: dict[tuple[str, str], str], path: Path = VERIFICATION) -> None:
    """Merge reruns ((path, committed record, verdict, differences, `own_code_status` or
    None) and the versions left out into the report at `path`: one entry per rerun record,
    keyed by its file under `results/`, naming the code that reran it, so that a later change
    of the run code makes the entry stale instead of wrong."""
    report = read_report(path)
    reruns, not_rerun = report.get("reruns", {}), report.get("not_rerun", {})
    today = time.strftime("%Y-%m-%d")
    for file, record, status, found, own_code in outcomes:
        experiment = record["experiment"]
        reruns[file.relative_to(path.parent).as_posix()] = {
            "experiment": experiment, "version": version(record), "status": status,
            "differences": _headline(found), "recorded_on": record.get("cpu"),
            "rerun_code": code_fingerprint(experiment), "rerun_commit": git_commit(),
            "rerun_on": cpu_description(), "rerun_date": today,
            **({"own_code": own_code} if own_code else {})}
    rerun = {f"{e['experiment']} {e['version']}" for e in reruns.values() if _current(e)}
    not_rerun = {key: entry for key, entry in not_rerun.items() if key not in rerun}
    for (experiment, code), why in skipped.items():
        not_rerun[f"{experiment} {code}"] = {"why": why, "checked_by": code_fingerprint(experiment)}
    records.write_json_atomic(path, {"about": REPORT_ABOUT, "reruns": reruns,
                                     "not_rerun": not_rerun})


def _headline(found: Sequence[str], most: int = 6) -> list[str]:
    """At most `most` differences, those of a record's own fields (its final accuracies,
    predictions, divergence) before those inside its history and traces."""
    top = [line for line in found if not any(c in line.split(":")[0] for c in ".[")]
    return [*top, *(line for line in found if line not in top)][:most]


def read_report(path: Path = VERIFICATION) -> dict[str, Any]:
    """The report at `path` ({} when there is none yet)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def _current(entry: dict[str, Any]) -> bool:
    """Whether a report entry was rerun by this checkout's run code (else it is stale)."""
    return entry["rerun_code"] == code_fingerprint(entry["experiment"])


REPORT_ABOUT = ("Written by `python -m companion.verify --per-version`: committed records of "
                "earlier run code, rerun by the code named in `rerun_code` (see verify.py).")


def summary(found: Sequence[dict[str, Any]], path: Path | None = None) -> str | None:
    """What the report at `path` (default: `verification.json` beside the records read,
    `records.results_dir()`) says about the run-code versions of `found` that are not this
    checkout's: None when every record is this code's, else one sentence for under a table."""
    path = path or records.results_dir() / VERIFICATION.name
    other = [r for r in found if code_status(r, r.get("experiment", "")) != "this code"]
    if not other:
        return None
    versions: dict[tuple[str, str], int] = {}
    for record in other:
        key = (record["experiment"], version(record))
        versions[key] = versions.get(key, 0) + 1
    report = read_report(path)
    statuses: dict[tuple[str, str], list[str]] = {}
    for entry in report.get("reruns", {}).values():
        if _current(entry):
            statuses.setdefault((entry["experiment"], entry["version"]), []).append(
                _outcome(entry))
    agree = [k for k in versions if k in statuses
             and set(statuses[k]) <= {*AGREES, PROCESSOR}]
    differ = [k for k in versions if k in statuses and k not in agree]
    edited = [k for k in differ if set(statuses[k]) <= {*AGREES, EDIT_OR_PROCESSOR}]
    unchecked = [k for k in versions if k not in statuses]
    reruns = [s for k in agree for s in statuses[k]]
    counts = ", ".join(f"{reruns.count(s)} {s}" for s in (*AGREES, PROCESSOR) if s in reruns)
    text = (f"They come from {len(versions)} earlier versions of the run code; "
            f"`python -m companion.verify --per-version` reran the cheapest run of each "
            f"version and method with this checkout's code")
    if not statuses:
        return text.replace("reran", "has not rerun") + " yet."
    text += (f": for {_versions(agree, versions)} the reruns gave the committed results "
             f"({counts})")
    if differ:
        text += (f"; for {_versions(differ, versions)} they did not: "
                 + ", ".join(_short(c) for _, c in differ))
    if edited:
        text += (f" ({_versions(edited, versions)} made from uncommitted edits, whose base "
                 "commits compute here what this code computes: the difference lies in the "
                 "edit or the processor)")
    if unchecked:
        slow = report.get("not_rerun", {})
        why = [f"{_short(code)} ({slow[f'{e} {code}']['why']})" if f"{e} {code}" in slow
               else _short(code) for e, code in unchecked]
        text += f"; {_versions(unchecked, versions)} not rerun: " + ", ".join(why)
    return text + "."


def _settled(path: Path, record: dict[str, Any], reruns: dict[str, Any],
             folder: Path = VERIFICATION.parent) -> bool:
    """Whether the report's `reruns` (entries keyed by file under `folder`) already hold this
    record's rerun by this code, with its own code's rerun where it differed (for a record
    made from an uncommitted edit, that of the commit it was made on, where this clone has
    it): a repeated `--per-version` resumes instead of redoing."""
    entry = reruns.get(path.relative_to(folder).as_posix()) if path.is_relative_to(
        folder) else None
    if not (entry and _current(entry)):
        return False
    own = entry.get("own_code")
    return (entry["status"] in AGREES or own is not None
            and ("commit" in own or base_commit(record) is None))


PROCESSOR = "differ by the processor only (their own code reruns here as this code does)"
EDIT_OR_PROCESSOR = ("differ by an uncommitted edit or the processor (the commit the edit "
                     "was made on reruns here as this code does)")


def _outcome(entry: dict[str, Any]) -> str:
    """A rerun's outcome: its verdict when the record reran to its results; PROCESSOR when
    it did not but its own code computes here what this code computes; EDIT_OR_PROCESSOR
    when its own code is an uncommitted edit and the commit it was made on does; else
    'differs'."""
    if entry["status"] in AGREES:
        return entry["status"]
    own = entry.get("own_code", {})
    if own.get("status") not in AGREES:
        return "differs"
    return EDIT_OR_PROCESSOR if own.get("base_of_uncommitted_edit") else PROCESSOR


def _short(code: str) -> str:
    """A version as a reader can scan it: 'commit:<12 hex>[-dirty]', fingerprints as they are."""
    kind, _, name = code.partition(":")
    return f"{kind}:{name[:12]}{'-dirty' * name.endswith('-dirty')}" if kind == "commit" else code


def _versions(keys: Sequence[tuple[str, str]], records_per_version: dict[Any, int]) -> str:
    """'2 versions (14 records)', '1 version (1 record)'."""
    n, total = len(keys), sum(records_per_version[k] for k in keys)
    return f"{n} {plural('version', n)} ({total} {plural('record', total)})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="rerun runs whose recorded wall time is under this "
                             "(default 60; with --per-version 900)")
    parser.add_argument("--limit", type=int, help="only the N cheapest of them")
    parser.add_argument("--per-version", action="store_true",
                        help="the cheapest run of each earlier run-code version and method, "
                             f"recorded in {VERIFICATION.relative_to(REPO_ROOT)}")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1, as the sweeps' runs on 2 cores)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)  # float sums can depend on the thread count
    skipped: dict[tuple[str, str], str] = {}
    every: list[tuple[Path, dict]] = []
    if args.per_version:
        max_seconds = args.max_seconds or 900.0
        every = committed(float("inf"))
        chosen, skipped = by_version(every, max_seconds)
        reruns = read_report().get("reruns", {})
        settled = [(path, record) for path, record in chosen if _settled(path, record, reruns)]
        chosen = [item for item in chosen if item not in settled]
        kinds = {(r["experiment"], version(r), r["config"].get("method")) for _, r in chosen}
        print(f"rerunning the cheapest run of each of {len(kinds)} earlier run-code versions "
              f"and methods ({len(chosen)} records; {len(settled)} more are in the report "
              f"already); left out: {len(skipped)} versions (GPU runs, and runs of "
              f"{max_seconds:g} s or more)", flush=True)
    else:
        max_seconds = args.max_seconds or 60.0
        chosen = committed(max_seconds)[: args.limit]
        print(f"rerunning {len(chosen)} committed paper-profile records "
              f"(recorded wall time < {max_seconds:g} s)", flush=True)
    print(f"this processor: {cpu_description()}", flush=True)
    counts = dict.fromkeys((*AGREES, "differs"), 0)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["COMPANION_RESULTS_DIR"] = scratch  # checkpoints of CIFAR reruns go here
        for run in verify_runs(chosen):  # grouped by run, not in `chosen` order
            verdicts = [verdict(record, fresh) for _, record, fresh in run]
            own = None
            if args.per_version and any(status == "differs" for status, _ in verdicts):
                own = own_code_check(run, [r for _, r in every])
            done = [(path, record, status, found, own)
                    for (path, record, _), (status, found) in zip(run, verdicts)]
            if args.per_version:  # after every run: a killed verification keeps what it did
                write_report(done, skipped)
            for path, record, status, found, _ in done:
                counts[status] += 1
                name = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
                made = record.get("cpu", "processor not recorded")
                detail = f": {'; '.join(found[:4])} (recorded on: {made})" if found else ""
                print(f"{status:<12} {name}{detail}", flush=True)
            if own:
                whose = ("the commit its uncommitted edit was made on"
                         if own.get("base_of_uncommitted_edit") else "its own code")
                print(f"  {whose} here ({own.get('commit', '?')[:12]}): "
                      f"{own.get('status') or own['why']}", flush=True)
    print(", ".join(f"{n} {status}" for status, n in counts.items()) + f" of {len(chosen)}")
    if args.per_version:
        write_report([], skipped)  # the versions left out, also when nothing was rerun
        print(f"written: {VERIFICATION.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
