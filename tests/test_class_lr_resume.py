"""A class-lr run killed after it saved its state resumes to the record of an uninterrupted run.

The kill is simulated by an exception raised right after the n-th save: whatever a real kill
interrupts after that save is lost and redone, so the resumed run starts from exactly this state.
"""

from __future__ import annotations

import functools
import re

import pytest
import torch

from companion.class_lr import experiment, sweep

# Fields that say how a record was made, not what it found.
HOW_MADE = ("wall_time_s", "resumed_at_epochs")


class Killed(Exception):
    pass


def _kill_after_save(monkeypatch: pytest.MonkeyPatch, n: int) -> list[int]:
    """Make the n-th save (1-based) of the next run raise `Killed` once it is written."""
    saves: list[int] = []
    offer = experiment.Resumable.offer

    def offer_then_die(self: experiment.Resumable, state) -> None:  # noqa: ANN001
        before = self.last_save
        offer(self, state)
        if self.last_save != before:  # it saved
            saves.append(len(saves) + 1)
            if len(saves) == n:
                raise Killed

    monkeypatch.setattr(experiment.Resumable, "offer", offer_then_die)
    return saves


@functools.cache
def _uninterrupted(configs: tuple[experiment.UCIRunConfig, ...]) -> tuple[dict, ...]:
    """The records of a run that saves nothing (computed once per module: a run is a pure
    function of its configs, and the tests only read these records)."""
    return tuple(experiment.run_cutoffs(list(configs), save_every_s=None))


def _what_it_found(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in HOW_MADE}


def _cutoff_configs(**overrides) -> list[experiment.UCIRunConfig]:
    # Two cutoffs of one group: class-lr epochs 1-2, SGD 3-6 (cutoff 2); class-lr 3-4, SGD 5-6.
    return [experiment.make_config("car", "selu", "class_lr", profile="smoke", cutoff=cutoff,
                                   epochs=6, **overrides) for cutoff in (2, 4)]


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


# 10 saves in all: 1-2 class-lr of cutoff 2, 3-6 its SGD, 7-8 class-lr to cutoff 4, 9-10 its SGD.
@pytest.mark.parametrize("kill_at", [1, 2, 3, 6, 7, 8, 9])
def test_killed_cutoff_group_resumes_to_the_same_records(results, monkeypatch, kill_at):
    configs = _cutoff_configs()
    uninterrupted = _uninterrupted(tuple(configs))
    saved = experiment.state_path(configs)

    _kill_after_save(monkeypatch, kill_at)
    with pytest.raises(Killed):
        experiment.run_cutoffs(configs, save_every_s=0)
    assert saved.is_file()
    monkeypatch.undo()
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(results))
    resumed = experiment.run_cutoffs(configs, save_every_s=0)

    assert [_what_it_found(r) for r in resumed] == [_what_it_found(r) for r in uninterrupted]
    # the segment that was cut says at which epoch it went on
    cut = 0 if kill_at <= 6 else 1
    assert [("resumed_at_epochs" in r) for r in resumed] == [i == cut for i in range(2)]
    assert "resumed_at_epochs" not in uninterrupted[0]
    assert not saved.exists()  # removed once the records are made


def test_killed_retry_resumes_with_the_retried_alpha(results, monkeypatch):
    # alpha_mu 1e7 overflows on car; the retry at 1e6 trains to the end.
    configs = [experiment.make_config("car", "selu", "class_lr", profile="smoke", cutoff=2,
                                      epochs=4, alpha_mu=1e7, alpha_retries=1)]
    uninterrupted = experiment.run_cutoffs(configs, save_every_s=None)
    assert [a["alpha_mu"] for a in uninterrupted[0]["attempts"]] == [1e7]
    assert uninterrupted[0]["alpha_mu_used"] == 1e6 and uninterrupted[0]["test_accuracy"]

    saves = _kill_after_save(monkeypatch, 10**6)  # count the saves of a whole run first
    experiment.run_cutoffs(configs, save_every_s=0)
    assert saves, "the run saved nothing: nothing to resume from"
    _kill_after_save(monkeypatch, len(saves))  # die at the last save, in the retry
    with pytest.raises(Killed):
        experiment.run_cutoffs(configs, save_every_s=0)
    monkeypatch.undo()
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(results))
    resumed = experiment.run_cutoffs(configs, save_every_s=0)
    assert _what_it_found(resumed[0]) == _what_it_found(uninterrupted[0])


def test_killed_baseline_resumes_to_the_same_record(results, monkeypatch):
    config = experiment.make_config("titanic", "relu", profile="smoke", epochs=5)
    uninterrupted = experiment.run(config, save_every_s=None)
    _kill_after_save(monkeypatch, 3)
    with pytest.raises(Killed):
        experiment.run(config, save_every_s=0)
    monkeypatch.undo()
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(results))
    resumed = experiment.run(config, save_every_s=0)
    assert _what_it_found(resumed) == _what_it_found(uninterrupted)
    assert resumed["resumed_at_epochs"] == [3]


def test_a_state_of_other_code_or_a_broken_file_is_refused(results, monkeypatch):
    configs = _cutoff_configs()
    _kill_after_save(monkeypatch, 1)
    with pytest.raises(Killed):
        experiment.run_cutoffs(configs, save_every_s=0)
    monkeypatch.undo()
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(results))
    saved = experiment.state_path(configs)

    state = torch.load(saved, weights_only=True)
    state["settings"]["code_fingerprint"] = "0" * 16
    torch.save(state, saved)
    with pytest.raises(RuntimeError, match="delete it"):
        experiment.run_cutoffs(configs, save_every_s=0)
    # a sweep stops before it starts anything and says where the state could be resumed
    written = saved.read_bytes()
    with pytest.raises(RuntimeError, match="nothing was started") as refused:
        sweep.run_configs(configs)
    assert str(saved) in str(refused.value) and "no recent commit has that code" in str(
        refused.value)
    assert saved.read_bytes() == written and not list(results.rglob("*.json"))
    assert sweep.missing(configs)["saved state"][0].startswith(
        "selu class_lr: made by other run code (00000000)")

    saved.write_bytes(b"half a file")
    with pytest.raises(RuntimeError, match="delete it"):
        experiment.run_cutoffs(configs, save_every_s=0)
    experiment.run_cutoffs(configs, save_every_s=None)  # does not save: leaves it alone
    assert saved.read_bytes() == b"half a file"
    saved.unlink()
    assert len(experiment.run_cutoffs(configs, save_every_s=0)) == 2


def test_short_runs_write_no_state(results):
    config = experiment.make_config("car", "tanh", profile="smoke")
    experiment.run(config)  # the default: a save every SAVE_EVERY_S seconds at most
    assert not list(results.rglob("*.checkpoint.pt*"))


def test_the_missing_table_says_where_a_saved_group_stands(results, monkeypatch):
    configs = _cutoff_configs()
    assert sweep.missing(configs)["saved state"].tolist() == [""]
    _kill_after_save(monkeypatch, 3)  # the first SGD epoch after cutoff 2: epoch 3
    with pytest.raises(Killed):
        experiment.run_cutoffs(configs, save_every_s=0)
    table = sweep.missing(configs)
    [state] = table["saved state"].tolist()
    assert re.fullmatch(r"selu class_lr: epoch 3, cutoff 2 \(alpha_mu 1e\+05\), about "
                        r"\d+\.\d h left at \d+ s a plain epoch", state)
    monkeypatch.undo()
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(results))
    uninterrupted = _uninterrupted(tuple(configs))
    experiment.state_path(configs).unlink()  # start afresh
    _kill_after_save(monkeypatch, 7)  # cutoff 2 has ended; the class-lr epoch 3 of cutoff 4
    with pytest.raises(Killed):
        experiment.run_cutoffs(configs, save_every_s=0)
    done = f"{100 * uninterrupted[0]['test_accuracy']:.2f}%"
    [state] = sweep.missing(configs)["saved state"].tolist()
    assert state.startswith(
        f"selu class_lr: cutoff 2 done: {done}; epoch 3, cutoff 4 (alpha_mu 1e+05), about ")
    saved = experiment.state_path(configs)
    saved.write_bytes(b"torn")
    assert "unreadable" in sweep.missing(configs)["saved state"][0]


def test_states_of_one_cutoff_jobs_are_listed_and_a_whole_group_refuses_to_overwrite_them(
        results, monkeypatch):
    configs = _cutoff_configs()  # cutoffs 2 and 4: `--cutoffs 2` and `--cutoffs 4` jobs
    for job in ([configs[1]], [configs[0]]):
        with monkeypatch.context() as dying:
            _kill_after_save(dying, 1)
            with pytest.raises(Killed):
                experiment.run_cutoffs(job, save_every_s=0)
    # cutoff 2's job saves where the whole group does; cutoff 4's beside its own record
    assert experiment.state_path([configs[0]]) == experiment.state_path(configs)
    [listed] = sweep.missing(configs)["saved state"].tolist()
    first, second = listed.split("; ")
    assert first.startswith("selu class_lr (the job of cutoff 2 alone): epoch 1, cutoff 2 ")
    assert second.startswith("selu class_lr (the job of cutoff 4 alone): epoch 1, cutoff 4 ")
    # listed as one-cutoff sweeps list them, the state is their own: no label
    assert sweep.missing([configs[1]])["saved state"][0].startswith(
        "selu class_lr: epoch 1, cutoff 4 ")

    # the whole group would fail on cutoff 2's state hours in; the sweep says so up front
    saved = experiment.state_path(configs)
    written = saved.read_bytes()
    with pytest.raises(sweep.StaleSavedStates, match="nothing was started") as refused:
        sweep.run_configs(configs)
    assert "the job of cutoff 2 alone" in str(refused.value)
    assert "`--cutoffs 2`" in str(refused.value)
    assert saved.read_bytes() == written and not list(results.rglob("*.json"))
    # ...while the one-cutoff jobs resume to the records an uninterrupted group makes
    uninterrupted = _uninterrupted(tuple(configs))
    for i, job in enumerate(configs):
        [record] = sweep.run_configs([job])  # written: it carries its schema and checksum
        written_fields = {"schema_version", "record_sha256"}
        assert {k: v for k, v in _what_it_found(record).items() if k not in written_fields
                } == _what_it_found(uninterrupted[i])
        assert record["resumed_at_epochs"] == [1]
    assert not list(results.rglob("*.checkpoint.pt*"))


def test_time_left_counts_the_epochs_of_the_branch_in_training_and_of_those_after_it(
        results, monkeypatch):
    configs = _cutoff_configs()  # 6 epochs, cutoffs 2 and 4
    asked = []
    monkeypatch.setattr(sweep, "_time_left", lambda progress, trained, left: asked.append(
        (trained, left)) or "")
    for kill_at in (3, 7):  # epoch 3 of cutoff 2's SGD; epoch 3, class lr towards cutoff 4
        with monkeypatch.context() as dying:
            _kill_after_save(dying, kill_at)
            with pytest.raises(Killed):
                experiment.run_cutoffs(configs, save_every_s=0)
        sweep.missing(configs)
        experiment.state_path(configs).unlink()
    # (class-lr, plain) epochs. Cutoff 2 at epoch 3: trained 2 + 1; left its SGD epochs 4-6,
    # then cutoff 4's branch from epoch 2: class lr to 4, SGD to 6. Cutoff 4 (its branch from
    # epoch 2) at epoch 3: trained 1 class-lr epoch; left epoch 4 with class lr, 5-6 without
    assert asked == [((2, 1), (2, 3 + 2)), ((1, 0), (1, 2))]
    monkeypatch.undo()


def test_time_left_prices_a_class_lr_epoch_at_several_plain_ones():
    cost = sweep.CLASS_LR_EPOCH_COST
    assert sweep._time_left({"elapsed": 300.0}, (0, 3), (0, 36)) == (
        ", about 1.0 h left at 100 s a plain epoch")
    # 30 class-lr epochs at cost x 100 s and 40 plain ones at 100 s: the plain rate, 100 s,
    # not the 100 x (30 cost + 40) / 70 s that one average over all epochs would say
    elapsed = 30 * cost * 100 + 40 * 100
    assert sweep._time_left({"elapsed": elapsed}, (30, 40), (0, 30)) == (
        ", about 0.8 h left at 100 s a plain epoch")
    hours = (20 * cost + 10) * 100 / 3600  # 20 class-lr epochs still to go, then 10 plain
    assert sweep._time_left({"elapsed": elapsed}, (30, 40), (20, 10)) == (
        f", about {hours:.1f} h left at 100 s a plain epoch")
    assert cost > 1  # so those 20 class-lr epochs weigh more than 20 plain ones would
    assert sweep._time_left({"elapsed": 300.0}, (0, 0), (2, 36)) == ""  # no epoch yet
