"""What counts as "did not converge" for a class-lr run (the paper: "if the network did not
converge, we reduced [alpha_mu] by a factor of 10").

The paper does not define it. Each rule below reads a finished run's record and returns the
reason it did not converge, or None. The rules are compared on the protocol study's runs
(every alpha_mu of a ladder, no retries) in `notebooks/class_lr/protocol_findings.ipynb`;
`run_cutoffs` applies the config's `divergence_rule` to decide on a retry at alpha_mu / 10.

- "nonfinite": the training loss overflowed (inf or NaN). What the code did before the study.
"""

from __future__ import annotations

from typing import Any

RULES = ("nonfinite",)


def non_convergence(record: dict[str, Any], rule: str = "nonfinite") -> str | None:
    """Why the run of `record` did not converge under `rule`, or None if it did."""
    if rule not in RULES:
        raise ValueError(f"divergence_rule must be one of {RULES}, not {rule!r}")
    if record.get("diverged"):
        return "non-finite training loss"
    return None
