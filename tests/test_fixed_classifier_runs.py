"""CIFAR runs of the fixed-classifier paper: augmentation, schedule, records, resumable sweeps.

Runs train ResNet-8 on small generated data sets (canonical CIFAR pickles or image folders in
a temporary directory), a second or two each.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from companion import records
from companion.fixed_classifier import experiment, figures, sweep, tables
from companion.fixed_classifier.augment import (
    CHANNEL_STATISTICS,
    channel_statistics,
    normalize,
    random_crop_flip,
    statistics_for,
)
from companion.fixed_classifier.devices import resolve_device
from companion.fixed_classifier.networks import count_parameters
from companion.fixed_classifier.training import (
    Trainer,
    TrainingSettings,
    balanced_subset,
    learning_rate_at,
    parameter_groups,
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COMPANION_PROFILE", raising=False)
    torch.set_num_threads(1)  # runs are deterministic for a given thread count


def _add(tar: tarfile.TarFile, name: str, payload: dict) -> None:
    content = pickle.dumps({k.encode(): v for k, v in payload.items()}, protocol=2)
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def fake_cifar(path: Path, classes: int = 10, train: int = 60, test: int = 40) -> Path:
    """A canonical CIFAR-10 (or, with 100 classes, CIFAR-100) archive of random images."""
    rng = np.random.default_rng(classes)
    rows = {"train": rng.integers(0, 256, (train, 3072), dtype=np.uint8),
            "test": rng.integers(0, 256, (test, 3072), dtype=np.uint8)}
    labels = {split: [i % classes for i in range(len(r))] for split, r in rows.items()}
    with tarfile.open(path, "w:gz") as tar:
        if classes == 10:
            parts = np.array_split(np.arange(train), 5)
            for index, part in enumerate(parts, start=1):
                _add(tar, f"cifar-10-batches-py/data_batch_{index}",
                     {"data": rows["train"][part], "labels": [labels["train"][i] for i in part]})
            _add(tar, "cifar-10-batches-py/test_batch",
                 {"data": rows["test"], "labels": labels["test"]})
            _add(tar, "cifar-10-batches-py/batches.meta",
                 {"label_names": [f"c{i}".encode() for i in range(10)]})
        else:
            for split in ("train", "test"):
                _add(tar, f"cifar-100-python/{split}",
                     {"data": rows[split], "fine_labels": labels[split]})
            _add(tar, "cifar-100-python/meta",
                 {"fine_label_names": [f"c{i}".encode() for i in range(classes)]})
    return path


@pytest.fixture
def cifar10_archive(tmp_path) -> str:
    return str(fake_cifar(tmp_path / "fake-cifar10.tar.gz"))


def smoke_config(archive: str, classifier: str = "fixed", **overrides) -> experiment.CIFARRunConfig:
    settings = {"epochs": 2, "batch_size": 16, "max_train_samples": None,
                "max_test_samples": None, "log_interval": 2, "data_source": archive}
    return experiment.make_config(classifier, profile="smoke", **{**settings, **overrides})


# ---------------------------------------------------------------- augmentation


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_crop_and_flip_match_a_per_image_reference(dtype):
    images = torch.randint(0, 256, (64, 3, 32, 32)).to(dtype)
    out = random_crop_flip(images, torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)  # the same draws, in the same order
    offsets = torch.randint(0, 9, (2, 64), generator=generator)
    flips = torch.rand(64, generator=generator) < 0.5
    padded = F.pad(images, (4, 4, 4, 4))
    for i in range(64):
        window = padded[i, :, offsets[0, i]:offsets[0, i] + 32, offsets[1, i]:offsets[1, i] + 32]
        torch.testing.assert_close(out[i], window.flip(2) if flips[i] else window)
    assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)
    assert 10 < int(flips.sum()) < 54 and len(set(offsets[0].tolist())) > 4


def test_augmentation_follows_the_generator():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    first = random_crop_flip(images, torch.Generator().manual_seed(1))
    assert torch.equal(first, random_crop_flip(images, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, random_crop_flip(images, torch.Generator().manual_seed(2)))


def test_normalize_and_channel_statistics():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
        std).view(1, 3, 1, 1)
    torch.testing.assert_close(normalize(images, mean, std), expected)
    pixels = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
    computed = channel_statistics(pixels)
    np.testing.assert_allclose(computed[0], (pixels / 255).mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(computed[1], (pixels / 255).std(axis=(0, 1, 2)))
    assert statistics_for("cifar10", pixels) == CHANNEL_STATISTICS["cifar10"]
    assert statistics_for("pets", pixels) == computed


# ---------------------------------------------------------------- recipe


def test_balanced_subset():
    labels = np.repeat(np.arange(10), 50)
    chosen = balanced_subset(labels, 256, seed=0)
    assert len(chosen) == 256 and np.all(np.diff(chosen) > 0)
    assert set(np.bincount(labels[chosen]).tolist()) == {25, 26}
    np.testing.assert_array_equal(chosen, balanced_subset(labels, 256, seed=0))
    assert not np.array_equal(chosen, balanced_subset(labels, 256, seed=1))
    np.testing.assert_array_equal(balanced_subset(labels, None), np.arange(500))


def test_learning_rate_schedule():
    assert experiment.default_milestones(164) == (81, 122)
    assert experiment.default_milestones(10) == (5, 7)
    assert experiment.default_milestones(1) == (1, 1)  # one epoch at the initial lr
    settings = TrainingSettings(epochs=164, batch_size=128, learning_rate=0.1,
                                lr_milestones=(81, 122), lr_decay=0.1, momentum=0.9,
                                weight_decay=1e-4, decay_scale_and_bias=True, log_interval=1,
                                seed=0)
    rates = [learning_rate_at(settings, epoch) for epoch in (0, 80, 81, 121, 122, 163)]
    assert rates == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]


def test_profiles_and_config_checks():
    paper = experiment.make_config("fixed", profile="paper")
    assert (paper.network, paper.epochs, paper.lr_milestones) == ("resnet56", 164, (81, 122))
    assert (paper.batch_size, paper.learning_rate, paper.momentum, paper.weight_decay) == (
        128, 0.1, 0.9, 1e-4)
    assert paper.max_train_samples is None and paper.decay_scale_and_bias
    smoke = experiment.make_config("learned", profile="smoke")
    assert (smoke.network, smoke.epochs, smoke.max_train_samples) == ("resnet8", 2, 256)
    quick = experiment.make_config("hadamard", profile="quick", epochs=20)
    assert quick.lr_milestones == (10, 15)
    with pytest.raises(ValueError, match="fixed scale"):
        experiment.make_config("learned", scale=1.0)
    with pytest.raises(ValueError, match="classifier"):
        experiment.make_config("random")
    with pytest.raises(ValueError, match="resnet<6n\\+2>"):
        experiment.make_config(network="resnet9")
    grid = sweep.scale_configs("smoke")
    assert [c.scale for c in grid] == [0.1, 1.0, 10.0, None]
    assert grid[-1] == sweep.classifier_configs("smoke")[1]  # shared with Figures 1-2


def test_resnet8_parameter_counts():
    counts = {kind: count_parameters(experiment.build_model(
        experiment.make_config(kind, profile="smoke"), 10)) for kind in experiment.CLASSIFIERS}
    assert counts["fixed"] == counts["hadamard"] == counts["learned"] - 64 * 10 + 1
    fixed_scale = experiment.make_config("hadamard", 1.0, profile="smoke")
    assert count_parameters(experiment.build_model(fixed_scale, 10)) == counts["learned"] - 640


def test_weight_decay_groups():
    model = experiment.build_model(experiment.make_config("fixed", profile="smoke"), 10)
    (everything,) = parameter_groups(model, 1e-4, decay_scale_and_bias=True)
    assert any(p is model.fc.alpha for p in everything["params"])
    decayed, exempt = parameter_groups(model, 1e-4, decay_scale_and_bias=False)
    assert exempt["weight_decay"] == 0 and len(exempt["params"]) == 2
    assert {id(p) for p in exempt["params"]} == {id(model.fc.alpha), id(model.fc.bias)}
    assert len(decayed["params"]) + 2 == len(list(model.parameters()))


# ---------------------------------------------------------------- runs and records


def test_run_record(cifar10_archive):
    config = smoke_config(cifar10_archive)
    record = experiment.run(config)
    json.dumps(record, allow_nan=False)  # strict JSON: no NaN anywhere
    history, steps = record["history"], record["steps"]
    assert history["epoch"] == [1, 2] and history["learning_rate"] == [0.1, 0.001]
    for key in ("train_loss", "train_error", "test_loss", "test_error", "alpha",
                "feature_norm", "seconds"):
        assert len(history[key]) == 2, key
    assert record["steps_per_epoch"] == 4 and steps["step"] == [0, 2, 4, 6, 8]
    assert steps["alpha"][0] == 10.0 and len(steps["alpha"]) == 5
    assert steps["alpha"][-1] == history["alpha"][-1]
    assert record["test_accuracy"] == pytest.approx(1 - history["test_error"][-1], abs=1e-12)
    assert (record["n_train"], record["n_test"], record["classifier_features"]) == (60, 40, 64)
    correct = records.unpack_bits(record["test_correct"], 40)  # which test images were right
    assert correct.mean() == pytest.approx(record["test_accuracy"], abs=1e-12)
    assert record["experiment"] == "fixed-classifier-cifar10-smoke"
    assert record["config"] == json.loads(json.dumps(records.config_dict(config)))
    assert not record["diverged"] and record["torch_version"] == torch.__version__


def test_runs_are_deterministic_and_leave_the_global_rng_alone(cifar10_archive):
    config = smoke_config(cifar10_archive, "learned", epochs=1)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = experiment.run(config)
    assert torch.equal(torch.get_rng_state(), state)
    second = experiment.run(config)
    assert first["history"]["train_loss"] == second["history"]["train_loss"]
    assert first["steps"] == second["steps"]
    assert set(first["steps"]) == {"step", "weight_norm", "mean_row_norm"}


def test_fixed_scale_never_moves(cifar10_archive):
    record = experiment.run(smoke_config(cifar10_archive, "hadamard", scale=1.0, epochs=1))
    assert set(record["steps"]["alpha"]) == {1.0}
    assert "scale" in record["config"]


def test_diverged_runs_are_recorded_without_nan(cifar10_archive):
    record = experiment.run(smoke_config(cifar10_archive, "learned", learning_rate=1e30,
                                         epochs=3))
    assert record["diverged"] is True
    assert record["test_accuracy"] is None and record["test_error"] is None
    assert len(record["history"]["epoch"]) < 3
    json.dumps(record, allow_nan=False)


def test_a_killed_run_resumes_from_its_checkpoint(cifar10_archive, monkeypatch):
    config = smoke_config(cifar10_archive, "fixed", epochs=2)
    whole = experiment.run(config)
    checkpoint = experiment.checkpoint_path(config)
    assert not checkpoint.exists() and whole["resumed_after_epoch"] == 0

    original = Trainer.train_epoch

    def killed_in_epoch_two(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        experiment.run(config)
    assert checkpoint.exists()
    monkeypatch.setattr(Trainer, "train_epoch", original)
    resumed = experiment.run(config)
    assert resumed["resumed_after_epoch"] == 1 and not checkpoint.exists()
    for key in ("train_loss", "test_loss", "alpha", "feature_norm"):
        assert resumed["history"][key] == whole["history"][key], key
    assert resumed["steps"] == whole["steps"]


def test_unusable_checkpoints_are_refused(cifar10_archive):
    config = smoke_config(cifar10_archive, "learned", epochs=1)
    checkpoint = experiment.checkpoint_path(config)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="delete it"):
        experiment.run(config)
    torch.save({"settings": "other"}, checkpoint)
    with pytest.raises(RuntimeError, match="other settings"):
        experiment.run(config)


def test_sweep_writes_records_and_resumes(cifar10_archive, monkeypatch):
    grid = [smoke_config(cifar10_archive, kind, epochs=1) for kind in ("learned", "fixed")]
    found = sweep.run_configs(grid, n_jobs=1, threads_per_run=1, progress=False)
    folder = records.results_dir() / "fixed-classifier-cifar10-smoke"
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(
        f"{records.config_hash(c)}.json" for c in grid)
    assert [r["config"]["classifier"] for r in found] == ["learned", "fixed"]
    assert sweep.recorded(grid[::-1]) == found[::-1]
    assert sweep.recorded([smoke_config(cifar10_archive, "hadamard", epochs=1)]) == []

    def fail(config):
        raise AssertionError("ran again")

    monkeypatch.setattr(experiment, "run", fail)
    again = sweep.run_configs(grid, n_jobs=1, progress=False)
    assert again == found
    with pytest.raises(ValueError, match="one data set and profile"):
        sweep.experiment_name([grid[0], experiment.make_config(profile="quick")])


def test_cifar100_and_image_folder_runs(tmp_path):
    archive = str(fake_cifar(tmp_path / "fake-cifar100.tar.gz", classes=100, train=100, test=20))
    record = experiment.run(smoke_config(archive, "hadamard", dataset="cifar100", epochs=1,
                                         batch_size=50))
    assert len(record["classes"]) == 100 and record["experiment"].endswith("cifar100-smoke")
    assert record["parameters"] == count_parameters(experiment.build_model(
        experiment.make_config("learned", profile="smoke"), 100)) - 64 * 100 + 1
    root = tmp_path / "pets"
    for split, count in (("train", 6), ("test", 2)):
        for name in ("cat", "dog", "emu"):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = np.random.default_rng([i, len(name)]).integers(0, 256, (32, 32, 3))
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f"{i}.png")
    record = experiment.run(smoke_config(str(root), "fixed", dataset="pets", epochs=1))
    assert record["classes"] == ["cat", "dog", "emu"] and record["n_train"] == 18


# ---------------------------------------------------------------- tables and figures


def test_accuracy_table_and_figures(cifar10_archive):
    grid = [smoke_config(cifar10_archive, kind) for kind in experiment.CLASSIFIERS]
    runs = dict(zip(experiment.CLASSIFIERS, sweep.run_configs(grid, progress=False)))
    table = tables.accuracy_table(list(runs.values()))
    assert table.loc["ResNet56", "learned (ours)"] == round(
        100 * runs["learned"]["test_accuracy"], 2)
    assert (table.loc[table["dataset"] != "CIFAR-10", "fixed (ours)"] == tables.NEEDS_DATA).all()
    assert table.loc["ResNet56", "learned (paper)"] == tables.PAPER_TABLE1[0].learned_top1
    figure = figures.alpha_over_time({"fixed": runs["fixed"]}, runs["learned"])
    assert len(figure.axes) == 2 and figure.axes[0].get_xscale() == "log"
    figure = figures.error_curves(runs, reference_error=7.0)
    # three classifiers x (training, validation), one lr-drop marker (smoke: epoch 1), the 7% level
    assert figure.axes[0].get_yscale() == "log" and len(figure.axes[0].lines) == 6 + 1 + 1
    assert math.isfinite(figures.log_slope(runs["fixed"], first_epoch=0))
    # a subset of the classifiers: the others are "not run", the figures still draw
    partial = tables.accuracy_table([runs["learned"], runs["fixed"]])
    assert partial.loc["ResNet56", "hadamard (ours)"] == tables.NOT_RUN
    assert partial.loc["ResNet50", "hadamard (ours)"] == tables.NEEDS_DATA
    figure = figures.alpha_over_time({"fixed": runs["fixed"]}, None)
    assert figure.axes[0].get_legend() is not None and figure.axes[1].get_legend() is None
    assert [text.get_text() for text in figure.axes[1].texts] == ["no learned-classifier run"]


def test_accuracy_table_matches_networks_within_a_data_set():
    def record(dataset, network, classifier, accuracy):
        return {"config": {"dataset": dataset, "network": network, "classifier": classifier,
                           "scale": None, "epochs": 1, "profile": "paper"},
                "test_accuracy": accuracy, "n_train": 10, "n_test": 10_000}

    found = [record("cifar100", "resnet20", "fixed", 0.5),
             record("imagenet", "resnet50", "learned", 0.75),
             record("imagenet", "resnet50", "fixed", 0.74)]
    table = tables.accuracy_table(found)
    assert table.loc["DenseNet-BC(k=12)", "fixed (ours)"] == 50.0  # the data set's only row
    assert table.loc["DenseNet-BC(k=12)", "learned (ours)"] == tables.NOT_RUN
    assert "resnet20" in table.loc["DenseNet-BC(k=12)", "our run"]
    assert (table.loc["ResNet50", "learned (ours)"], table.loc["ResNet50", "fixed (ours)"]) == (
        75.0, 74.0)
    for other in ("DenseNet169", "ShuffleNet"):  # ImageNet has three rows: networks must match
        assert table.loc[other, "learned (ours)"] == tables.NOT_RUN
    assert table.loc["ResNet56", "learned (ours)"] == tables.NEEDS_DATA
    # test-set noise beside the accuracies: 75% on 10,000 images has SE sqrt(.75 * .25 / 1e4)
    resnet50 = table.loc["ResNet50"]
    assert resnet50["binomial SE (ours)"] == pytest.approx(0.43, abs=0.005)
    assert resnet50["fixed - learned (paper)"] == 0.0
    # -1 point, half-width 1.96 * sqrt(2) * 0.43 = 1.21
    assert resnet50["fixed - learned (ours, 95%)"] == "-1.00 [-2.21, +0.21] (Wald)"
    assert table.loc["DenseNet-BC(k=12)", "fixed - learned (ours, 95%)"] == tables.NOT_RUN
    assert table.loc["DenseNet-BC(k=12)", "fixed - learned (paper)"] == pytest.approx(-0.06)


def test_recorded_runs_reads_every_data_set(cifar10_archive):
    cifar100 = fake_cifar(Path(cifar10_archive).with_name("c100.tar.gz"), classes=100, train=100,
                          test=20)
    for config in (smoke_config(cifar10_archive, "fixed", epochs=1),
                   smoke_config(str(cifar100), "fixed", dataset="cifar100", epochs=1,
                                batch_size=50)):
        sweep.run_configs([config], progress=False)  # one sweep per data set
    found = tables.recorded_runs("smoke")
    assert {r["config"]["dataset"] for r in found} == {"cifar10", "cifar100"}
    assert tables.recorded_runs("paper", ["cifar100"]) == []


def test_config_overrides_and_output_suffix():
    assert sweep.config_overrides() == {}
    overrides = sweep.config_overrides("resnet20", 30)
    assert overrides == {"network": "resnet20", "epochs": 30}
    config = experiment.make_config("fixed", profile="paper", **overrides)
    assert (config.network, config.epochs, config.lr_milestones) == ("resnet20", 30, (15, 22))
    assert config.max_train_samples is None  # the paper profile's full training set
    assert sweep.output_suffix("paper", overrides) == "resnet20-30ep_paper"
    assert sweep.output_suffix("quick", {"epochs": 5}) == "5ep_quick"
    assert sweep.output_suffix("smoke", {}) == "smoke"
    with pytest.raises(ValueError, match="unknown network"):
        sweep.config_overrides("resnet21")
    with pytest.raises(ValueError, match="positive integer"):
        sweep.config_overrides(epochs=0)
    assert sweep.config_overrides(device="cuda") == {"device": "cuda"}


def test_training_device(cifar10_archive):
    config = smoke_config(cifar10_archive, "fixed", epochs=1)
    assert experiment.training_device(config) == resolve_device("auto")  # None: auto
    on_cpu = experiment.run(dataclasses.replace(config, device="cpu"))
    assert on_cpu["device"] == "cpu" and on_cpu["autocast"] is None
    if resolve_device("auto").type == "cpu":
        assert on_cpu["steps"] == experiment.run(config)["steps"]
    assert records.config_hash(config) != records.config_hash(
        dataclasses.replace(config, device="cpu"))  # a None field leaves old hashes alone
    with pytest.raises(ValueError, match="not a torch device"):
        experiment.training_device(dataclasses.replace(config, device="gpu7"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            experiment.run(dataclasses.replace(config, device="cuda"))


def test_sweep_command_line(cifar10_archive, capsys):
    arguments = ["--profile", "smoke", "--epochs", "1", "--classifiers", "learned", "fixed",
                 "--scales", "1", "--data-source", cifar10_archive]
    sweep.main(arguments)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["classifier"], line["scale"]) for line in lines] == [
        ("learned", None), ("fixed", None), ("fixed", 1.0)]
    assert all(0 <= line["test_accuracy"] <= 1 for line in lines)
    folder = records.results_dir() / "fixed-classifier-cifar10-smoke"
    assert len(list(folder.glob("*.json"))) == 3
    for wrong in (["--network", "resnet21"], ["--epochs", "0"], ["--device", "gpu7"]):
        with pytest.raises(SystemExit):
            sweep.main(["--profile", "smoke", *wrong])
