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
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from companion.data.sources import REPO_ROOT

# Modules that only present, check or schedule runs: editing them changes no run's numbers,
# so they are left out of `code_fingerprint`.
NOT_RUN_CODE = frozenset({"tables.py", "figures.py", "outputs.py", "sweep.py", "verify.py",
                          "lm_sweep.py", "records.py", "provenance.py", "scheduling.py",
                          "validation.py", "capture.py", "__main__.py"})
SUBPACKAGES = {"class-lr": "class_lr", "fixed-classifier": "fixed_classifier"}
PACKAGE = Path(__file__).resolve().parent


def record_provenance(experiment: str, device: str = "cpu") -> dict[str, Any]:
    """Where and with what a record of `experiment` was made (its `device` as the run says)."""
    import numpy
    import torch

    return {"git_commit": git_commit(), "code_fingerprint": code_fingerprint(experiment),
            "torch_version": torch.__version__, "numpy_version": numpy.__version__,
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


def run_code_files(experiment: str) -> list[Path]:
    """The source files whose code computes the runs of `experiment` (shared + its paper's)."""
    folders = [PACKAGE, PACKAGE / "data"]
    sub = next((s for prefix, s in SUBPACKAGES.items() if experiment.startswith(prefix)), None)
    folders += [PACKAGE / sub] if sub else [p for p in PACKAGE.iterdir() if p.is_dir()
                                            and p.name in SUBPACKAGES.values()]
    return sorted(p for folder in folders for p in folder.iterdir()
                  if p.suffix in (".py", ".cpp", ".csv", ".txt") and p.name not in NOT_RUN_CODE)


@cache
def code_fingerprint(experiment: str) -> str:
    """sha256 prefix of the files of `run_code_files`: equal fingerprints, same run code."""
    digest = hashlib.sha256()
    for path in run_code_files(experiment):
        digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


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
