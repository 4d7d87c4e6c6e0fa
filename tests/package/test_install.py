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


def test_the_wheel_holds_the_package_and_the_shipped_models(tmp_path):
    """``pip install .`` installs what ``vaelab.load`` needs: every subpackage and the shipped models."""
    import importlib.util
    import zipfile

    import pytest

    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed here, so no wheel can be built without the network")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("vaelab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for prefix in ("ld_2_id_512_e_60", "ld_3_id_512_e_60", "fashion_mnist_ld_3_e_12"):
        for part in ("encoder.h5", "decoder.h5", "params.json"):
            assert f"vaelab/pretrained/{prefix}_{part}" in names
    for module in sorted((ROOT / "vaelab").rglob("*.py")):
        assert module.relative_to(ROOT).as_posix() in names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "vaelab = vaelab.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()
