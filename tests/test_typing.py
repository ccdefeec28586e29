"""nmfsep ships ``py.typed``, type-checks (mypy) and so does user code on its public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_package_is_typed():
    assert (ROOT / "nmfsep" / "py.typed").is_file()
    assert "BSD 3-Clause" in (ROOT / "LICENSE").read_text()


@pytest.mark.slow
def test_user_code_on_the_public_api_type_checks():
    pytest.importorskip("mypy")
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports",
         "--no-incremental", str(ROOT / "tests" / "typing" / "public_api.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_package_type_checks(tmp_path):
    # with the [tool.mypy] settings of pyproject.toml
    pytest.importorskip("mypy")
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), "nmfsep"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found" in r.stdout
