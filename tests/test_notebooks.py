"""The teaching notebooks are stored clean: valid, without outputs, offline.

Running them is part of the README's test command (pyproject's addopts); alone, about four minutes
on two cores::

    python -m pytest --nbmake notebooks/ --nbmake-timeout=240 -q

This module only checks what a commit must get right, in milliseconds, with the
standard library (no nbformat needed).
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = [
    "01_quickstart.ipynb",
    "02_dictionaries.ipynb",
    "03_divergences_and_masks.ipynb",
    "04_choosing_k_and_init.ipynb",
    "05_beyond_audio.ipynb",
]
# Anything that would download data: the notebooks use audio_samples/ and bundled data only.
NETWORK = re.compile(r"\bfetch_\w+\(|urlopen\(|urlretrieve\(|\brequests\.|\bpooch\b|https?://\S+\.(wav|flac|mp3|zip|npz)")


def _load(name):
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))


def test_the_five_notebooks_are_there():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_stored_without_outputs(name):
    nb = _load(name)
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    for i, cell in enumerate(code):
        assert cell.get("outputs") == [], f"{name}: code cell {i} has stored outputs; clear them"
        assert cell.get("execution_count") is None, f"{name}: code cell {i} has an execution count"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_downloads_nothing_and_finds_the_samples(name):
    nb = _load(name)
    source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert not NETWORK.search(source), f"{name}: looks like a download: {NETWORK.search(source)}"
    if "audio_samples" in source:
        # Works from notebooks/ (nbmake's working directory) and from the repository root.
        assert "def repo_root" in source
