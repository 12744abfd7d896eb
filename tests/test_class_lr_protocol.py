"""The protocol settled by the study: divergence rules, retries, assembled records, stand-ins."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from companion import records
from companion.class_lr import convergence, experiment, protocol, registry, sweep, tables


def _record(counts, largest, diverged=False):
    return {"diverged": diverged, "test_prediction_counts": counts,
            "multiplier_trace": [{"epoch": 1, "half": 1, "max_per_layer": [1.0, largest]}]}


def test_blowup_rule_separates_grown_collapses_from_baseline_collapses():
    assert convergence.non_convergence(_record(None, None, diverged=True), "blowup")
    assert convergence.non_convergence(_record(None, None, diverged=True), "nonfinite")
    grown = _record([0, 1000, 0], 5e7)  # one class predicted, multipliers exploded
    assert "collapsed" in convergence.non_convergence(grown, "blowup")
    assert convergence.non_convergence(grown, "nonfinite") is None
    assert convergence.non_convergence(_record([0, 1000, 0], 1.5), "blowup") is None  # net died
    assert convergence.non_convergence(_record([300, 400, 300], 5e7), "blowup") is None
    assert convergence.largest_multiplier(_record([1], None)) == float("inf")  # overflowed
    with pytest.raises(ValueError, match="divergence_rule"):
        convergence.non_convergence(grown, "sometimes")


def test_settled_defaults():
    config = experiment.make_config("car", "selu", "class_lr", "paper", cutoff=10)
    assert (config.statistic, config.divergence_rule) == ("class_gradient", "blowup")
    assert experiment.make_config("car", "relu").init == "he"
    assert experiment.make_config("car", "tanh").init is None  # LeCun, the old hash
    assert experiment.make_config("yeast", "selu").layers == 3
    assert registry.architecture("yeast", printed=True).layers == 32
    before = experiment.pre_study(experiment.make_config("yeast", "relu", "class_lr",
                                                         "paper", cutoff=10))
    assert (before.layers, before.init, before.statistic, before.divergence_rule) == (
        32, None, "per_sample", None)


def test_a_run_that_does_not_converge_is_retried_at_a_tenth_and_marked(uci_dir, monkeypatch):
    # Reject every run at alpha_mu >= 1e4: the protocol must step down twice and say why.
    def strict(record, rule):
        return "too large" if record["alpha_mu_used"] >= 1e4 else None

    monkeypatch.setattr(experiment, "non_convergence", strict)
    configs = [experiment.make_config("car", "selu", "class_lr", "smoke", cutoff=1)]
    [record] = experiment.run_cutoffs(configs)
    assert record["alpha_mu_used"] == pytest.approx(1e3)
    assert [a["alpha_mu"] for a in record["attempts"]] == pytest.approx([1e5, 1e4])
    assert record["non_convergence"] is None
    # With retries off, the same run keeps its first alpha_mu and says it did not converge.
    [kept] = experiment.run_cutoffs([replace(configs[0], alpha_retries=0)])
    assert kept["alpha_mu_used"] == 1e5 and kept["non_convergence"] == "too large"
    assert tables.notes([kept]) == {("car", "selu", "class_lr"): "did not converge"}


def test_assembled_record_equals_the_retrying_run(uci_dir):
    # On car (smoke), the per-sample reading overflows at alpha_mu = 1e7 and 1e6.
    config = experiment.make_config("car", "selu", "class_lr", "smoke", cutoff=1,
                                    alpha_mu=1e7, statistic="per_sample",
                                    divergence_rule="nonfinite")
    grid = protocol.ladder(config)
    sweep.run_configs(grid)
    assembled = protocol.assemble(config)
    [direct] = experiment.run_cutoffs([config])
    assert assembled["config"] == records.config_dict(config)
    for key in ("alpha_mu_used", "attempts", "test_correct", "history", "non_convergence"):
        assert assembled[key] == direct[key], key
    assert direct["alpha_mu_used"] < 1e7 and assembled["assembled_from"]


def test_missing_settled_run_stands_in_from_the_pre_study_protocol(uci_dir):
    settled = experiment.make_config("car", "relu", profile="smoke")
    old = experiment.pre_study(settled)
    assert old != settled  # He vs LeCun
    sweep.run_configs([old])
    [found] = sweep.recorded([settled])
    assert found["protocol"] == "pre-study" and found["config"]["activation"] == "relu"
    assert sweep.recorded([settled], pre_study=False) == []
    table = tables.build([found], table=2, covered=["car"])
    assert table.loc["Car", ("", "notes")] == "ReLU: pre-study protocol"
    # Only seed 0 gets stand-ins: a mean over seeds never mixes the two protocols.
    sweep.run_configs([experiment.pre_study(replace(settled, seed=1))])
    assert sweep.recorded([replace(settled, seed=1)]) == []


def _outlier(gap, se, spread, seeds, dataset="yeast"):
    return {"dataset": dataset, "column": "SELU", "ours - paper": gap, "test rows": 500,
            "gap / SE": abs(gap) / se, "seed sd": spread, "seeds": seeds,
            "seed runs": "baseline"}


def test_outlier_diagnosis_weighs_the_gap_against_seed_noise_not_test_set_noise(uci_dir):
    from companion.class_lr import findings

    # The paper's one run against the mean of 5 seeds of sd 1: a 95% prediction band of
    # t(4) * 1 * sqrt(6/5) = 2.776 * 1.095 = 3.04 points.
    assert findings.noise_band(1.0, 5) == pytest.approx(3.0411, abs=1e-3)
    assert findings.diagnose(_outlier(3.0, 1.0, 1.0, 5)).startswith("seed noise")
    assert not findings.diagnose(_outlier(3.1, 1.0, 1.0, 5)).startswith("seed noise")
    # A gap of 1.7 binomial SE is not noise: the paper tests on our rows (steel-plates SELU,
    # committed records: no erratum, no collapse, no initialisation check for SELU).
    diagnosis = findings.diagnose(_outlier(5.0, 3.0, 0.1, 5, dataset="steel-plates"))
    assert diagnosis.startswith("unexplained") and "test-set sampling" in diagnosis
    # Two seeds give an sd of one degree of freedom: never enough to call a gap seed noise
    # (yeast, an erratum, is the next check).
    assert findings.diagnose(_outlier(0.5, 1.0, 3.0, 2)) == \
        "Table 1 erratum (see the errata section)"


def test_a_paper_value_between_our_two_initialisations_is_diagnosed_as_initialisation():
    """plant-shape ReLU (committed study records): LeCun 25.4%, He 55.3%, the paper 45.9%."""
    from companion.class_lr import findings

    cell = {**_outlier(9.4, 1.8, float("nan"), 1, dataset="plant-shape"), "column": "ReLU"}
    assert findings.diagnose(cell).startswith("initialisation (the paper names none)")
    # A class-lr column is not judged by the baselines' initialisations.
    assert findings.diagnose({**cell, "column": "ReLU+class lr"}).startswith("unexplained")


def test_a_class_lr_cell_carries_its_baselines_gap_only_when_the_changes_agree(monkeypatch):
    """gap(class lr) = gap(baseline) + (our change - the paper's change); the paper's change is
    one run, so the second term is noise while within the 95% prediction band of our n changes,
    t(n - 1) sd sqrt(1 + 1/n)."""
    from companion.class_lr import findings

    paper = {"baseline": 90.0, "class_lr": 89.0}  # the paper's change: -1.0
    monkeypatch.setattr(findings, "paper_value", lambda table, d, a, method: paper[method])
    monkeypatch.setattr(findings, "change_spread", lambda d, a: (0.5, 1.0, 5))
    monkeypatch.setattr(findings.protocol, "READING_CELLS", ())  # the reading study's rule
    cell = {**_outlier(6.0, 1.0, 0.5, 5, dataset="ringnorm"), "column": "tanh+class lr",
            "baseline gap": 4.5}
    # |0.5 - (-1.0)| = 1.5 < t(4) * 1.0 * sqrt(1.2) = 3.04
    assert findings.diagnose(cell).startswith("its baseline's gap (+4.5 points")
    paper["class_lr"] = 86.5  # the paper's change -3.5: 4.0 apart, beyond the band
    diagnosis = findings.diagnose(cell)
    assert diagnosis.startswith("unexplained") and "the change differs beyond" in diagnosis
    monkeypatch.setattr(findings, "change_spread", lambda d, a: (-1.9, 1.0, 2))
    assert "too few paired seeds (2)" in findings.diagnose(cell)  # one degree of freedom
    frame = pd.DataFrame({"diagnosis": ["test-set noise: x", "its baseline's gap (+1.0)",
                                        "unexplained; ruled out: y", "seed noise: z"]})
    assert findings.outlier_counts(frame) == {"cells": 4, "diagnosed": 2,
                                              "baseline's gap": 1, "unexplained": 1}
    assert findings.diagnosis_kinds(frame) == {"other": 1, "seed noise": 1}
    kinds = findings.diagnosis_kinds(pd.DataFrame({"diagnosis": [
        "batch size (the paper names none): x", "seed noise: y", "seed noise: z",
        "our LeCun-initialised relu net collapses to one class; he init trains (78.6%)",
        "initialisation (the paper names none): w", "Table 1 erratum (see the errata section)"]}))
    assert kinds == {"seed noise": 2, "initialisation": 2, "batch size": 1, "erratum": 1}
    assert list(kinds)[:2] == ["seed noise", "initialisation"]  # most first


def test_change_spread_pairs_class_lr_and_baseline_by_seed():
    """plant-shape tanh (committed records, 5 seeds): the mean paired change equals the
    difference of the two cells' means, and the sd is that of the per-seed differences."""
    from companion.class_lr import findings

    base = findings._settled_by_seed("plant-shape", "tanh", "baseline")
    class_lr = findings._settled_by_seed("plant-shape", "tanh", "class_lr")
    change, spread, pairs = findings.change_spread("plant-shape", "tanh")
    differences = [class_lr[s] - base[s] for s in base]
    assert pairs == len(base) == len(class_lr) == 5
    assert change == pytest.approx(np.mean([*class_lr.values()]) - np.mean([*base.values()]))
    assert spread == pytest.approx(np.std(differences, ddof=1))


def test_original_split_reads_once_its_raw_test_file_is_standardised(uci_dir):
    from companion.class_lr import findings
    scales = findings.test_file_scales("image-segmentation")
    assert scales.loc["training file", "largest |mean|"] < 1e-3
    assert scales.loc["original test file", "largest |mean|"] > 100  # raw pixel coordinates
    runs = findings.original_split()  # committed records, seeds 0-2 of three activations
    assert len(runs) == 9 and (runs["original test rows"] == 2100).all()
    assert (runs["original, as shipped"] < 35).all() and (runs["original, standardised"] > 80).all()
    assert "standardised" in findings.original_split_summary(runs)
