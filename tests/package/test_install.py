"""The package installs: pyproject.toml's dependencies are requirements.txt's, and the console command runs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return sorted(line.replace("'", '"') for line in lines if line and not line.startswith("-r"))


def test_pyproject_dependencies_are_requirements_txt():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(d.replace("'", '"') for d in project["dependencies"]) == requirement_lines(ROOT / "requirements.txt")
    assert project["scripts"]["vaelab"] == "vaelab.cli.main:main"


def test_the_vaelab_command_answers_help_and_a_bad_job(tmp_path):
    run = [sys.executable, "-m", "vaelab.cli.main"]
    env_cwd = dict(cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    ok = subprocess.run([*run, "--help"], **env_cwd)
    assert ok.returncode == 0 and "vaelab {train,generate,explore} DATASET" in ok.stdout
    bad = subprocess.run([*run, "train", "svhn"], **env_cwd)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: vaelab train: unknown dataset 'svhn'")
