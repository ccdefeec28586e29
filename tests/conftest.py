import os
from pathlib import Path

import numpy as np
import pytest


def pytest_configure(config):
    """Give every pytest-xdist worker a numba cache of its own.

    numba's on-disk cache is not safe when several processes compile the same function at
    once (numba issues 4807, 10128: a process can load another's half-written entry and
    crash), and the workers would, each on its first large problem; a worker's commands and
    notebooks run one at a time and share its cache (they inherit the variable): a folder per
    worker under ``NUMBA_CACHE_DIR`` if set, else under ``.pytest_cache/numba``. Set before
    anything imports numba; the serial run (``-n 0``) keeps numba's own place.
    """
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker:
        default = Path(config.rootpath) / ".pytest_cache" / "numba"
        folder = Path(os.environ.get("NUMBA_CACHE_DIR") or default) / worker
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(folder)


@pytest.fixture
def rng():
    return np.random.default_rng(seed=440)


@pytest.fixture(scope="session")
def lowrank():
    """A small strictly positive matrix of rank 4 plus noise, (n_frames=120, n_bins=40)."""
    g = np.random.default_rng(7)
    V = g.gamma(1.0, 1.0, (120, 4)) @ g.gamma(1.0, 1.0, (4, 40)) + 0.05 * g.random((120, 40))
    return V


def pytest_collection_modifyitems(config, items):
    """Run the longest tests first: the README's commands, the notebooks, the other tests
    marked ``slow``, then the rest in their usual order.

    With pytest-xdist (``-n``, set in pyproject.toml's ``addopts``) the first tests are
    dealt to the workers one at a time, in turn, so the long ones start at once on
    different workers instead of one of them ending the run alone.
    """
    def rank(item):
        slow = item.get_closest_marker("slow") is not None
        if slow and "test_readme" in item.nodeid:
            return 0
        if item.nodeid.endswith(".ipynb"):
            return 1
        return 2 if slow else 3

    items.sort(key=rank)  # stable: the usual order within each rank
