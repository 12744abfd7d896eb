"""The Makefile's scale-up targets say the command they run (`make -n`, nothing executed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _dry_run(*arguments: str) -> str:
    result = subprocess.run(["make", "-n", *arguments], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    return result.stdout


def test_sweep_target_runs_the_missing_paper_grid_where_it_is_told():
    gpu = _dry_run("sweep", "DEVICE=cuda", "N_JOBS=4")
    assert ("-m companion.class_lr.sweep --profile paper --methods baseline class_lr --seeds "
            "0 1 2 3 4 --device cuda --n-jobs 4") in gpu
    assert "--scheduler" not in gpu
    cluster = _dry_run("sweep", "SCHEDULER=tcp://10.0.0.1:8786")
    assert "--device cpu --n-jobs 2 --scheduler tcp://10.0.0.1:8786" in cluster
    assert "--missing" in _dry_run("sweep-missing")


def test_sweep_target_can_run_one_cutoff_per_job():
    split = _dry_run("sweep", "CUTOFFS=10 20")
    assert "--seeds 0 1 2 3 4 --cutoffs 10 20 --device cpu" in split
    assert "--cutoffs" not in _dry_run("sweep")
