"""The architecture as written in pyproject.toml's import-linter contracts: layers and no cycles."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_imports_keep_the_layers_and_make_no_cycles():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 kept, 0 broken" in done.stdout
