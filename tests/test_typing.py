"""nmfsep ships ``py.typed`` and its public API type-checks in user code (mypy)."""

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
