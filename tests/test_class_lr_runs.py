import pytest

from companion import records
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


def test_divergence_divides_alpha_mu_by_ten(uci_dir):
    # On car, alpha_mu = 1e7 and 1e6 make the multipliers explode; 1e5 trains.
    recovered = experiment.run_cutoffs(_configs(alpha_mu=1e7))
    for record in recovered:
        assert not record["diverged"] and record["alpha_mu_used"] == pytest.approx(1e5)
    hopeless = experiment.run_cutoffs(_configs(alpha_mu=1e30))  # three retries, then give up
    for record in hopeless:
        assert record["diverged"] and record["test_accuracy"] is None
        assert record["alpha_mu_used"] == pytest.approx(1e27)


def test_sweep_runs_cutoffs_as_one_group(uci_dir):
    grid = sweep.configs(["titanic"], ["tanh"], ["class_lr"], profile="smoke")
    calls = []

    def spy(configs):
        calls.append(len(configs))
        return experiment.run_group(configs)

    records.run_sweep(grid, spy, "test-group", group_key=experiment.group_key, progress=False)
    assert calls == [len(experiment.CUTOFFS["smoke"])]


@pytest.mark.parametrize("activation", ["selu", "relu", "tanh"])
def test_class_lr_run_learns(uci_dir, activation):
    record = experiment.run(_configs(activation=activation)[2])
    assert not record["diverged"] and record["test_accuracy"] > 0.5
