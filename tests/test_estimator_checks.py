"""scikit-learn's own conformance suite, run on BetaNMF."""

import pytest

from nmfsep import BetaNMF

sklearn_checks = pytest.importorskip("sklearn.utils.estimator_checks")

# Checks that cannot apply, and why.
EXPECTED_FAILED = {}


@sklearn_checks.parametrize_with_checks(
    [BetaNMF(n_components=2, max_iter=1000, tol=1e-6, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
