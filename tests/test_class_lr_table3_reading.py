"""The Table 3 reading probe (class_lr.table3_reading): what each reading measures, and that
the probe's runs are Table 2's runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from companion import records
from companion.class_lr import sweep, table3_reading
from companion.class_lr.models import SelfNormalizingMLP
from companion.statistics import neuron_specialization


def _net_and_data(activation: str, seed: int = 0):
    torch.manual_seed(seed)
    model = SelfNormalizingMLP(6, 3, layers=3, hidden=16, activation=activation)
    generator = np.random.default_rng(seed)
    y = generator.integers(0, 3, size=300)
    x = torch.tensor(generator.normal(size=(300, 6)) + 2.0 * y[:, None], dtype=torch.float32)
    return model, x, y


@pytest.mark.parametrize("activation", ["selu", "tanh"])
def test_strictly_increasing_activations_cannot_tell_the_readings_apart(activation):
    model, x, y = _net_and_data(activation)
    shares = table3_reading.shares(model, x, y, 3)
    # same ranks before and after a strictly increasing function, and no ties to correct
    assert shares["pre-activation"] == pytest.approx(shares["post-activation"])
    assert shares["post-activation, tie-corrected"] == pytest.approx(shares["post-activation"])
    assert shares["post-activation"] > 0  # the classes are separable: something is measured


def test_relu_readings_differ_and_the_post_reading_is_the_records_statistic():
    model, x, y = _net_and_data("relu")
    before, after = table3_reading.layer_values(model, x)
    assert all((a == np.maximum(b, 0)).all() for b, a in zip(before, after))
    assert np.mean([np.mean(a == 0) for a in after]) > 0.2  # ReLU zeros: ties
    shares = table3_reading.shares(model, x, y, 3)
    widths = np.array([a.shape[1] for a in after])
    records_reading = np.dot([neuron_specialization(a, y, 3) for a in after], widths)
    assert shares["post-activation"] == pytest.approx(100 * records_reading / widths.sum())
    # ties shrink the variance: the corrected test is never less significant
    assert shares["post-activation, tie-corrected"] >= shares["post-activation"]


def test_probe_runs_table2s_config_once_and_reads_it_back(uci_dir, monkeypatch):
    config = table3_reading.config("car", profile="smoke")
    assert (config.activation, config.method, config.seed, config.init) == (
        "relu", "baseline", 0, "he")
    # init "he" is the records' own config: the probe repeats the very run of Table 2
    assert config == sweep.configs(["car"], ["relu"], ["baseline"], [0], "smoke")[0]
    first, lecun = table3_reading.run_missing(["car"], profile="smoke")
    assert lecun["config"]["init"] == "lecun" and lecun["shares"] != first["shares"]
    assert set(first["shares"]) == set(table3_reading.READINGS)
    path = records.record_path(f"{table3_reading.EXPERIMENT}-smoke", config)
    assert json.loads(path.read_text())["shares"] == first["shares"]

    def no_training(*args, **kwargs):
        raise AssertionError("a recorded probe run must not train again")

    monkeypatch.setattr(table3_reading, "run", no_training)
    assert table3_reading.run_missing(["car"], profile="smoke")[0]["shares"] == first["shares"]
    frame = table3_reading.table([first, lecun])
    assert frame.loc["Car", "pre-activation, LeCun init"] == lecun["shares"]["pre-activation"]
    assert frame.loc["Car", "post-activation"] == first["shares"]["post-activation"]


def test_table_summary_and_verdict_from_records():
    def fake(dataset, post, corrected, pre):
        config = table3_reading.config(dataset)
        return {"config": records.config_dict(config), "constant_neurons": 1.0,
                "shares": {"post-activation": post, "post-activation, tie-corrected": corrected,
                           "pre-activation": pre}}

    # the paper's ReLU baselines: titanic 82.18, thyroid 45.72
    frame = table3_reading.table([fake("titanic", 60.0, 64.0, 80.0),
                                  fake("thyroid", 26.0, 30.0, 38.0)])
    assert frame.loc["Titanic", "pre-activation - paper"] == pytest.approx(80.0 - 82.18)
    assert list(frame.index) == ["Thyroid", "Titanic"]  # the paper's row order
    assert list(table3_reading.gaps(frame).columns) == [*table3_reading.READINGS,
                                                         "SELU, any reading (reference)"]
    assert table3_reading.gaps(frame).loc["Thyroid", "post-activation"] == pytest.approx(
        26.0 - 45.72)
    numbers = table3_reading.summary(frame)
    assert numbers.loc["post-activation", "mean |ours - paper|"] == pytest.approx(
        (22.18 + 19.72) / 2)
    assert numbers.loc["pre-activation", "ours below paper"] == 2
    text = table3_reading.describe(frame)
    assert "2 data sets" in text
    assert ("Closest to the paper: pre-activation, closer than the records' post-activation "
            "reading on 2 of 2 data sets (Wilcoxon p = ") in text
    assert table3_reading.describe(table3_reading.table([])).startswith("No probe records")
