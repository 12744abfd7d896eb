"""The three run profiles shared by every experiment: one code path, three budgets.

- `smoke`: seconds per notebook; what `make test` executes.
- `quick`: real data at a reduced budget; the default of `make` (each notebook < 15 minutes
  on 2 CPU cores).
- `paper`: the paper's protocol.

Setting `COMPANION_PROFILE` forces a profile whatever a notebook asks for (the tests use it).
"""

from __future__ import annotations

import os

PROFILES = ("smoke", "quick", "paper")


def resolve_profile(requested: str) -> str:
    """The profile to use: `$COMPANION_PROFILE` when set, else `requested` (validated)."""
    profile = os.environ.get("COMPANION_PROFILE", "").strip() or requested
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
    return profile
