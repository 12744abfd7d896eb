import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from companion import outputs, records, scheduling
from companion.class_lr import experiment, registry, sweep, tables
from companion.class_lr.models import SelfNormalizingMLP, hidden_widths


def test_table1_registry():
    table = registry.table1()
    assert len(table) == 45 and "musk-2" not in table
    assert table["yeast"].layers == 32 and table["yeast"].shape == "conic"  # paper, not SNN repo
    assert table["wine-quality-red"].dropout == 0.05
    assert table["chess-krvk"] == registry.Architecture(
        "Chess_krvk", "chess-krvk", 32, 1024, "rectangular", 0.0
    )
    with pytest.raises(ValueError, match="abalone"):
        registry.architecture("nope")


def test_conic_widths_shrink_geometrically_toward_the_classes():
    widths = hidden_widths(layers=8, hidden=512, n_classes=2, shape="conic")
    assert widths[0] == 512 and len(widths) == 8
    ratios = np.array(widths[1:]) / np.array(widths[:-1])
    np.testing.assert_allclose(ratios, (2 / 512) ** (1 / 8), rtol=0.05)
    assert hidden_widths(3, 256, 10, "rectangular") == [256, 256, 256]
    with pytest.raises(ValueError):
        hidden_widths(3, 256, 10, "triangular")


def test_mlp_structure_and_init():
    torch.manual_seed(0)
    selu = SelfNormalizingMLP(20, 3, layers=4, hidden=512, activation="selu", dropout=0.05)
    relu = SelfNormalizingMLP(20, 3, layers=4, hidden=512, activation="relu", dropout=0.05)
    assert isinstance(selu.dropout, torch.nn.AlphaDropout)
    assert isinstance(relu.dropout, torch.nn.Dropout)
    assert len(selu.hidden_layers) == 4 and selu.output_layer.out_features == 3
    weight = selu.hidden_layers[1].weight  # LeCun normal: std 1/sqrt(fan_in)
    assert abs(weight.std().item() - 1 / math.sqrt(512)) < 0.002
    assert selu(torch.randn(5, 20)).shape == (5, 3)


def test_run_is_deterministic_and_complete(uci_dir):
    config = experiment.make_config("car", "relu", profile="smoke", seed=3)
    first, second = experiment.run(config), experiment.run(config)
    for key in ("history", "test_accuracy", "test_correct", "neuron_specialization"):
        assert first[key] == second[key]
    assert first["config"]["profile"] == "smoke" and first["config"]["activation"] == "relu"
    assert len(first["history"]["train_loss"]) == config.epochs
    assert len(first["test_correct"]) == first["n_test"] == 864
    assert first["test_accuracy"] == pytest.approx(first["test_correct"].count("1") / 864)
    assert len(first["neuron_specialization"]["per_layer"]) == 4
    assert first["torch_version"] == torch.__version__


def test_diverged_run_is_recorded_as_diverged(uci_dir):
    config = experiment.make_config("car", "selu", profile="smoke", learning_rate=1e12)
    record = experiment.run(config)
    assert record["diverged"] is True
    assert record["test_accuracy"] is None and record["test_correct"] is None
    json.dumps(record, allow_nan=False)  # no NaN sneaks into the JSON


def test_invalid_parameters_are_refused():
    with pytest.raises(ValueError, match="activation"):
        experiment.make_config("car", "gelu")
    with pytest.raises(ValueError, match="profile"):
        experiment.make_config("car", "selu", profile="huge")
    with pytest.raises(ValueError, match="cutoff"):
        experiment.make_config("car", "selu", method="class_lr")
    with pytest.raises(ValueError, match="method"):
        experiment.make_config("car", "selu", method="adam")


def test_config_hash_ignores_unset_optional_fields():
    config = experiment.make_config("car", "selu", profile="paper")
    assert config.max_train_samples is None
    assert "max_train_samples" not in records.config_dict(config)
    assert records.config_hash(config) != records.config_hash(
        experiment.make_config("car", "selu", profile="paper", seed=1)
    )


def test_sweep_skips_recorded_configs(uci_dir, monkeypatch):
    grid = sweep.configs(["car", "titanic"], ["selu"], profile="smoke")
    calls = []

    def counting_run(config):
        calls.append(config)
        return experiment.run(config)

    def counting_group(configs):
        return [counting_run(c) for c in configs]

    first = scheduling.run_sweep(grid, counting_group, "test-sweep", progress=False)
    again = scheduling.run_sweep(grid, counting_group, "test-sweep", progress=False)
    assert len(calls) == 2 and first == again
    stored = records.load_records("test-sweep")
    assert sorted(r["config"]["dataset"] for r in stored) == ["car", "titanic"]
    assert not list(records.results_dir().rglob(".tmp-*"))  # atomic writes leave no debris


def test_parallel_sweep_matches_serial(uci_dir):
    grid = sweep.configs(["titanic"], ["selu", "tanh"], profile="smoke")
    parallel = scheduling.run_sweep(grid, experiment.run_group, "test-parallel", n_jobs=2,
                                 progress=False)
    serial = [experiment.run(c) for c in grid]
    assert [r["test_correct"] for r in parallel] == [r["test_correct"] for r in serial]


def test_table_from_records_puts_ours_beside_paper(uci_dir):
    grid = sweep.configs(["car"], ["selu"], profile="smoke")
    runs = sweep.run_configs(grid)
    table = tables.build(runs, table=2, covered=["car"])
    assert len(table) == 45
    row = table.loc["Car"]
    assert row[("SELU", "ours")] == pytest.approx(100 * runs[0]["test_accuracy"])
    assert row[("SELU", "diff")] == pytest.approx(row[("SELU", "ours")] - 96.18)
    assert np.isnan(row[("ReLU", "ours")])
    assert table.loc["Connect_4", ("", "status")] == "no data file in our copy"
    assert table.loc["Letter", ("", "status")] == "no runs at this profile"
    # Beside every difference, the noise of the test set: its size and the binomial SE of an
    # accuracy at the paper's SELU value (96.18% on car's test rows).
    n_test = runs[0]["n_test"]
    assert row[("", "test rows")] == n_test
    assert row[("", "binomial SE")] == pytest.approx(100 * np.sqrt(0.9618 * 0.0382 / n_test))
    assert table.loc["Letter", ("", "test rows")] is pd.NA
    markdown = outputs.to_markdown(table)
    assert markdown.count("\n") == 47 and "| Car |" in markdown
    car = next(line for line in markdown.splitlines() if line.startswith("| Car |"))
    assert car.split(" | ")[2] == f"{n_test:,}"  # a count, without decimals
    letter = next(line for line in markdown.splitlines() if line.startswith("| Letter |"))
    assert letter.split(" | ")[2] == ""  # missing: blank


def test_listed_reads_a_mapping_or_series_in_order():
    import pandas as pd

    assert outputs.listed({"selu": "lecun", "relu": "he"}) == "selu lecun, relu he"
    assert outputs.listed(pd.Series({"per_sample": 11, "class_gradient": 5})) == \
        "per_sample 11, class_gradient 5"
    assert outputs.listed({}) == ""


def test_labels_of_neighbouring_outliers_do_not_share_a_line():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from companion.outputs import label_outliers

    x = pd.Series({"a": -5.6, "b": -5.4, "c": 0.0, "d": 0.1, "e": 2.0})
    y = pd.Series({"a": 0.25, "b": 0.20, "c": 0.0, "d": 0.1, "e": -3.0})
    figure, axis = plt.subplots()
    label_outliers(axis, x, y, x.abs() + y.abs(), count=3)
    texts = {t.get_text(): t for t in axis.texts}
    assert set(texts) == {"a", "b", "e"}
    # a and b are neighbours at the left edge: both to the right of their points, a line apart
    assert texts["a"].get_ha() == texts["b"].get_ha() == "left"
    assert texts["a"].xyann[1] - texts["b"].xyann[1] == 9
    assert texts["e"].get_ha() == "right"  # at the right edge, the label goes left
    plt.close(figure)


def test_a_long_label_is_not_pushed_past_the_left_edge():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from companion.outputs import label_outliers

    long_name = "Oocytes_merluccius_nucleus_4d"  # about 58% of a panel wide
    x = pd.Series({"Image_Segmentation": 0.50, long_name: 0.48, "c": 0.0, "d": 1.0})
    y = pd.Series({"Image_Segmentation": 0.50, long_name: 0.49, "c": 0.0, "d": 1.0})
    distance = pd.Series({"Image_Segmentation": 9.0, long_name: 8.0, "c": 0.0, "d": 0.0})
    figure, axis = plt.subplots()
    label_outliers(axis, x, y, distance, count=2)
    texts = {t.get_text(): t for t in axis.texts}
    # the second of two neighbours goes left when it fits there; this one fits on neither
    # side, so it is centred on its point, a line below its neighbour's label
    assert texts[long_name].get_ha() == "center"
    assert texts[long_name].xyann == (0, 4 - 9)
    plt.close(figure)
    # just right of the middle (Table 2's SELU+class lr panel) it is centred too, not pushed
    # left into the tick labels; near an edge it fits on the side away from that edge
    for position, side in ((0.52, "center"), (0.1, "left"), (0.9, "right")):
        x[long_name] = position
        figure, axis = plt.subplots()
        label_outliers(axis, x, y, distance, count=2)
        assert {t.get_text(): t.get_ha() for t in axis.texts}[long_name] == side, position
        plt.close(figure)


def test_device_summary_counts_where_records_trained():
    from companion.class_lr import tables

    cpu_only = [{"device": "cpu"}, {}]  # a record from before devices were recorded: a CPU
    assert tables.device_summary(cpu_only) == "Devices: all 2 records were trained on CPUs."
    mixed = cpu_only + [{"device": "NVIDIA H200"}] * 3
    line = tables.device_summary(mixed)
    assert line.startswith("Devices: 2 of 5 records were trained on CPUs, 3 on NVIDIA H200 (")
