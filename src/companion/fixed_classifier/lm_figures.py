"""Tables, the perplexity plot and the verdict of the language-model notebook."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from companion.fixed_classifier.language_model import parameter_table

LABELS = {"learned": "learned", "tied": "tied to the embedding", "fixed": "fixed orthonormal",
          "hadamard": "fixed Hadamard", "pmi": "fixed PMI embeddings"}
PAPER_CLAIMS = {
    "fixed": "did poorly against the learned embedding (no number published)",
    "pmi": "much better than the random orthogonal layer (word2vec or PMI; no number published)",
}
CLEAR_MARGIN = 0.05  # relative perplexity difference called a difference in the verdict


def parameter_frame(vocab_size: int, embedding_size: int = 512, hidden_size: int = 512,
                    layers: int = 2) -> pd.DataFrame:
    """Trainable parameters per part and variant, in millions, with the share of the total."""
    table = parameter_table(vocab_size, embedding_size, hidden_size, layers)
    learned_total = table["learned"]["trainable"]
    rows = {}
    for variant, counts in table.items():
        rows[LABELS[variant]] = {
            "embedding (M)": counts["embedding"] / 1e6, "LSTM (M)": counts["lstm"] / 1e6,
            "classifier (M)": counts["classifier"] / 1e6,
            "trainable (M)": counts["trainable"] / 1e6,
            "fixed, not trained (M)": counts["fixed"] / 1e6,
            "trainable vs learned": counts["trainable"] / learned_total,
        }
    return pd.DataFrame(rows).T


def perplexity_curves(runs: dict[str, dict[str, Any]], title: str) -> plt.Figure:
    """Validation perplexity (log scale) against epochs, epoch 0 the untrained model."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for variant, record in runs.items():
        history = record["history"]
        epochs = [0, *history["epoch"]]
        values = [record["initial_valid_perplexity"], *history["valid_perplexity"]]
        axis.plot(epochs, values, marker="o", markersize=3, label=LABELS[variant])
    axis.set(yscale="log", xlabel="epoch", ylabel="validation perplexity", title=title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def final_table(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Test perplexity of the best-validation model, with what each variant trains."""
    rows = {}
    for variant, record in runs.items():
        alpha = [a for a in record["history"]["alpha"] if a is not None]
        rows[LABELS[variant]] = {
            "test perplexity": record["test_perplexity"],
            "best validation perplexity": record["valid_perplexity"],
            "untrained validation perplexity": record["initial_valid_perplexity"],
            "best epoch": record["best_epoch"],
            "trainable parameters": record["parameters"]["trainable"],
            "final alpha": alpha[-1] if alpha else None,
            "minutes": record["wall_time_s"] / 60,
        }
    return pd.DataFrame(rows).T


def _compare(ours: float, reference: float) -> str:
    ratio = ours / reference
    if ratio > 1 + CLEAR_MARGIN:
        return f"worse ({ratio:.2f}x the perplexity)"
    if ratio < 1 - CLEAR_MARGIN:
        return f"better ({ratio:.2f}x the perplexity)"
    return f"about the same ({ratio:.2f}x the perplexity)"


def verdict(runs: dict[str, dict[str, Any]], synthetic: bool) -> list[str]:
    """Sentences comparing the measured test perplexities with the paper's two claims."""
    test = {v: r["test_perplexity"] for v, r in runs.items() if r["test_perplexity"] is not None}
    lines = ["Test perplexity: " + ", ".join(f"{LABELS[v]} {p:.1f}" for v, p in test.items())
             + "."]
    if "learned" in test and "fixed" in test:
        found = _compare(test["fixed"], test["learned"])
        lines.append(f"Fixed orthonormal classifier vs learned: {found}; "
                     f"the paper: {PAPER_CLAIMS['fixed']}.")
    if "pmi" in test and "fixed" in test:
        found = _compare(test["pmi"], test["fixed"])
        lines.append(f"Fixed PMI embeddings vs fixed orthonormal: {found}; "
                     f"the paper: {PAPER_CLAIMS['pmi']}.")
    if "pmi" in test and "learned" in test:
        lines.append(f"Fixed PMI embeddings vs learned: {_compare(test['pmi'], test['learned'])}.")
    if synthetic:
        lines.append("These runs used a SYNTHETIC generated corpus: they test the code and show "
                     "the trends on a toy language, not WikiText-2 numbers.")
    return lines + verdict_lines(test, synthetic)


# The paper's two language-model claims: (variant, reference, the direction that reproduces it).
LM_CLAIMS = (("fixed", "learned", "worse", "a fixed orthonormal output layer does worse than a "
              "learned one"),
             ("pmi", "fixed", "better", "fixed PMI embeddings beat a fixed orthonormal layer"))


def verdict_lines(test: dict[str, float], synthetic: bool) -> list[str]:
    """One "Verdict on '<claim>': ..." line per claim whose two runs exist. Rule: reproduced
    when the perplexity ratio lies beyond CLEAR_MARGIN in the paper's direction, else not
    reproduced (one run each: no interval); a synthetic corpus leaves the claims untested."""
    lines = []
    for variant, reference, direction, claim in LM_CLAIMS:
        if variant not in test or reference not in test:
            continue
        found = _compare(test[variant], test[reference])
        if synthetic:
            word = f"NOT RUN HERE (synthetic corpus; ours there: {found})"
        else:
            word = "REPRODUCED" if found.startswith(direction) else "NOT REPRODUCED"
            word += f": {found}"
        lines.append(f"Verdict on '{claim}': {word}.")
    return lines


def variants_in(grid: Sequence[Any], found: Sequence[dict[str, Any]]) -> dict[str, dict]:
    """{variant: record} in grid order."""
    return {config.variant: record for config, record in zip(grid, found)}
