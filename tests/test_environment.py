"""environment.yml (conda) and pyproject.toml (pip) must list the same dependencies."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pip_section_of_environment() -> list[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s+- pip:\s*$", line))
    items = []
    for line in lines[start + 1 :]:
        match = re.match(r"\s+- (.+)$", line)
        if not match:
            break
        items.append(match.group(1).strip())
    return [item for item in items if item != "-e ."]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(_pip_section_of_environment()) == sorted(project["dependencies"])


def test_torch_is_pinned_everywhere():
    assert "torch==2.13.0" in _pip_section_of_environment()
