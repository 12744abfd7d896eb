"""Provenance of a run record: where and with what code it was made, built by one function.

`record_provenance` gives the fields every record carries (code commit, a fingerprint of the
code that computes runs, torch, numpy and Python versions, threads, device, platform, CPU);
each paper's `experiment.run` puts them in its record and `records.store_record` stamps them
on any record that lacks them. `code_status` tells whether a record was computed by this
checkout's run code.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from companion.data.sources import REPO_ROOT

# Modules that only present, check or schedule runs: editing them changes no run's numbers,
# so they are left out of `code_fingerprint`. Of these, only PLUMBING is imported by the runs
# themselves (to validate configs and write records); a test keeps it so.
PLUMBING = frozenset({"records.py", "provenance.py", "scheduling.py", "validation.py"})
NOT_RUN_CODE = PLUMBING | frozenset({
    "tables.py", "figures.py", "outputs.py", "sweep.py", "verify.py", "lm_sweep.py",
    "__main__.py", "verdict.py", "findings.py", "comparisons.py", "scorecard.py", "site.py",
    "estimates.py", "budget.py", "analytic.py", "imagenet_report.py", "lm_figures.py",
    "paper_checks.py", "paper_ties.py", "batch_size.py", "minibatch_reading.py",
    "results_summary.py"})
# Version 2 of the fingerprint (2026-12-04). Version 1 (records without
# `code_fingerprint_version`) hashed the presentation modules too, so that editing a table
# marked every record as other code, and it left out class_lr/capture.py, which is run code
# (the layer that hands activations and gradients to the class-lr step).
FINGERPRINT_VERSION = 2
NOT_RUN_CODE_V1 = frozenset({"tables.py", "figures.py", "outputs.py", "sweep.py", "verify.py",
                             "lm_sweep.py", "records.py", "provenance.py", "scheduling.py",
                             "validation.py", "capture.py", "__main__.py"})
SUBPACKAGES = {"class-lr": "class_lr", "fixed-classifier": "fixed_classifier"}
PACKAGE = Path(__file__).resolve().parent


def record_provenance(experiment: str, device: str = "cpu") -> dict[str, Any]:
    """Where and with what a record of `experiment` was made (its `device` as the run says)."""
    import numpy
    import torch

    return {"git_commit": git_commit(), "code_fingerprint": code_fingerprint(experiment),
            "code_fingerprint_version": FINGERPRINT_VERSION,
            "torch_version": str(torch.__version__), "numpy_version": numpy.__version__,
            "python_version": platform.python_version(),
            "torch_threads": torch.get_num_threads(), "device": device,
            "platform": platform.platform(), "cpu": cpu_description()}


@cache
def cpu_description() -> str:
    """The processor and the SIMD level torch's CPU kernels dispatch to, e.g.
    'Intel(R) Xeon(R) Processor (family 6, model 207); torch AVX512'.

    Why it is recorded: float32 sums (matrix products, reductions) are added in another order
    on another processor (MKL and torch pick kernels per CPU), so a record reruns bit for bit
    only on a processor with the same description; elsewhere the losses differ in the 7th or
    8th digit (measured: 8.6e-8 after 100 epochs) while predictions usually agree.
    """
    import torch

    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
            if not line.strip():
                break  # the first processor is enough
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return f"{name}; torch {torch.backends.cpu.get_cpu_capability()}"


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


def _is_run_code(relative: str, experiment: str, excluded: frozenset[str]) -> bool:
    """Whether a file (path relative to the package, '/'-separated) is run code of
    `experiment`: a source file directly in the shared core, `data/` or the experiment's
    paper sub-package (both sub-packages when the name says neither), not in `excluded`."""
    folder, _, name = relative.rpartition("/")
    sub = next((s for prefix, s in SUBPACKAGES.items() if experiment.startswith(prefix)), None)
    folders = {"", "data", *([sub] if sub else SUBPACKAGES.values())}
    return (folder in folders and Path(name).suffix in (".py", ".cpp", ".csv", ".txt")
            and name not in excluded)


def run_code_files(experiment: str) -> list[Path]:
    """The source files whose code computes the runs of `experiment` (shared + its paper's)."""
    return sorted(p for p in PACKAGE.rglob("*") if p.is_file() and _is_run_code(
        p.relative_to(PACKAGE).as_posix(), experiment, NOT_RUN_CODE))


def _digest(files: Iterable[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    # In the order of the paths' parts, as version 1 sorted its Path objects.
    for relative, content in sorted(files, key=lambda item: item[0].split("/")):
        digest.update(relative.encode() + b"\0" + content)
    return digest.hexdigest()[:16]


@cache
def code_fingerprint(experiment: str) -> str:
    """sha256 prefix of the files of `run_code_files`: equal fingerprints, same run code."""
    return _digest((p.relative_to(PACKAGE).as_posix(), p.read_bytes())
                   for p in run_code_files(experiment))


@cache
def _fingerprint_at(commit: str, experiment: str, version: int) -> str | None:
    """The fingerprint of `version` (1 or 2) of the run code at `commit`, from the clone's
    git objects."""
    package = PACKAGE.relative_to(REPO_ROOT).as_posix()
    excluded = NOT_RUN_CODE_V1 if version == 1 else NOT_RUN_CODE
    try:
        listed = _git("ls-tree", "-r", "--name-only", commit, "--", package).splitlines()
        paths = [p for p in listed if _is_run_code(p[len(package) + 1:], experiment, excluded)]
        batch = subprocess.run(["git", "cat-file", "--batch"], cwd=REPO_ROOT, check=True,
                               capture_output=True,
                               input="".join(f"{commit}:{p}\n" for p in paths).encode()).stdout
    except (OSError, ValueError, subprocess.CalledProcessError):
        return None
    files, offset = [], 0
    for path in paths:  # each object: "<sha> blob <size>\n<content>\n"
        header_end = batch.index(b"\n", offset)
        size = int(batch[offset:header_end].split()[2])
        files.append((path[len(package) + 1:], batch[header_end + 1: header_end + 1 + size]))
        offset = header_end + 1 + size + 1
    return _digest(files)


@cache
def _commit_of_fingerprint(base: str, fingerprint: str, experiment: str, version: int
                           ) -> str | None:
    """The commit, `base` or one after it on the way to HEAD, whose fingerprint of `version`
    is `fingerprint`: the commit that holds the run code of a record made on an uncommitted
    tree at `base` (its changes were committed later, or were not run code)."""
    try:
        later = _git("rev-list", "--reverse", "--ancestry-path", f"{base}..HEAD").split()
    except (OSError, subprocess.CalledProcessError):
        later = []
    return next((c for c in [base, *later]
                 if _fingerprint_at(c, experiment, version) == fingerprint), None)


def latest_commit_of_fingerprint(fingerprint: str, experiment: str, depth: int = 200
                                 ) -> str | None:
    """The newest of HEAD's last `depth` commits whose run code of `experiment` has
    `fingerprint` (this version's): the commit to check out to resume a saved state that
    other run code wrote. None when none of them has it."""
    try:
        commits = _git("rev-list", f"--max-count={depth}", "HEAD").split()
    except (OSError, subprocess.CalledProcessError):
        return None
    return next((c for c in commits
                 if _fingerprint_at(c, experiment, FINGERPRINT_VERSION) == fingerprint), None)


@cache
def _same_run_code_since(commit: str, experiment: str) -> bool:
    paths = [str(p.relative_to(REPO_ROOT)) for p in run_code_files(experiment)]
    try:
        listed = _git("ls-tree", "-r", "--name-only", commit, "--",
                      str(PACKAGE.relative_to(REPO_ROOT)))
        subprocess.run(["git", "diff", "--quiet", commit, "--", *paths], cwd=REPO_ROOT,
                       check=True, capture_output=True)
    except (OSError, ValueError, subprocess.CalledProcessError):
        return False  # other code, or a commit this clone does not have
    return set(paths) <= set(listed.splitlines())


def run_code_commit(record: Mapping[str, Any], experiment: str) -> str | None:
    """The clean commit whose run code computed `record`: its `git_commit` when clean; when
    it was made on an uncommitted tree, the commit at or after that one whose fingerprint (of
    the record's fingerprint version) equals the record's; None when there is none (a commit
    this clone lacks, or run code that was never committed as it ran)."""
    commit = record.get("git_commit") or ""
    if commit and not commit.endswith("-dirty"):
        return commit
    fingerprint = record.get("code_fingerprint")
    if not commit or not fingerprint:
        return None
    return _commit_of_fingerprint(commit.removesuffix("-dirty"), fingerprint, experiment,
                                  record.get("code_fingerprint_version", 1))


def code_status(record: Mapping[str, Any], experiment: str) -> str:
    """"this code" when the record was computed by the checkout's run code, else "other code".

    The rule: a record with a current-version `code_fingerprint` is this code's when the
    fingerprint equals the checkout's. Any other record is this code's when the run-code files
    (`run_code_files`) of the commit that ran it equal the checkout's: its `git_commit` when
    clean; when it was made on an uncommitted tree, the commit at or after that one whose
    version-1 fingerprint equals the record's (its changes were committed there). Otherwise
    (no commit this clone has, run code changed since) it is "other code". Either way it is
    shown.
    """
    if record.get("code_fingerprint_version") == FINGERPRINT_VERSION:
        same = record.get("code_fingerprint") == code_fingerprint(experiment)
    else:
        commit = run_code_commit(record, experiment)
        same = commit is not None and _same_run_code_since(commit, experiment)
    return "this code" if same else "other code"
