"""The package as a user installs it: a wheel with every subpackage, the templates and the course.

The e2e test builds the wheel, installs it (without dependencies) into a fresh venv that
sees the project venv's site-packages, and runs the CLI from a folder outside the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import tomllib
from conftest import ROOT

CACHE = ROOT / ".cache"


def test_every_subpackage_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "assistant").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_an_installed_package_falls_back_to_its_bundled_folders(tmp_path, monkeypatch):
    from assistant import config

    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)  # no pyproject.toml there: not a checkout
    assert config.default_folder("prompts") == config.PACKAGE_DIR / "bundled" / "prompts"
    assert config.default_folder("corpus") == config.PACKAGE_DIR / "bundled" / "corpus"


@pytest.mark.e2e
def test_the_wheel_installs_and_answers_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(wheels.glob("courselab-*.whl"))
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True,
                   capture_output=True)
    where_site = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(python), "-c", where_site], check=True, capture_output=True,
                               text=True).stdout.strip())
    # the project's dependencies, after the wheel's own files (a .pth line appends to sys.path)
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "COURSELAB_HOME": str(tmp_path / "home"), "COURSELAB_CACHE": str(CACHE),
           "HF_HUB_OFFLINE": "1"}
    courselab = str(target / "bin" / "courselab")

    def run(*args):
        done = subprocess.run([courselab, *args], cwd=outside, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = subprocess.run([str(python), "-c", "import assistant; print(assistant.__file__)"],
                           cwd=outside, env=env, capture_output=True, text=True).stdout
    assert str(site) in where  # the installed copy, not the checkout
    assert "default" in run("prompts", "list")
    hits = json.loads(run("retrieve", "What is BERT?", "--json"))
    assert hits and "BERT" in hits[0]["section"]
    answer = json.loads(run("ask", "What is BERT?", "--json", "--max-new-tokens", "24"))
    assert answer["sources"] and answer["lead"] and not answer["abstained"]
