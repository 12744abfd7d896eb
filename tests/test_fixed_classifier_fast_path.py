"""Device "auto", the committed records' hashes, the authors' regime, no per-step host sync."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from companion import records
from companion.fixed_classifier import experiment, sweep, tables
from companion.fixed_classifier.devices import autocast_name, resolve_device
from companion.fixed_classifier.resnet import cifar_resnet
from companion.fixed_classifier.training import Trainer, TrainingSettings, weight_decay_at

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "fixed-classifier-cifar10-paper"


def test_committed_records_keep_their_hashes():
    """The 30-epoch ResNet-20 runs are found from the notebooks' parameters, device auto."""
    names = {path.stem for path in COMMITTED.glob("*.json")}
    for kind in ("learned", "fixed"):
        for device in (None, "auto"):
            overrides = sweep.config_overrides("resnet20", 30, device)
            config = experiment.make_config(kind, profile="paper", **overrides)
            assert config.device is None and config.weight_decay_stop is None
            assert records.config_hash(config) in names, (kind, device)
    for path in COMMITTED.glob("*.json"):  # any later record too (e.g. a GPU's Hadamard run)
        stored = json.loads(path.read_text())["config"]
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()}
        assert records.config_hash(experiment.CIFARRunConfig(**fields)) == path.stem


def test_device_auto_is_the_default_and_an_explicit_device_wins():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device(None).type == resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert experiment.make_config(device="auto") == experiment.make_config()
    assert experiment.make_config().device is None
    assert sweep.config_overrides(device="auto") == {}
    assert experiment.make_config(device="cpu").device == "cpu"  # explicit: in the config
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu7")
    if not torch.cuda.is_available():
        assert autocast_name(resolve_device("auto")) is None
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    assert autocast_name(torch.device("cuda")) == "bfloat16"


def test_the_paper_profile_is_the_authors_regime():
    config = experiment.make_config("fixed", profile="paper")
    assert (config.network, config.epochs, config.batch_size) == ("resnet56", 164, 128)
    assert (config.learning_rate, config.lr_milestones, config.lr_decay) == (0.1, (81, 122), 0.1)
    assert (config.momentum, config.weight_decay) == (0.9, 1e-4)
    assert config.weight_decay_stop == 122 and config.decay_scale_and_bias  # alpha decayed too
    assert experiment.make_config(profile="paper", epochs=30).weight_decay_stop is None
    settings = experiment.training_settings(config)
    assert [weight_decay_at(settings, e, 1e-4) for e in (0, 121, 122, 163)] == [
        1e-4, 1e-4, 0.0, 0.0]


def _tiny_trainer(log_interval: int, **settings_overrides) -> Trainer:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 64).astype(np.int64)
    settings = TrainingSettings(epochs=2, batch_size=16, learning_rate=0.1, lr_milestones=(1,),
                                lr_decay=0.1, momentum=0.9, weight_decay=1e-4,
                                decay_scale_and_bias=True, log_interval=log_interval, seed=0,
                                **settings_overrides)
    torch.manual_seed(0)
    return Trainer(cifar_resnet(8, 10), settings, (images, labels), (images[:16], labels[:16]),
                   ((0.5,) * 3, (0.25,) * 3))


def test_weight_decay_is_switched_off_at_its_epoch():
    trainer = _tiny_trainer(log_interval=100, weight_decay_stop=1)
    trainer.train_epoch(0)
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 1e-4
    trainer.train_epoch(1)
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0.0


def test_no_host_sync_inside_an_epoch_except_at_log_points(monkeypatch):
    """bool/float/int/item of a tensor wait for the device: count them during an epoch."""
    calls = []
    for name in ("__bool__", "__float__", "__int__", "item"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name):
            calls.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counted)
    trainer = _tiny_trainer(log_interval=100)  # 4 steps, no log point inside the epoch
    calls.clear()
    assert trainer.train_epoch(0)
    at_epoch_end = len(calls)
    assert at_epoch_end <= 4  # finiteness, loss, errors, feature norm: once per epoch
    trainer = _tiny_trainer(log_interval=1)  # a log point after every step
    calls.clear()
    trainer.train_epoch(0)
    assert len(calls) > at_epoch_end + 4  # the log points do sync (alpha/weight norms, NaN)


def test_table1_finds_a_hadamard_record_made_on_a_gpu(tmp_path):
    """The committed CPU runs plus a Hadamard run of the same config with device "cuda"."""
    folder = records.results_dir() / "fixed-classifier-cifar10-paper"
    folder.mkdir(parents=True)
    for path in COMMITTED.glob("*.json"):
        (folder / path.name).write_text(path.read_text())
    overrides = sweep.config_overrides("resnet20", 30, None)  # Table 1's parameters
    grid = sweep.classifier_configs("paper", **overrides)
    on_gpu = experiment.make_config("hadamard", profile="paper", device="cuda", **overrides)
    committed = json.loads(next(COMMITTED.glob("*.json")).read_text())
    gpu_record = {**committed, "config": records.config_dict(on_gpu), "test_accuracy": 0.8512,
                  "device": "NVIDIA H100"}
    if not records.record_path("fixed-classifier-cifar10-paper", on_gpu).exists():
        records.write_json_atomic(records.record_path("fixed-classifier-cifar10-paper", on_gpu),
                                  gpu_record)
    found = sweep.read_or_run(grid, run_missing=False)
    assert [r["config"]["classifier"] for r in found] == ["learned", "fixed", "hadamard"]
    accuracy = tables.accuracy_table(found)
    row = accuracy.loc["ResNet56"]
    expected = {r["config"]["classifier"]: round(100 * r["test_accuracy"], 2) for r in found}
    assert {k: row[f"{k} (ours)"] for k in expected} == expected
    assert "resnet20" in row["our run"] and "30 epochs" in row["our run"]
