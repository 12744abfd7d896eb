"""The paper-profile rendering and the HTML site: what is rendered, and the index it writes."""

from __future__ import annotations

import json
from pathlib import Path

from companion import site

ROOT = Path(__file__).resolve().parents[1]


def test_only_notebooks_that_can_promise_no_training_are_rendered():
    notebook = ROOT / "notebooks" / "fixed_classifier" / "fig2_cifar10_curves.ipynb"
    declared = {"profile", "only_recorded", "network", "epochs", "classifiers", "seed"}
    assert site.paper_parameters(notebook, declared) == {
        "profile": "paper", "only_recorded": True, "network": "resnet20", "epochs": 30,
        "classifiers": ["learned", "fixed"]}
    assert site.paper_parameters(notebook, {"profile", "network"}) is None
    other = ROOT / "notebooks" / "class_lr" / "anything_new.ipynb"
    assert site.paper_parameters(other, {"profile", "only_recorded"}) == {
        "profile": "paper", "only_recorded": True}


def test_every_committed_notebook_can_be_rendered_from_the_records():
    import papermill

    for notebook in site.notebooks():
        declared = set(papermill.inspect_notebook(str(notebook)))
        assert "only_recorded" in declared, notebook


def test_paper_parameters_name_existing_notebooks_and_their_declared_parameters():
    import papermill

    for relative, parameters in site.PAPER_PARAMETERS.items():
        notebook = ROOT / relative
        assert notebook.is_file(), relative
        assert set(parameters) <= set(papermill.inspect_notebook(str(notebook))), relative
    table2 = ROOT / "notebooks" / "class_lr" / "table2_uci_accuracy.ipynb"
    rendered = site.paper_parameters(table2, {"profile", "only_recorded", "seeds"})
    from companion.class_lr.sweep import TABLE2_SEEDS

    assert rendered["seeds"] == list(TABLE2_SEEDS)  # every recorded seed, as the scorecard


def _executed(path: Path, verdict: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "cells": [
            {"cell_type": "markdown", "id": "a1", "metadata": {},
             "source": ["# Figure 9: a test\n"]},
            {"cell_type": "code", "id": "b2", "metadata": {}, "execution_count": 1,
             "source": ["print()"],
             "outputs": [{"output_type": "stream", "name": "stdout",
                          "text": [verdict + "\n"]}]},
        ],
        "metadata": {"papermill": {"duration": 12.3, "parameters": {"profile": "paper"}},
                     "kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))


def test_index_lists_each_executed_notebook_with_its_verdict(tmp_path):
    _executed(tmp_path / "notebooks" / "paper" / "x" / "fig9.ipynb", "Verdict on 'x': REPRODUCED")
    pages = site.export_html(tmp_path, tmp_path / "site")
    assert [p.notebook for p in pages] == ["paper/x/fig9.ipynb"]
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'href="paper/x/fig9.html"' in index and "Figure 9: a test" in index
    assert "REPRODUCED" in index and "12 s" in index
    assert (tmp_path / "site" / "paper" / "x" / "fig9.html").is_file()


def test_index_shortens_a_sentence_that_ends_in_a_verdict():
    assert site.verdict_line("  Verdict on 'x': REPRODUCED ") == "Verdict on 'x': REPRODUCED"
    sentence = "SELU: on 35 data sets, a median of +0.00 (p = 0.9). Verdict: no effect."
    assert site.verdict_line(sentence) == "SELU: no effect."
    assert site.verdict_line("Friedman chi2, p: (30.7, 7e-05)") is None


def test_gallery_lists_only_paper_profile_plots(tmp_path):
    for name in ("fig2_cifar10_curves_paper.png", "fig2_cifar10_curves_quick.png",
                 "table2_ours_vs_paper_paper-car.png"):
        (tmp_path / name).write_bytes(b"")
    text = site.gallery(tmp_path)
    assert "fig2_cifar10_curves_paper.png" in text and "Figure 2" in text
    assert "_quick" not in text and "paper-car" not in text


def test_make_passes_each_notebook_only_the_parameters_it_declares(tmp_path, monkeypatch):
    import papermill

    passed = {}

    def record_parameters(notebook: Path, target: Path, parameters: dict) -> float:
        passed[notebook] = parameters
        return 0.0

    monkeypatch.setattr(site, "execute", record_parameters)
    site.execute_all("smoke", 2, output=tmp_path)
    assert set(passed) == set(site.notebooks())
    for notebook, parameters in passed.items():
        assert set(parameters) <= set(papermill.inspect_notebook(str(notebook)))  # no warning
        assert parameters["profile"] == "smoke"
    assert any("n_jobs" in parameters for parameters in passed.values())
