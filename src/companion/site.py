"""What reviewers open: the notebooks rendered at the paper profile, and an HTML site of them.

- `execute`: `make`'s notebook step, every notebook at a profile into `build/notebooks/`.

- `render-paper`: executes every notebook at `profile="paper", only_recorded=True` (from the
  committed records, training nothing) into `build/notebooks/paper/`. A notebook whose
  parameters cell has no `only_recorded` could train at the paper profile, so it is skipped
  with a note rather than started. `PAPER_PARAMETERS` adds notebook-specific parameters (the
  committed 30-epoch ResNet-20 run for the fixed-classifier figures).
- `html`: exports every executed notebook under `build/notebooks/` to HTML (nbconvert) under
  `build/site/` and writes `build/site/index.html` (notebook, paper item, profile, runtime,
  verdict, each read from the executed notebook itself).

    python -m companion.site execute --profile quick --n-jobs 2
    python -m companion.site render-paper
    python -m companion.site html
    python -m companion.site gallery   # figures/README.md, the paper-profile plots
"""

from __future__ import annotations

import argparse
import html
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.data.sources import REPO_ROOT

BUILD = REPO_ROOT / "build"
PAPER_BUILD = BUILD / "notebooks" / "paper"
SITE = BUILD / "site"

# The committed fixed-classifier records are ResNet-20 for 30 epochs (learned and fixed):
# these parameters make the figures read them instead of asking for ResNet-56 at 164 epochs.
COMMITTED_CIFAR_RUN = {"network": "resnet20", "epochs": 30, "classifiers": ["learned", "fixed"]}
PAPER_PARAMETERS: dict[str, dict[str, Any]] = {
    "notebooks/fixed_classifier/fig1_alpha_over_time.ipynb": COMMITTED_CIFAR_RUN,
    "notebooks/fixed_classifier/fig2_cifar10_curves.ipynb": COMMITTED_CIFAR_RUN,
    # Table 1 also reads the Hadamard run of the same recipe (trained on a GPU, device "cuda")
    "notebooks/fixed_classifier/table1_parameters.ipynb": {
        **COMMITTED_CIFAR_RUN, "classifiers": ["learned", "fixed", "hadamard"]},
    "notebooks/fixed_classifier/fig3_fixed_scale.ipynb": {"network": "resnet20", "epochs": 30},
    # Tables 2 and 3 from every recorded seed of `class_lr.sweep.TABLE2_SEEDS` (the mean over
    # seeds; McNemar on seed 0), as the scorecard reads them (not imported: torch-free here).
    "notebooks/class_lr/table2_uci_accuracy.ipynb": {"seeds": [0, 1, 2, 3, 4]},
    "notebooks/class_lr/table3_neuron_specialization.ipynb": {"seeds": [0, 1, 2, 3, 4]},
}


def notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """Every notebook under `notebooks/` (whatever exists), sorted, without checkpoints."""
    return sorted(p for p in (root / "notebooks").rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


def paper_parameters(notebook: Path, declared: set[str]) -> dict[str, Any] | None:
    """Parameters of the paper-profile rendering, or None when the notebook cannot promise to
    train nothing (no `only_recorded` parameter). Only parameters it declares are passed."""
    if "only_recorded" not in declared:
        return None
    relative = notebook.resolve().relative_to(REPO_ROOT).as_posix()
    wanted = {"profile": "paper", "only_recorded": True, **PAPER_PARAMETERS.get(relative, {})}
    return {key: value for key, value in wanted.items() if key in declared}


def _kernel_manager() -> type:
    """A kernel manager that gives the kernel CurveZMQ keys where pyzmq supports them (the
    ipykernel spec declares it), so the kernel does not warn about plain-text TCP in make's log."""
    import zmq
    from jupyter_client.manager import AsyncKernelManager

    class EncryptedKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport_encryption", "auto" if zmq.has("curve") else "disabled")
            super().__init__(**kwargs)

    return EncryptedKernelManager


def execute(notebook: Path, target: Path, parameters: dict[str, Any]) -> float:
    """Run `notebook` with papermill into `target` (in the notebook's folder); seconds taken."""
    import papermill

    target.parent.mkdir(parents=True, exist_ok=True)
    # The kernel inherits this: with string hashing fixed, set order (scikit-posthocs draws the
    # critical-difference diagram from sets of names) and so every figure is byte-identical
    # from one render to the next. A value the user set is kept.
    os.environ.setdefault("PYTHONHASHSEED", "0")
    start = time.perf_counter()
    papermill.execute_notebook(str(notebook), str(target), parameters=parameters,
                               progress_bar=False, cwd=str(notebook.parent),
                               kernel_manager_class=_kernel_manager())
    return time.perf_counter() - start


def execute_all(profile: str, n_jobs: int, root: Path = REPO_ROOT,
                output: Path = BUILD / "notebooks") -> None:
    """`make`'s notebooks step: every notebook at `profile` into `build/notebooks/`; `n_jobs`
    goes to the notebooks that declare it (papermill warns about any other)."""
    import papermill

    for notebook in notebooks(root):
        relative = notebook.relative_to(root)
        print(f"== {relative} ({profile})", flush=True)
        declared = set(papermill.inspect_notebook(str(notebook)))
        parameters = {"profile": profile, "n_jobs": n_jobs}
        seconds = execute(notebook, output / relative.relative_to("notebooks"),
                          {key: value for key, value in parameters.items() if key in declared})
        print(f"   done in {seconds:.0f} s", flush=True)


def render_paper(root: Path = REPO_ROOT, output: Path = PAPER_BUILD) -> list[tuple[Path, float]]:
    """Execute every notebook at the paper profile from the records; (output, seconds) each."""
    import papermill

    rendered = []
    for notebook in notebooks(root):
        declared = set(papermill.inspect_notebook(str(notebook)))
        parameters = paper_parameters(notebook, declared)
        relative = notebook.relative_to(root / "notebooks")
        if parameters is None:
            print(f"== {relative}: no only_recorded parameter, not rendered at the paper profile")
            continue
        target = output / relative
        seconds = execute(notebook, target, parameters)
        print(f"== {relative} (paper, from the records): {seconds:.1f} s", flush=True)
        rendered.append((target, seconds))
    return rendered


@dataclass(frozen=True)
class Page:
    notebook: str  # path below build/notebooks/ (paper renders under paper/)
    html: str  # path below build/site/
    title: str
    profile: str
    seconds: float | None
    verdict: str


def _text_outputs(cell: dict[str, Any]) -> str:
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append("".join(output.get("text", "")))
        elif "text/plain" in output.get("data", {}):
            texts.append("".join(output["data"]["text/plain"]))
    return "".join(texts)


def describe(executed: Path) -> tuple[str, str, float | None, str]:
    """(title, profile, runtime in seconds, verdict lines) of an executed notebook."""
    content = json.loads(executed.read_text())
    cells = content["cells"]
    title = next((line.lstrip("# ").strip() for c in cells if c["cell_type"] == "markdown"
                  for line in "".join(c["source"]).splitlines() if line.startswith("# ")),
                 executed.stem)
    meta = content.get("metadata", {}).get("papermill", {})
    profile = str(meta.get("parameters", {}).get("profile", "default"))
    verdicts = [verdict for c in cells if c["cell_type"] == "code"
                for line in _text_outputs(c).splitlines() if (verdict := verdict_line(line))]
    return title, profile, meta.get("duration"), "\n".join(verdicts) or "(no verdict printed)"


def verdict_line(line: str) -> str | None:
    """The index's form of a notebook's verdict line, else None: a line that starts with
    "Verdict" as it is; "<subject>: <evidence> ... Verdict: <words>" (Table 2's sentence per
    activation) shortened to "<subject>: <words>" (the evidence is one click away)."""
    line = line.strip()
    if line.startswith("Verdict"):
        return line
    if "Verdict:" in line and ":" in line.split("Verdict:")[0]:
        subject = line.split(":", 1)[0]
        return f"{subject}: {line.split('Verdict:', 1)[1].strip()}"
    return None


def export_html(build: Path = BUILD, site: Path = SITE) -> list[Page]:
    """Every executed notebook under `build/notebooks/` as HTML, plus `index.html`."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    pages = []
    for executed in sorted((build / "notebooks").rglob("*.ipynb")):
        relative = executed.relative_to(build / "notebooks")
        target = site / relative.with_suffix(".html")
        target.parent.mkdir(parents=True, exist_ok=True)
        body, _ = exporter.from_filename(str(executed))
        target.write_text(body)
        title, profile, seconds, verdict = describe(executed)
        pages.append(Page(relative.as_posix(), target.relative_to(site).as_posix(), title,
                          profile, seconds, verdict))
    (site / "index.html").write_text(index_html(pages))
    return pages


def index_html(pages: list[Page]) -> str:
    """A small static index: one row per executed notebook."""
    rows = []
    for page in pages:
        runtime = "" if page.seconds is None else f"{page.seconds:.0f} s"
        verdict = "<br>".join(html.escape(v) for v in page.verdict.splitlines())
        rows.append(f"<tr><td><a href=\"{html.escape(page.html)}\">{html.escape(page.notebook)}"
                    f"</a></td><td>{html.escape(page.title)}</td><td>{html.escape(page.profile)}"
                    f"</td><td>{runtime}</td><td>{verdict}</td></tr>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>companion: executed notebooks</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 90em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 0.4em; vertical-align: top; text-align: left; }}
th {{ background: #f0f0f0; }}
</style></head><body>
<h1>companion: executed notebooks</h1>
<p>Every notebook as executed by <code>make</code>: at the default profile, and at the paper
profile from the committed records (<code>paper/</code>, no training). The scorecard is in
<code>figures/scorecard.md</code>.</p>
<table><tr><th>notebook</th><th>paper item</th><th>profile</th><th>runtime</th>
<th>verdict</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""


CAPTIONS = {
    "table2_ours_vs_paper": ("class-lr Table 2", "our test accuracy against the paper's, per "
                             "column; the farthest data sets are named"),
    "table2_change_vs_paper": ("class-lr Table 2", "accuracy change from class-lr, ours against "
                               "the paper's; filled: McNemar p < 0.05"),
    "table3_ours_vs_paper": ("class-lr Table 3", "% class-specialised neurons, ours against the "
                             "paper's"),
    "walkthrough": ("class-lr method", "the walkthrough's numerical checks and demos"),
    "fig1_alpha_over_time": ("fixed-classifier Figure 1", "learned alpha and a learned "
                             "classifier's norm against the step (log)"),
    "fig2_cifar10_curves": ("fixed-classifier Figure 2", "training and validation error, "
                            "learned vs fixed classifier"),
    "fig3_fixed_scale": ("fixed-classifier Figure 3", "fixed alpha 0.1 / 1 / 10 vs learned"),
}


def gallery(figures: Path = REPO_ROOT / "figures") -> str:
    """`figures/README.md`: every paper-profile plot under `figures/`, with its paper item."""
    lines = ["# Figures at the paper profile", "",
             "Written by `make` (`python -m companion.site gallery`) from the plots the notebooks "
             "drew at the paper profile (`build/notebooks/paper/`, from the committed records). "
             "Tables: `*_paper.md` and `*_paper.csv`; the verdicts: [scorecard.md](scorecard.md).",
             ""]
    for plot in sorted(figures.glob("*.png")):
        if not plot.stem.endswith("_paper"):  # what git keeps (.gitignore): *_paper.png
            continue
        item, caption = next((v for k, v in CAPTIONS.items() if plot.stem.startswith(k)),
                             ("", ""))
        lines += [f"## {item}: {plot.stem}" if item else f"## {plot.stem}", "",
                  caption, "", f"![{plot.stem}]({plot.name})", ""]
    text = "\n".join(lines)
    (figures / "README.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("execute", "render-paper", "html", "gallery"))
    parser.add_argument("--profile", default="quick", help="execute: the profile")
    parser.add_argument("--n-jobs", type=int, default=2, help="execute: parallel runs")
    args = parser.parse_args(argv)
    if args.step == "execute":
        execute_all(args.profile, args.n_jobs)
    elif args.step == "render-paper":
        render_paper()
    elif args.step == "gallery":
        gallery()
    else:
        pages = export_html()
        print(f"{len(pages)} notebooks exported; open {SITE / 'index.html'}")


if __name__ == "__main__":
    main()
