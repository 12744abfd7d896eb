import pytest

from companion import scheduling
from companion.class_lr import experiment, sweep


def _configs(dataset="car", activation="selu", **overrides):
    return [experiment.make_config(dataset, activation, "class_lr", "smoke", cutoff=c,
                                   epochs=4, **overrides) for c in (1, 2, 3)]


def test_branched_cutoffs_equal_runs_from_scratch(uci_dir):
    grouped = experiment.run_cutoffs(_configs())
    alone = experiment.run(_configs()[1])
    for key in ("history", "test_correct", "test_accuracy", "neuron_specialization"):
        assert grouped[1][key] == alone[key]
    assert grouped[0]["history"]["train_loss"][:1] == grouped[2]["history"]["train_loss"][:1]
    assert grouped[0]["test_correct"] != grouped[2]["test_correct"]  # the cutoff matters
    assert grouped[1]["alpha_mu_used"] == 1e5 and grouped[1]["multiplier_mib"] > 0


def test_class_lr_config_follows_the_paper():
    config = experiment.make_config("letter", "relu", "class_lr", "paper", cutoff=20)
    assert (config.alpha_mu, config.cutoff, config.epochs) == (1e4, 20, 100)
    assert experiment.make_config("letter", "tanh", "class_lr", "paper", cutoff=10).alpha_mu == 1e5
    grid = sweep.configs(["car"], ["selu"], ["baseline", "class_lr"], profile="paper")
    assert [c.cutoff for c in grid] == [None, 10, 20, 30]


def test_a_sweep_can_take_some_cutoffs_only(uci_dir, capsys):
    grid = sweep.configs(["car"], ["selu"], ["baseline", "class_lr"], profile="paper",
                         cutoffs=[20])
    assert [(c.method, c.cutoff) for c in grid] == [("baseline", None), ("class_lr", 20)]
    assert grid[1] == experiment.make_config("car", "selu", "class_lr", "paper", cutoff=20)
    with pytest.raises(ValueError, match="at least one"):
        sweep.configs(["car"], ["selu"], ["class_lr"], profile="paper", cutoffs=[])
    arguments = ["--profile", "paper", "--datasets", "car", "--activations", "selu",
                 "--methods", "class_lr", "--missing"]
    sweep.main([*arguments, "--cutoffs", "10", "30"])
    assert "2 of 2 configs missing" in capsys.readouterr().out
    for wrong in (["--cutoffs", "200"], ["--cutoffs", "0"], ["--datasets", "no-such-set"]):
        with pytest.raises(SystemExit):  # a usage error that names the field, not a trace
            sweep.main([*arguments, *wrong])
        assert "error:" in capsys.readouterr().err


def test_divergence_divides_alpha_mu_by_ten(uci_dir):
    # On car, alpha_mu = 1e7 and 1e6 make the multipliers explode; 1e5 trains.
    recovered = experiment.run_cutoffs(_configs(alpha_mu=1e7, statistic="per_sample"))
    for record in recovered:
        assert not record["diverged"] and record["alpha_mu_used"] == pytest.approx(1e5)
    # three retries, then give up
    hopeless = experiment.run_cutoffs(_configs(alpha_mu=1e30, statistic="per_sample"))
    for record in hopeless:
        assert record["diverged"] and record["test_accuracy"] is None
        assert record["alpha_mu_used"] == pytest.approx(1e27)


def test_sweep_runs_cutoffs_as_one_group(uci_dir):
    grid = sweep.configs(["titanic"], ["tanh"], ["class_lr"], profile="smoke")
    calls = []

    def spy(configs):
        calls.append(len(configs))
        return experiment.run_group(configs)

    scheduling.run_sweep(grid, spy, "test-group", group_key=experiment.group_key, progress=False)
    assert calls == [len(experiment.CUTOFFS["smoke"])]


@pytest.mark.parametrize("activation", ["selu", "relu", "tanh"])
def test_class_lr_run_learns(uci_dir, activation):
    record = experiment.run(_configs(activation=activation)[2])
    assert not record["diverged"] and record["test_accuracy"] > 0.5
    history = record["history"]  # the test rows are evaluated once, after training
    assert set(history) == {"train_loss", "val_accuracy"}
    assert len(history["val_accuracy"]) == record["config"]["epochs"]
    assert record["val_accuracy"] == history["val_accuracy"][-1]


def _fake(dataset, activation, method, cutoff, val, correct):
    config = {"dataset": dataset, "activation": activation, "method": method, "seed": 0}
    if cutoff is not None:
        config["cutoff"] = cutoff
    return {"config": config, "diverged": False, "val_accuracy": val,
            "test_accuracy": correct.count("1") / len(correct), "test_correct": correct,
            "neuron_specialization": {"overall": 0.5}}


def test_cutoff_is_chosen_by_validation_and_tested_by_mcnemar():
    from companion.class_lr import tables

    runs = [
        _fake("car", "selu", "baseline", None, 0.8, "1" * 10 + "0" * 10),
        _fake("car", "selu", "class_lr", 10, 0.85, "1" * 20),  # best validation, tie broken
        _fake("car", "selu", "class_lr", 20, 0.85, "0" * 20),  # by the earlier cutoff
        _fake("car", "selu", "class_lr", 30, 0.70, "1" * 19 + "0"),
    ]
    chosen = tables.selected(runs)
    assert chosen[("car", "selu", "class_lr", 0)]["config"]["cutoff"] == 10
    tests = tables.mcnemar_tests(runs)
    row = tests.iloc[0]
    assert (row["baseline_only_right"], row["class_lr_only_right"]) == (0, 10)
    assert row["change"] == pytest.approx(50.0) and row["p_value"] == pytest.approx(2 / 1024)
    assert row["paper_change"] == pytest.approx(0.0)  # Car SELU: 96.18 both
    counts = tables.outcome_counts(tests)
    assert counts.loc["selu", "significantly better"] == 1
    assert tables.paper_outcome_counts().loc["selu", ["better", "worse", "equal"]].tolist() == [
        21, 14, 10]


def test_a_sweep_on_a_device_this_machine_lacks_stops_before_any_run(tmp_path, uci_dir,
                                                                     monkeypatch):
    """`--device cuda` without a GPU: a clear error and no record; with one, the GPU run's
    record states its device and keeps the CPU run's data split (same test rows)."""
    import torch

    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    grid = sweep.configs(["car"], ["relu"], ["baseline", "class_lr"], [0], "smoke")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU here"):
            sweep.run_configs(grid, device="cuda")
        assert not list(tmp_path.rglob("*.json"))
        with pytest.raises(SystemExit):
            sweep.main(["--profile", "smoke", "--datasets", "car", "--device", "cuda"])
        return
    on_gpu = sweep.run_configs(grid, device="cuda")
    on_cpu = [experiment.run(config) for config in grid]
    for gpu, cpu in zip(on_gpu, on_cpu):
        assert gpu["device"] == torch.cuda.get_device_name() and cpu["device"] == "cpu"
        assert gpu["n_test"] == cpu["n_test"] and gpu["config"] == cpu["config"]
        assert abs(gpu["test_accuracy"] - cpu["test_accuracy"]) < 0.1


def test_missing_lists_what_has_no_record_and_runs_nothing(tmp_path, uci_dir, monkeypatch, capsys):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    grid = sweep.configs(["car"], ["relu"], ["baseline", "class_lr"], [0, 1], "smoke")
    before = sweep.missing(grid)
    assert before[["dataset", "seed", "configs", "class-lr"]].values.tolist() == [
        ["car", 0, 2, 1], ["car", 1, 2, 1]]  # smoke: one class-lr cutoff
    assert (before["TFLOP"] > 0).all()
    sweep.run_configs([c for c in grid if c.seed == 0])
    after = sweep.missing(grid)
    assert after["seed"].tolist() == [1]
    sweep.main(["--profile", "smoke", "--datasets", "car", "--activations", "relu", "--methods",
                "baseline", "class_lr", "--seeds", "0", "1", "--missing"])
    assert "2 of 4 configs missing" in capsys.readouterr().out
    assert len(list(tmp_path.rglob("*.json"))) == 2  # --missing ran nothing
