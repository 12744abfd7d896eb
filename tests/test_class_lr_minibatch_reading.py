"""The reading study's rule (companion.class_lr.minibatch_reading) on made-up accuracies."""

import numpy as np
import pytest
from scipy import stats

from companion.class_lr import minibatch_reading
from companion.class_lr.registry import paper_value

# ringnorm tanh: the paper's change is 91.24 - 91.86 = -0.62 points.
PAPER_CHANGE = paper_value(2, "ringnorm", "tanh", "class_lr") - paper_value(
    2, "ringnorm", "tanh", "baseline")
BASELINE = {0: 92.0, 1: 92.5, 2: 92.2}
CONTROL = {"per_sample": 3.2, "class_gradient": 3.1}


def _frame(settled, other=None):
    """Class-lr accuracies by seed under the settled reading and (if given) the other one."""
    class_lr = {("ringnorm", "tanh", "class_gradient"): dict(enumerate(settled))}
    if other is not None:
        class_lr["ringnorm", "tanh", "per_sample"] = dict(enumerate(other))
    return minibatch_reading.cells({("ringnorm", "tanh"): BASELINE}, class_lr)


def test_cells_pair_each_reading_with_the_baseline_by_seed():
    frame = _frame([95.0, 95.5, 95.2], [92.0, 93.0, 92.4]).set_index("reading")
    changes = frame.loc["per_sample", "by seed"]
    assert changes == {0: pytest.approx(0.0), 1: pytest.approx(0.5), 2: pytest.approx(0.2)}
    assert frame.loc["per_sample", "change"] == pytest.approx(np.mean([0.0, 0.5, 0.2]))
    assert frame.loc["class_gradient", "change"] == pytest.approx(3.0)
    assert frame.loc["class_gradient", "paper change"] == pytest.approx(PAPER_CHANGE)
    sd = np.std([0.0, 0.5, 0.2], ddof=1)
    band = stats.t.ppf(0.975, 2) * sd * np.sqrt(1 + 1 / 3)
    assert frame.loc["per_sample", "band"] == pytest.approx(band)


def test_the_other_reading_explains_a_cell_it_moves_to_the_paper():
    frame = _frame([95.0, 95.5, 95.2], [92.0, 93.0, 92.4])  # changes +3.0 -> about +0.2
    assert minibatch_reading.explains(frame, "ringnorm", "tanh", CONTROL)
    explained, text = minibatch_reading.explanation(frame, "ringnorm", "tanh", CONTROL)
    assert explained and text.startswith("Eq. 6 reading (the paper's minibatch form is open)")
    assert "with per_sample our class-lr change is +0.2" in text
    assert "explains 1 of 1" in minibatch_reading.describe(frame, CONTROL)


def test_no_explanation_when_elsewhere_worse_the_move_is_noise_or_runs_are_missing():
    frame = _frame([95.0, 95.5, 95.2], [92.0, 93.0, 92.4])
    worse = {"per_sample": 4.2, "class_gradient": 3.1}  # loses a point on the Eq. 6 cells
    assert not minibatch_reading.explains(frame, "ringnorm", "tanh", worse)
    explained, text = minibatch_reading.explanation(frame, "ringnorm", "tanh", worse)
    assert not explained and text.startswith("the other Eq. 6 reading (per_sample")
    # The paper's change within a wide band, but the paired difference's interval holds 0.
    noisy = _frame([95.0, 92.5, 95.2], [98.0, 88.0, 92.4])
    assert noisy.set_index("reading").loc["per_sample", "paper within band"]
    assert not minibatch_reading.explains(noisy, "ringnorm", "tanh", CONTROL)
    waiting = _frame([95.0, 95.5, 95.2])
    assert minibatch_reading.explanation(waiting, "ringnorm", "tanh", CONTROL) is None
    assert "1 not run yet" in minibatch_reading.describe(waiting, CONTROL)


def test_a_reading_with_fewer_than_three_seeds_is_not_weighed():
    frame = _frame([95.0, 95.5, 95.2], [92.0, 93.0])  # the study's third seed still running
    assert minibatch_reading.explanation(frame, "ringnorm", "tanh", CONTROL) is None
    assert "explains 0 of 0" in minibatch_reading.describe(frame, CONTROL)
