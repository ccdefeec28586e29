import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(seed=440)


@pytest.fixture(scope="session")
def lowrank():
    """A small strictly positive matrix of rank 4 plus noise, (n_frames=120, n_bins=40)."""
    g = np.random.default_rng(7)
    V = g.gamma(1.0, 1.0, (120, 4)) @ g.gamma(1.0, 1.0, (4, 40)) + 0.05 * g.random((120, 40))
    return V
