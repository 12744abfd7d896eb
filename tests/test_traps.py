"""Parameters that used to be traps: each natural spelling does what a reader expects."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from companion import budget, records
from companion.class_lr import registry, sweep, tables
from companion.data import cifar
from companion.fixed_classifier import sweep as cifar_sweep
from companion.parameters import as_list

ROOT = Path(__file__).resolve().parents[1]


def test_a_single_string_is_a_one_element_list():
    assert as_list("car") == ["car"]
    assert as_list(["car", "titanic"]) == ["car", "titanic"]
    assert as_list(("a",)) == ["a"]
    assert as_list(1.0) == [1.0]
    assert as_list(None) is None


def test_class_lr_grid_takes_strings_where_lists_are_expected():
    one = sweep.configs("car", "tanh", "baseline", 0, "smoke")
    assert one == sweep.configs(["car"], ["tanh"], ["baseline"], [0], "smoke")
    assert len(one) == 1


def test_class_lr_grid_finishes_whole_seeds_of_a_data_set_first():
    grid = sweep.configs(["car", "titanic"], ["selu", "tanh"], ["baseline", "class_lr"],
                         [0, 1], "paper")
    assert len(grid) == 2 * 2 * 2 * (1 + 3)  # data sets x seeds x activations x configs
    order = [(c.dataset, c.seed) for c in grid]
    assert order == sorted(order, key=lambda key: (["car", "titanic"].index(key[0]), key[1]))
    first_seed = grid[:8]  # car seed 0: both activations, baseline and three cutoffs each
    assert {c.seed for c in first_seed} == {0} and {c.dataset for c in first_seed} == {"car"}
    assert {(c.activation, c.method) for c in first_seed} == {
        (a, m) for a in ("selu", "tanh") for m in ("baseline", "class_lr")}


def test_fixed_classifier_grids_take_a_single_classifier_or_scale():
    assert [c.classifier for c in cifar_sweep.classifier_configs("smoke", classifiers="fixed")] \
        == ["fixed"]
    assert [c.scale for c in cifar_sweep.scale_configs("smoke", 1.0)] == [1.0, None]


def test_paper_and_loader_names_are_both_accepted():
    assert registry.canonical_name("Cardiotocography_10clases") == "cardiotocography-10clases"
    assert registry.canonical_name("cardiotocography-10clases") == "cardiotocography-10clases"
    assert sweep.configs("Cardiotocography_10clases", "selu", profile="smoke") \
        == sweep.configs("cardiotocography-10clases", "selu", profile="smoke")
    assert sweep.dataset_names(["Car", "car"], "smoke") == ["car"]  # one run, not two
    with pytest.raises(ValueError, match="paper's names"):
        registry.canonical_name("no-such-set")


def test_a_subset_has_its_own_file_names_and_rows():
    assert sweep.output_suffix("paper", None) == "paper"
    assert sweep.output_suffix("paper", "Car") == "paper-car"
    many = sweep.output_suffix("paper", ["car", "titanic", "letter", "abalone"])
    assert many.startswith("paper-4-datasets-") and many != "paper"
    table = tables.build([], table=2, shown=["car", "Titanic"])
    assert list(table.index) == ["Car", "Titanic"]  # one naming: the paper's
    assert len(tables.build([], table=2)) == 45


def test_before_training_the_notebooks_say_how_many_runs_and_cpu_hours(uci_dir):
    grid = sweep.configs(["car", "titanic"], "tanh", profile="smoke")
    name = sweep.experiment_name(grid)
    assert budget.announce(name, grid).startswith("2 of 2 runs not recorded yet")
    assert "CPU-hours" in budget.announce(name, grid)
    records.write_json_atomic(records.record_path(name, grid[0]), {"config": {}})
    assert budget.announce(name, grid).startswith("1 of 2 runs")


def test_class_lr_cost_fit_is_a_median_regression_robust_to_slowed_runs():
    teraflops = np.linspace(0.1, 40.0, 41)
    seconds = 8.0 + 20.0 * teraflops
    seconds[::5] *= 3  # a fifth of the runs timed beside other jobs
    per_run, per_teraflop = budget.fit_class_lr_rates(teraflops, seconds)
    assert (per_run, per_teraflop) == pytest.approx((8.0, 20.0), rel=1e-3)
    least_squares = np.polyfit(teraflops, seconds, 1)[0]
    assert least_squares > 25  # the mean is dragged up by the slowed runs; the median is not
    with pytest.raises(ValueError, match="at least 3 runs"):
        budget.fit_class_lr_rates([1.0, 2.0], [3.0, 4.0])


def test_cifar_estimate_scales_the_measured_resnet20_rate():
    paper = cifar_sweep.classifier_configs("paper", classifiers="learned")
    expected = budget.RESNET20_SECONDS_PER_EPOCH * 9 / 3 * 164 / 3600  # ResNet-56: n = 9
    assert budget.cifar_cpu_hours(paper) == pytest.approx(expected)
    assert "3 of 3 runs" in budget.announce(cifar_sweep.experiment_name(
        cifar_sweep.classifier_configs("paper")), cifar_sweep.classifier_configs("paper"))


def test_cifar10_loads_from_the_data_cache_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("COMPANION_CIFAR10_JPG", raising=False)
    images = np.zeros((4, 32, 32, 3), np.uint8)
    labels = np.arange(4, dtype=np.int64) % 10
    stored = cifar.CIFARData(images, labels, images[:2], labels[:2],
                             tuple(f"c{i}" for i in range(10)), "cifar10-jpg.tar.gz")
    digest = cifar.manifest()["cifar10-jpg.tar.gz"]
    cifar._store(tmp_path / "cifar10" / f"cifar10-jpg-{digest[:16]}.npz", stored,
                 f"v{cifar.CACHE_VERSION}:{digest}:None")
    loaded = cifar.load("cifar10")  # no variable, no download: the cache
    assert loaded.train_x.shape == (4, 32, 32, 3) and loaded.classes == stored.classes


def test_make_lab_allows_root_only_for_root():
    shown = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout
    line = next(line for line in shown.splitlines() if "jupyter lab" in line)
    assert ("--allow-root" in line) == (os.geteuid() == 0)
