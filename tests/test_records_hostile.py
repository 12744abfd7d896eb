"""Hostile but fair uses of records, configs, caches and checkpoints (issue 10's cases)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from companion import provenance, records, scheduling, validation
from companion.class_lr import experiment, sweep
from companion.data import npz_cache, uci
from companion.fixed_classifier import experiment as cifar_experiment
from companion.fixed_classifier.training import Trainer, TrainingSettings


def _fake_record(config) -> dict:
    return {"config": records.config_dict(config), "experiment": "test",
            "test_accuracy": 0.5, "history": {"loss": [1.0, 0.5]}, "pid": os.getpid()}


def fake_group(configs):
    return [_fake_record(c) for c in configs]


def _grid():
    return sweep.configs(["car", "titanic"], ["selu"], profile="smoke")


# ---- records ----------------------------------------------------------------------------------

def test_record_copied_to_another_configs_name_is_not_used(uci_dir):
    car, titanic = _grid()
    scheduling.run_sweep([car], fake_group, "t", progress=False)
    source, target = records.record_path("t", car), records.record_path("t", titanic)
    target.write_bytes(source.read_bytes())  # car's accuracy under titanic's name
    with pytest.warns(records.RecordWarning, match="foreign record"):
        assert records.recorded("t", [titanic]) == []
    with pytest.warns(records.RecordWarning, match=str(target.name)):
        found = scheduling.run_sweep([titanic], fake_group, "t", progress=False)
    assert found[0]["config"]["dataset"] == "titanic"
    assert len(list((target.parent / "quarantine").iterdir())) == 1  # moved aside, kept


def test_edited_record_is_refused_and_rerun(uci_dir):
    config = _grid()[0]
    path = records.record_path("t", config)
    scheduling.run_sweep([config], fake_group, "t", progress=False)
    record = json.loads(path.read_text())
    assert record["schema_version"] == records.SCHEMA_VERSION
    for field in ("git_commit", "torch_version", "python_version", "torch_threads", "device",
                  "code_fingerprint", "cpu", "numpy_version"):
        assert field in record
    record.update(test_accuracy=0.99, torch_version="9.9", git_commit="0" * 40)
    path.write_text(json.dumps(record))
    with pytest.warns(records.RecordWarning, match="edited"):
        found = scheduling.run_sweep([config], fake_group, "t", progress=False)
    assert found[0]["test_accuracy"] == 0.5


@pytest.mark.parametrize("content", ["", '{"config": {"dataset": "car"', "[1, 2]",
                                     '{"config": {}, "test_accuracy": NaN}'])
def test_truncated_empty_or_nan_record_is_named_moved_aside_and_rerun(uci_dir, content):
    config = _grid()[0]
    path = records.record_path("t", config)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.warns(records.RecordWarning, match=str(path)):
        found = scheduling.run_sweep([config], fake_group, "t", progress=False)
    assert found[0]["test_accuracy"] == 0.5
    (moved,) = (path.parent / "quarantine").iterdir()
    assert moved.read_text() == content and not moved.name.endswith(".json")


def test_old_records_without_schema_version_are_read_unchanged():
    folder = Path(__file__).resolve().parents[1] / "results" / "class-lr-uci-paper"
    # The first committed record written before schema versions existed (new records have one).
    path = next(p for p in sorted(folder.glob("*.json")) if b'"schema_version"' not in
                p.read_bytes())
    before = path.read_bytes()
    record = records.read_record(path)
    assert "schema_version" not in record and path.read_bytes() == before
    assert provenance.code_status(record, "class-lr-uci-paper") in ("this code", "other code")


def test_temporary_files_never_match_the_record_pattern(monkeypatch, tmp_path):
    seen = []
    original = os.replace

    def spy(source, target):
        seen.append(Path(source).name)
        original(source, target)

    monkeypatch.setattr(records.os, "replace", spy)
    records.write_json_atomic(tmp_path / "abc.json", {"a": 1})
    assert seen and not any(Path(name).match("*.json") for name in seen)


def test_nan_never_reaches_a_json_file(tmp_path):
    with pytest.raises(ValueError, match=r"history\.loss\.1 is NaN"):
        records.write_json_atomic(tmp_path / "x.json", {"history": {"loss": [1.0, math.nan]}})
    assert not list(tmp_path.iterdir())


# ---- configs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("epochs", 0, "positive integer"), ("epochs", -1, "positive integer"),
    ("batch_size", 0, "positive integer"), ("batch_size", 32.5, "positive integer"),
    ("batch_size", "32", "positive integer"), ("learning_rate", math.nan, "finite number"),
    ("learning_rate", "0.01", "finite number"), ("max_train_samples", 0, "positive integer"),
    ("dropout", 1.5, "< 1"), ("seed", -3, ">= 0"), ("split", "x", "one of"),
])
def test_bad_uci_field_gets_one_clear_error(uci_dir, field, value, allowed):
    with pytest.raises(validation.ConfigError, match=f"{field}: must be .*{allowed}"):
        experiment.make_config("car", "selu", **{field: value})


def test_every_bad_field_is_listed():
    with pytest.raises(validation.ConfigError) as error:
        experiment.make_config("car", "selu", epochs=-1, batch_size=0.5, learning_rate=math.inf)
    assert len(str(error.value).splitlines()) == 4


def test_new_uci_fields_have_rules():
    rules = validation.UCI_RUN_RULES
    assert rules["init"]("he") is None and rules["init"]("xavier") is not None
    assert rules["alpha_retries"](None) is None and rules["alpha_retries"](11) is not None
    assert rules["original_test_scaling"]("raw") is not None


def test_test_file_scaling_needs_the_original_split(uci_dir):
    with pytest.raises(validation.ConfigError, match="split='original' only"):
        experiment.make_config("car", "selu", original_test_scaling="standardised")
    config = experiment.make_config("image-segmentation", "selu", split="original")
    assert config.original_test_scaling is None  # as shipped: older records keep their hash
    assert records.config_hash(config) != records.config_hash(
        replace(config, original_test_scaling="standardised"))


@pytest.mark.parametrize(("field", "value"), [("epochs", -1), ("epochs", "ten"),
                                              ("batch_size", 0), ("momentum", math.nan),
                                              ("max_test_samples", 0)])
def test_bad_cifar_field_gets_one_clear_error(field, value):
    with pytest.raises(validation.ConfigError, match=f"{field}: must be"):
        cifar_experiment.make_config("learned", profile="smoke", **{field: value})


# ---- caches -----------------------------------------------------------------------------------

@pytest.fixture
def own_cache(tmp_path, monkeypatch, uci_dir):
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path))
    uci.arrays("car")
    return tmp_path / "uci" / "car.npz"


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_corrupt_uci_cache_is_named_moved_aside_and_rebuilt(own_cache, damage):
    good = uci.arrays("car")
    content = own_cache.read_bytes()
    own_cache.write_bytes({"truncate": content[: len(content) // 2], "empty": b"",
                           "garbage": b"\x80not a zip" * 10}[damage])
    with pytest.warns(npz_cache.CacheWarning, match=str(own_cache)):
        rebuilt = uci.arrays("car")
    assert all(np.array_equal(good[k], rebuilt[k]) for k in good)
    assert len(list(own_cache.parent.glob("car.npz.bad-*"))) == 1


def test_edited_cache_with_a_valid_key_is_rebuilt(own_cache):
    good = uci.arrays("car")
    edited = dict(np.load(own_cache))
    edited["y"] = np.zeros_like(edited["y"])  # same key and digest field, other labels
    np.savez(own_cache, **edited)
    with pytest.warns(npz_cache.CacheWarning, match="does not match its digest"):
        assert np.array_equal(uci.arrays("car")["y"], good["y"])


def test_one_bad_data_set_does_not_stop_the_others(own_cache, monkeypatch):
    def broken(name, allow_download):
        raise uci.MalformedDataError(f"/somewhere/{name}.dat: line 3 has 2 columns")

    monkeypatch.setattr(uci, "_parse", broken)
    (own_cache.parent / "titanic.npz").unlink(missing_ok=True)
    with pytest.warns(npz_cache.CacheWarning, match="titanic.dat"):
        assert not uci.is_available("titanic")
    assert uci.is_available("car")


# ---- checkpoints ------------------------------------------------------------------------------

class _Planted:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["PLANTED_MARKER"]),))


def test_planted_checkpoint_cannot_run_code(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("PLANTED_MARKER", str(marker))
    checkpoint = tmp_path / "run.checkpoint.pt"
    torch.save({"settings": _Planted()}, checkpoint)
    settings = TrainingSettings(epochs=1, batch_size=4, learning_rate=0.1, lr_milestones=(1,),
                                lr_decay=0.1, momentum=0.9, weight_decay=0.0,
                                decay_scale_and_bias=True, log_interval=1, seed=0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
    images = np.zeros((4, 8, 8, 3), np.uint8)
    labels = np.zeros(4, np.int64)
    trainer = Trainer(model, settings, (images, labels), (images, labels),
                      ((0.5,) * 3, (0.25,) * 3), checkpoint=checkpoint)
    with pytest.raises(RuntimeError, match="cannot read the checkpoint"):
        trainer.load_checkpoint()
    assert not marker.exists()


# ---- concurrent and interrupted sweeps ----------------------------------------------------------

SWEEP_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from companion import records, scheduling
    from companion.class_lr import sweep

    def slow_group(configs):
        with open(os.environ["RUN_LOG"], "a") as log:
            log.write("".join(f"{records.config_hash(c)} {os.getpid()}\\n" for c in configs))
        time.sleep(float(os.environ["RUN_SECONDS"]))
        return [{"config": records.config_dict(c), "experiment": "t"} for c in configs]

    grid = sweep.configs(["car", "titanic", "led-display"], ["selu", "relu"], profile="smoke")
    scheduling.run_sweep(grid, slow_group, "t", n_jobs=int(sys.argv[1]), progress=False)
""")


def _start_sweep(tmp_path, n_jobs, seconds):
    script = tmp_path / "sweep_script.py"
    script.write_text(SWEEP_SCRIPT)
    env = {**os.environ, "RUN_LOG": str(tmp_path / "runs.log"), "RUN_SECONDS": str(seconds)}
    return subprocess.Popen([sys.executable, str(script), str(n_jobs)], env=env)


def test_two_sweeps_into_one_directory_share_the_work(tmp_path, uci_dir):
    sweeps = [_start_sweep(tmp_path, 1, 0.5) for _ in range(2)]
    assert [s.wait(timeout=240) for s in sweeps] == [0, 0]
    runs = [line.split()[0] for line in (tmp_path / "runs.log").read_text().splitlines()]
    assert len(runs) == 6 and len(set(runs)) == 6  # every run once
    folder = records.results_dir() / "t"
    assert len(records.load_records("t")) == 6
    assert not [p for p in folder.iterdir() if p.name.startswith(".") and p.is_file()]


def test_killed_sweep_leaves_no_workers(tmp_path, uci_dir):
    log = tmp_path / "runs.log"
    process = _start_sweep(tmp_path, 2, 600)
    deadline = time.time() + 120
    while time.time() < deadline and len(_pids(log)) < 2:
        time.sleep(0.5)
    workers = _pids(log)
    assert len(workers) == 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.5)
    assert not any(_alive(pid) for pid in workers)


def _pids(log: Path) -> set[int]:
    lines = log.read_text().splitlines() if log.exists() else []
    return {int(line.split()[1]) for line in lines}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


# ---- determinism: a committed record, rerun ------------------------------------------------------

# image-segmentation, tanh baseline, paper profile (about 1 s alone, with 1 thread)
RERUN_RECORD = (Path(__file__).resolve().parents[1]
                / "results/class-lr-uci-paper/3a7af3b66ffda949.json")


def _rerun_with_one_thread(record: dict) -> dict:
    """A fresh record of `record`'s config, as JSON reads it back, trained with one thread."""
    from companion import verify

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return json.loads(json.dumps(verify.rerun([record])[0]))
    finally:
        torch.set_num_threads(threads)


def test_a_committed_record_reruns_to_its_results(uci_dir):
    """Bit for bit where the record was made on this kind of processor; elsewhere float32 sums
    round differently (the committed record's losses differ by up to 8.6e-8 on an Intel family
    6 model 207), so only the results shown (accuracies, predictions) must be equal."""
    from companion import provenance, verify

    committed = records.read_record(RERUN_RECORD)
    fresh = _rerun_with_one_thread(committed)
    status, found = verify.verdict(committed, fresh)
    if committed.get("cpu") == provenance.cpu_description():
        assert status == "identical", found
    assert status in ("identical", "same results"), found
    for field in ("test_accuracy", "val_accuracy", "test_correct"):
        assert fresh[field] == committed[field]
    assert fresh["history"]["val_accuracy"] == committed["history"]["val_accuracy"]


def test_a_run_is_bit_for_bit_deterministic_on_one_machine(uci_dir):
    """The same config twice here: every field, losses included, equal to the last bit."""
    from companion import verify

    committed = records.read_record(RERUN_RECORD)
    first, second = _rerun_with_one_thread(committed), _rerun_with_one_thread(committed)
    assert verify.verdict(first, second) == ("identical", [])
    assert first["cpu"] == second["cpu"] and "torch" in first["cpu"]


def test_a_record_reruns_with_its_own_commits_code(uci_dir):
    """`verify.rerun_with_code` runs the code of the record's commit (2026-11-21, before
    provenance fields and `run_group` existed) on this processor: it computes the committed
    results, and what this checkout's code computes here, so a record that reran differently
    could only have met another processor, not other code."""
    from companion import verify

    committed = records.read_record(RERUN_RECORD)
    commit = verify.own_code_commit(committed, [committed])
    assert commit == committed["git_commit"]
    [own] = verify.rerun_with_code(commit, [committed])
    assert "code_fingerprint" not in own  # the old code ran, not this one
    assert verify.verdict(committed, own)[0] in ("identical", "same results")
    run = [(RERUN_RECORD, committed, _rerun_with_one_thread(committed))]
    assert verify.own_code_status(run, commit) == {"commit": commit, "status": "identical"}
    assert "no commit" in verify.own_code_status(run, None)["why"]
    # made from an uncommitted edit that no commit holds: the commit it was made on stands in,
    # marked, since the edit is not in it
    edited = {**committed, "git_commit": commit + "-dirty"}
    assert verify.own_code_commit(edited, [edited]) is None
    assert verify.base_commit(edited) == commit
    assert verify.own_code_check([(RERUN_RECORD, edited, run[0][2])], [edited]) == {
        "commit": commit, "status": "identical", "base_of_uncommitted_edit": True}
    assert verify.base_commit(committed) is None  # clean: its own commit, no stand-in
    assert verify.base_commit({"git_commit": "0" * 40 + "-dirty"}) is None  # not in this clone


def test_a_committed_context_record_reruns(uci_dir):
    """`make verify` reruns the GBT / RF context records too (through their own module)."""
    from companion import verify

    folder = Path(__file__).resolve().parents[1] / "results/context-uci-paper"
    path, committed = min(((p, records.read_record(p)) for p in folder.glob("*.json")),
                          key=lambda item: item[1]["wall_time_s"])
    [(_, status, found)] = list(verify.verify([(path, committed)]))
    assert status in ("identical", "same results"), found


def test_a_rounding_drift_is_told_apart_from_a_changed_result():
    from companion import verify

    old = {"test_accuracy": 0.75, "test_correct": "1101", "neuron_specialization": {"overall": 0.1},
           "history": {"train_loss": [2.3, 1.9], "test_accuracy": [0.5, 0.75]},
           "multiplier_trace": [{"mean": 143.90}], "diverged": False, "wall_time_s": 3.0,
           "cpu": "A"}
    assert verify.verdict(old, {**old, "wall_time_s": 9.0, "cpu": "B"}) == ("identical", [])
    drifted = {**old, "history": {**old["history"], "train_loss": [2.3 + 8.6e-8, 1.9]},
               "multiplier_trace": [{"mean": 143.9025}]}
    status, found = verify.verdict(old, drifted)
    assert status == "same results" and found == [
        "history.train_loss: 1 of 2 values differ, by up to 8.6e-08",
        "multiplier_trace[0].mean: 143.9 committed, 143.9025 now (difference 0.0025)"]
    for changed in ({"test_correct": "1100"}, {"test_accuracy": 0.75 + 1 / 105},
                    {"neuron_specialization": {"overall": 0.1 + 1e-9}},
                    {"history": {**old["history"], "test_accuracy": [0.5, 0.7]}},
                    {"diverged": True}):
        assert verify.verdict(old, {**old, **changed})[0] == "differs", changed
    # this code no longer records the per-epoch test accuracy: a rerun without it agrees ...
    retired = {**old, "history": {"train_loss": old["history"]["train_loss"]}}
    assert verify.verdict(old, retired) == ("identical", [])
    # ... but a result field that is still recorded must be there
    with_val = {**old, "history": {**old["history"], "val_accuracy": [0.4, 0.7]}}
    assert verify.verdict(with_val, {**with_val, "history": old["history"]})[0] == "differs"


def test_two_runs_that_diverge_in_the_same_epoch_have_the_same_outcome():
    """A blow-up amplifies rounding: on another processor the overflow may come a few batches
    earlier, after a different path; the outcome (diverged, in that epoch) is what is shown."""
    from companion import verify

    old = {"test_accuracy": None, "diverged": True, "n_test": 100,
           "first_nonfinite": {"epoch": 8, "batch": 12, "batches": 15},
           "history": {"train_loss": [2.3, 1.9], "test_accuracy": [0.5, 0.75]}}
    path = {**old, "first_nonfinite": {**old["first_nonfinite"], "batch": 8},
            "history": {"train_loss": [2.3, 2.0], "test_accuracy": [0.5, 0.52]}}
    status, found = verify.verdict(old, path)
    assert status == "same outcome" and len(found) == 3
    for changed in ({"first_nonfinite": {**old["first_nonfinite"], "epoch": 7}},
                    {**path, "diverged": False, "test_accuracy": 0.5},
                    {**path, "n_test": 99}):
        assert verify.verdict(old, {**old, **changed})[0] == "differs", changed
    trained = {**old, "diverged": False}
    assert verify.verdict(trained, {**path, "diverged": False})[0] == "differs"


def _versioned(dataset, method, seed, fingerprint, seconds, cutoff=None, device="cpu"):
    """A class-lr-uci record of run code `fingerprint` (version 2) that took `seconds`."""
    from synthetic_records import class_lr_record

    record = class_lr_record(dataset, "selu", method, seed, [1, 0], cutoff=cutoff)
    return {**record, "experiment": "class-lr-uci", "code_fingerprint": fingerprint,
            "code_fingerprint_version": provenance.FINGERPRINT_VERSION,
            "wall_time_s": seconds, "device": device}


def test_per_version_reruns_the_cheapest_run_of_each_earlier_version_and_method(tmp_path):
    from companion import verify

    this = provenance.code_fingerprint("class-lr-uci")
    found = [_versioned("car", "baseline", 0, "old-a", 5.0),
             _versioned("car", "baseline", 1, "old-a", 2.0),  # the cheapest of old-a
             *[_versioned("car", "class_lr", 0, "old-a", 3.0 + c / 10, cutoff=c)
               for c in (10, 20, 30)],  # one run: its three cutoffs train together
             *[_versioned("car", "class_lr", 1, "old-a", 9.0, cutoff=c) for c in (10, 20, 30)],
             _versioned("car", "baseline", 2, "old-b", 2000.0),  # too slow to rerun
             _versioned("car", "baseline", 3, "old-c", 1.0, device="NVIDIA H200"),
             _versioned("car", "baseline", 4, this, 0.1)]  # this code: nothing to check
    paths = [tmp_path / f"{i}.json" for i in range(len(found))]
    chosen, skipped = verify.by_version(list(zip(paths, found)), max_seconds=900)
    assert [(r["config"]["method"], r["config"]["seed"]) for _, r in chosen] == [
        ("baseline", 1), ("class_lr", 0), ("class_lr", 0), ("class_lr", 0)]
    assert {r["config"]["cutoff"] for _, r in chosen[1:]} == {10, 20, 30}
    assert skipped == {("class-lr-uci", "v2:old-b"): "cheapest run 2000 s",
                       ("class-lr-uci", "v2:old-c"): "trained on a GPU"}
    assert verify.version({"git_commit": "abc-dirty"}) == "commit:abc-dirty"
    assert verify._short("commit:" + "a" * 40 + "-dirty") == "commit:" + "a" * 12 + "-dirty"
    assert verify.version({"code_fingerprint": "f1"}) == "v1:f1"  # before version 2


def test_the_verification_report_says_which_earlier_versions_compute_the_same(tmp_path):
    from companion import verify

    report = tmp_path / "verification.json"
    found = [_versioned("car", "baseline", s, f"old-{v}", 1.0) for s, v in enumerate("abcd")]
    paths = [tmp_path / "class-lr-uci-paper" / f"{s}.json" for s in range(4)]
    assert "has not rerun" in verify.summary(found, report)
    verify.write_report([(paths[0], found[0], "identical", [], None),
                         (paths[1], found[1], "same results", ["history.train_loss: ..."], None),
                         (paths[2], found[2], "differs",
                          ["history.test_accuracy: ...", "test_accuracy: ..."], None)],
                        {("class-lr-uci", "v2:old-d"): "cheapest run 2000 s"}, report)
    text = verify.summary(found, report)
    assert text.startswith("They come from 4 earlier versions of the run code")
    assert ("for 2 versions (2 records) the reruns gave the committed results (1 identical, "
            "1 same results)") in text
    assert "for 1 version (1 record) they did not: v2:old-c" in text
    assert "not rerun: v2:old-d (cheapest run 2000 s)" in text
    saved = json.loads(report.read_text())
    assert saved["reruns"]["class-lr-uci-paper/2.json"]["status"] == "differs"
    # the record's own fields come first: its final accuracy before its history
    assert saved["reruns"]["class-lr-uci-paper/2.json"]["differences"] == [
        "test_accuracy: ...", "history.test_accuracy: ..."]
    # a record that differs while its own code computes here what this code does: processor
    verify.write_report([(paths[2], found[2], "differs", ["test_accuracy: ..."],
                          {"commit": "abc", "status": "identical"})], {}, report)
    assert "for 3 versions (3 records) the reruns gave" in verify.summary(found, report)
    assert f"1 {verify.PROCESSOR}" in verify.summary(found, report)
    # ...while only the commit its uncommitted edit was made on does: not cleared, explained
    base = {"commit": "abc", "status": "identical", "base_of_uncommitted_edit": True}
    verify.write_report([(paths[2], found[2], "differs", ["test_accuracy: ..."], base)], {},
                        report)
    text = verify.summary(found, report)
    assert "for 1 version (1 record) they did not: v2:old-c (1 version (1 record) made from " \
           "uncommitted edits, whose base commits compute here" in text
    reruns = json.loads(report.read_text())["reruns"]
    assert verify._outcome(reruns["class-lr-uci-paper/2.json"]) == verify.EDIT_OR_PROCESSOR
    # a rerun whose own code was not found is redone once the edit's base commit is here
    no_commit = {**reruns["class-lr-uci-paper/2.json"], "own_code": {"why": verify.NO_COMMIT}}
    entries = {"class-lr-uci-paper/2.json": no_commit}
    head = provenance.git_commit().removesuffix("-dirty")
    assert not verify._settled(paths[2], {"git_commit": head + "-dirty"}, entries, tmp_path)
    assert verify._settled(paths[2], {"git_commit": head}, entries, tmp_path)
    assert verify._settled(paths[2], {"git_commit": head + "-dirty"},
                           {"class-lr-uci-paper/2.json": reruns["class-lr-uci-paper/2.json"]},
                           tmp_path)
    verify.write_report([(paths[2], found[2], "differs", ["test_accuracy: ..."],
                          {"commit": "abc", "status": "identical"})], {}, report)
    saved = json.loads(report.read_text())
    # another version of the run code makes the entries stale: they no longer count
    stale = {k: {**e, "rerun_code": "other"} for k, e in saved["reruns"].items()}
    report.write_text(json.dumps({**saved, "reruns": stale}))
    assert "has not rerun" in verify.summary(found, report)
    this = provenance.code_fingerprint("class-lr-uci")
    assert verify.summary([_versioned("car", "baseline", 0, this, 1.0)], report) is None


# ---- Dask -------------------------------------------------------------------------------------

def test_sweep_on_a_dask_local_cluster_records_every_run_once(tmp_path, uci_dir, monkeypatch):
    """Two sweeps at once send the same grid to a two-worker LocalCluster."""
    from concurrent.futures import ThreadPoolExecutor

    from distributed import LocalCluster

    log = tmp_path / "runs.log"
    monkeypatch.setenv("RUN_LOG", str(log))
    grid = sweep.configs(["car", "titanic"], ["selu", "tanh"], profile="smoke")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        with ThreadPoolExecutor(2) as pool:
            done = list(pool.map(lambda _: scheduling.run_sweep(
                grid, logged_group, "t", progress=False, scheduler=address), range(2)))
    runs = log.read_text().splitlines()
    assert sorted(runs) == sorted(records.config_hash(c) for c in grid)  # each run once
    assert done[0] == done[1] and len(records.load_records("t")) == len(grid)
    folder = records.results_dir() / "t"
    assert not [p for p in folder.iterdir() if p.is_file() and not p.name.endswith(".json")]


def logged_group(configs):
    with open(os.environ["RUN_LOG"], "a") as log:
        log.write("".join(f"{records.config_hash(c)}\n" for c in configs))
    time.sleep(0.3)
    return fake_group(configs)


def test_records_of_other_code_are_marked_not_dropped(uci_dir):
    from companion.class_lr import tables

    config = experiment.make_config("car", "selu", profile="smoke")
    (record,) = sweep.run_configs([config])
    assert provenance.code_status(record, record["experiment"]) == "this code"
    assert tables.code_summary([record]).startswith("Run code: all 1 records")
    older = {k: v for k, v in record.items() if k != "code_fingerprint"}
    older["git_commit"] = "0" * 40  # a commit this clone does not have
    table = tables.build([older], 2, covered=["car"])
    assert table.loc["Car", ("SELU", "ours")] == pytest.approx(100 * record["test_accuracy"])
    assert tables.code_summary([record, older]).startswith("Run code: 1 of 2 records (car) were")


def test_a_sweep_keeps_the_thread_budget_it_was_started_with(tmp_path, monkeypatch, uci_dir):
    """OMP_NUM_THREADS=1 (torch's budget 1) means one thread per run, even with one worker;
    two workers split a budget of 2."""
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    seen = []

    def group_noting_threads(configs):
        seen.append(torch.get_num_threads())
        return fake_group(configs)

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        scheduling.run_sweep(_grid()[:1], group_noting_threads, "threads", n_jobs=1,
                             progress=False)
        assert seen == [1]
        torch.set_num_threads(2)
        assert scheduling.threads_per_worker(2) == 1 and scheduling.threads_per_worker(1) == 2
    finally:
        torch.set_num_threads(threads)


def test_the_fingerprint_covers_run_code_and_no_presentation():
    names = {p.relative_to(provenance.PACKAGE).as_posix()
             for p in provenance.run_code_files("class-lr-uci-paper")}
    assert {"class_lr/capture.py", "class_lr/optimizer.py", "class_lr/fused_update.cpp",
            "data/uci.py", "statistics.py"} <= names
    assert not names & {"class_lr/verdict.py", "class_lr/findings.py", "class_lr/tables.py",
                        "comparisons.py", "scorecard.py", "site.py", "records.py",
                        "class_lr/batch_size.py", "class_lr/minibatch_reading.py"}
    assert not any(n.startswith("fixed_classifier/") for n in names)
    # What the runs import: run code, or plumbing that only validates configs and writes
    # records. A presentation module imported by a run would escape the fingerprint.
    script = textwrap.dedent("""
        import sys
        import companion.class_lr.context, companion.class_lr.experiment
        import companion.fixed_classifier.experiment, companion.fixed_classifier.imagenet
        import companion.fixed_classifier.lm_experiment
        print("\\n".join(m.__file__ for n, m in sys.modules.items()
                        if n.startswith("companion") and getattr(m, "__file__", None)))
    """)
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True).stdout.split()
    escaped = {Path(f).name for f in loaded} & provenance.NOT_RUN_CODE
    assert escaped <= provenance.PLUMBING, escaped


def test_version_1_fingerprints_are_recomputed_from_the_commits():
    # Stamped by version-1 code: records of 056924a (clean) carry 40dcb4d5eba2333d, and the
    # 128 records of the lent H200, made on an uncommitted tree at 56449e9, carry it too.
    at_056924a = "056924af78b8ad7b1644e48c5458dfdfe94b89db"
    assert provenance._fingerprint_at(at_056924a, "class-lr-uci-paper", 1) == "40dcb4d5eba2333d"
    base = "56449e9a1f9621823096c7e9ccfb89830e9ab708"
    assert provenance._fingerprint_at(base, "class-lr-uci-paper", 1) == "fc30d144a4081f5f"
    record = {"git_commit": base + "-dirty", "code_fingerprint": "40dcb4d5eba2333d"}
    assert provenance.run_code_commit(record, "class-lr-uci-paper") == at_056924a
    unknown = {**record, "code_fingerprint": "0" * 16}
    assert provenance.run_code_commit(unknown, "class-lr-uci-paper") is None
    assert provenance.code_status(unknown, "class-lr-uci-paper") == "other code"
    current = {**record, "code_fingerprint_version": provenance.FINGERPRINT_VERSION}
    # a version-2 fingerprint is looked up among version-2 fingerprints: none is this one
    assert provenance.run_code_commit(current, "class-lr-uci-paper") is None


def test_the_newest_commit_of_a_fingerprint_is_found_for_a_saved_state():
    # 1315b8838813e53b is the class-lr run code from bed82b2 to af4999e (2026-12-06/07); the
    # commit after af4999e dropped the per-epoch test evaluation
    found = provenance.latest_commit_of_fingerprint("1315b8838813e53b", "class-lr-uci-paper",
                                                    depth=5000)
    assert found == "af4999e439853cd836cf0d6f9fabcf0074009570"
    assert provenance.latest_commit_of_fingerprint("0" * 16, "class-lr-uci-paper",
                                                   depth=20) is None
