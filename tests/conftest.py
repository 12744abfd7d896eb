"""Shared fixtures: every test writes records, caches and figures into temporary directories."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

SHARED_UCI = Path(__file__).resolve().parents[2] / "shared" / "data" / "uci"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Build the class-lr C++ kernel (about 50 s, once per environment) in a background thread
    while the first tests run; the tests of the fused path wait for it under its file lock."""

    def build() -> None:
        try:
            from companion.class_lr.optimizer import fused_kernel

            fused_kernel()
        except Exception:  # noqa: BLE001 - the fused-path tests report a failed build themselves
            pass

    threading.Thread(target=build, name="build-fused-kernel", daemon=True).start()


@pytest.fixture(autouse=True)
def isolated_outputs(tmp_path_factory, monkeypatch):
    """Point results and figures at fresh temporary directories for each test.

    `make test` sets COMPANION_PROFILE=smoke for the notebooks; unit tests choose their
    profiles themselves.
    """
    monkeypatch.delenv("COMPANION_PROFILE", raising=False)
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path_factory.mktemp("results")))
    monkeypatch.setenv("COMPANION_FIGURES_DIR", str(tmp_path_factory.mktemp("figures")))


@pytest.fixture(scope="session")
def uci_dir() -> Path:
    """The local copy of the UCI archive (COMPANION_UCI_DIR, else ../shared/data/uci)."""
    path = Path(os.environ.get("COMPANION_UCI_DIR") or SHARED_UCI)
    if not (path / "abalone" / "abalone.txt").is_file():
        pytest.fail(
            f"No UCI data at {path}: set COMPANION_UCI_DIR to the authors' data directory "
            "(see README.md, 'Data')."
        )
    os.environ["COMPANION_UCI_DIR"] = str(path)
    return path
