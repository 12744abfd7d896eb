"""What counts as "did not converge" for a class-lr run (the paper: "if the network did not
converge, we reduced [alpha_mu] by a factor of 10").

The paper does not define it. Each rule below reads a finished run's record and returns the
reason it did not converge, or None. The rules are compared on the protocol study's runs
(every alpha_mu of a ladder, no retries) in `notebooks/class_lr/protocol_findings.ipynb`;
`run_cutoffs` applies the config's `divergence_rule` to decide on a retry at alpha_mu / 10.

- "nonfinite": the training loss overflowed (inf or NaN). What the code did before the study.
- "blowup" (the default since the study): "nonfinite", or the net ends predicting one class
  for at least 99% of the test rows while its multipliers grew past 10 (an effective learning
  rate ten times the global one) in some half epoch. In the study, every run that collapsed
  this way had multipliers of 1e2 to 1e13, and its baseline did not collapse; nets that
  collapse with multipliers near 1 (hill-valley's 32-layer nets, titanic's ReLU net) collapse
  as baselines too, and a smaller alpha_mu cannot help them, so they are not retried. A bound
  on the multipliers alone would also reject good runs (abalone tanh: multipliers 1e3, test
  accuracy above its baseline).
"""

from __future__ import annotations

from typing import Any

RULES = ("nonfinite", "blowup")
COLLAPSE_SHARE = 0.99  # share of test predictions in one class that counts as a collapse
MULTIPLIER_BOUND = 10.0  # largest multiplier (any layer, any half epoch) that is still benign


def collapsed(record: dict[str, Any]) -> bool:
    """The run predicts one class for at least COLLAPSE_SHARE of its test rows."""
    counts = record.get("test_prediction_counts")
    return bool(counts) and max(counts) >= COLLAPSE_SHARE * sum(counts)


def largest_multiplier(record: dict[str, Any]) -> float | None:
    """The largest multiplier the run's trace saw (inf if one overflowed), None without one."""
    trace = record.get("multiplier_trace")
    if not trace:
        return None
    values = [m for half in trace for m in half["max_per_layer"]]
    return float("inf") if None in values else max(values)


def non_convergence(record: dict[str, Any], rule: str = "nonfinite") -> str | None:
    """Why the run of `record` did not converge under `rule`, or None if it did."""
    if rule not in RULES:
        raise ValueError(f"divergence_rule must be one of {RULES}, not {rule!r}")
    if record.get("diverged"):
        return "non-finite training loss"
    if rule == "blowup" and collapsed(record):
        largest = largest_multiplier(record)
        if largest is not None and largest > MULTIPLIER_BOUND:
            return f"collapsed to one class with multipliers up to {largest:.3g}"
    return None
