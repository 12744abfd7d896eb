"""The batch-size study's rule (companion.class_lr.batch_size) on made-up records."""

import pytest

from companion.class_lr import batch_size


def _records(dataset, activation, batch, accuracies):
    return [{"config": {"dataset": dataset, "activation": activation, "batch_size": batch,
                        "seed": seed},
             "test_accuracy": accuracy / 100, "diverged": False}
            for seed, accuracy in enumerate(accuracies)]


def _study(outlier_at_128, control_at_128):
    # image-segmentation SELU is an outlier cell of the study (the paper: 75.24), led-display
    # SELU a control (the paper: 70.0).
    return batch_size.cells(
        _records("image-segmentation", "selu", 32, [82.0, 81.0, 83.0])
        + _records("image-segmentation", "selu", 128, outlier_at_128)
        + _records("led-display", "selu", 32, [70.0, 69.6, 70.4])
        + _records("led-display", "selu", 128, control_at_128))


def test_a_batch_size_explains_a_cell_it_moves_to_the_paper_without_breaking_controls():
    frame = _study([76.0, 75.1, 76.9], [70.2, 69.8, 70.0])  # -6 points on every seed
    row = batch_size.explaining_row(frame, "image-segmentation", "selu")
    assert row is not None and row["batch size"] == 128
    explained, text = batch_size.explanation(frame, "image-segmentation", "selu")
    assert explained and text.startswith("batch size (the paper names none): at batch 128")
    assert "change of -6.0" in text
    assert "explains 1 of 1 outlier" in batch_size.describe(frame)
    assert batch_size.summary(frame).loc[128, "outlier: within"] == 1


def test_no_explanation_when_the_controls_break_or_the_move_is_noise():
    broken = _study([76.0, 75.1, 76.9], [66.0, 65.5, 66.4])  # controls lose 4 points
    assert batch_size.explaining_row(broken, "image-segmentation", "selu") is None
    explained, text = batch_size.explanation(broken, "image-segmentation", "selu")
    assert not explained and "no size both reaches" in text
    # Within a wide band of the paper, but the paired change's interval holds 0: not a move.
    noisy = _study([83.0, 70.0, 78.0], [70.2, 69.8, 70.0])
    outlier = noisy[noisy["dataset"] == "image-segmentation"].set_index("batch size")
    assert outlier.loc[128, "paper within band"]
    assert batch_size.explaining_row(noisy, "image-segmentation", "selu") is None
    assert batch_size.explanation(noisy, "car", "selu") is None  # not in the study


def test_cells_pair_seeds_and_skip_diverged_runs():
    found = _records("titanic", "relu", 64, [78.0, 79.0, 80.0])
    found[1]["diverged"] = True
    row = batch_size.cells(found).iloc[0]
    assert (row["seeds"], row["mean"], row["role"]) == (2, pytest.approx(79.0), "control")
    assert row["by seed"] == {0: pytest.approx(78.0), 2: pytest.approx(80.0)}
