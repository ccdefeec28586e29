import pickle
import subprocess
import sys

import numpy as np
import pytest

from nmfsep import BetaNMF, ParameterError, nmf
from nmfsep.estimator import NotFittedError


def test_function_and_estimator_agree(lowrank):
    est = BetaNMF(4, beta_loss="itakura-saito", random_state=0, max_iter=40, tol=0)
    W = est.fit_transform(lowrank)
    res = nmf(lowrank, 4, beta="itakura-saito", random_state=0, max_iter=40, tol=0)
    assert np.array_equal(W, res.W)
    assert np.array_equal(est.components_, res.H)
    assert est.n_iter_ == res.n_iter
    assert est.reconstruction_err_ == res.reconstruction_err
    assert np.array_equal(est.loss_history_, res.loss_history)


def test_transform_freezes_atoms_and_matches_scikit_learn(lowrank):
    from sklearn.decomposition import NMF

    est = BetaNMF(3, random_state=0, max_iter=50, tol=0).fit(lowrank)
    sk = NMF(3, beta_loss="kullback-leibler", solver="mu", max_iter=50, tol=0)
    sk.fit(lowrank)
    sk.components_ = est.components_.copy()
    np.testing.assert_allclose(est.transform(lowrank), sk.transform(lowrank), rtol=1e-7)


def test_inverse_transform(lowrank):
    est = BetaNMF(3, random_state=0, max_iter=20)
    W = est.fit_transform(lowrank)
    np.testing.assert_allclose(est.inverse_transform(W), W @ est.components_)
    with pytest.raises(ParameterError, match=r"^X must be activations of shape \(n_samples, 3\)"):
        est.inverse_transform(np.ones((2, 5)))


def test_not_fitted_and_feature_mismatch(lowrank):
    with pytest.raises(NotFittedError, match="not fitted"):
        BetaNMF(2).transform(lowrank)
    est = BetaNMF(2, max_iter=5).fit(lowrank)
    with pytest.raises(ParameterError, match="features"):
        est.transform(lowrank[:, :5])


def test_params_protocol_and_repr():
    est = BetaNMF(5, beta_loss=0.5)
    params = est.get_params()
    assert params["n_components"] == 5 and params["beta_loss"] == 0.5
    est.set_params(max_iter=3, solver="amu")
    assert est.max_iter == 3 and est.solver == "amu"
    with pytest.raises(ParameterError, match="Invalid parameter"):
        est.set_params(n_componentz=3)
    assert repr(est) == "BetaNMF(n_components=5, beta_loss=0.5, solver='amu', max_iter=3)"


def test_pickle_round_trip(lowrank):
    est = BetaNMF(3, random_state=0, max_iter=10).fit(lowrank)
    clone = pickle.loads(pickle.dumps(est))
    assert np.array_equal(clone.transform(lowrank), est.transform(lowrank))


def test_works_in_sklearn_pipeline_and_grid_search(lowrank):
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(BetaNMF(2, max_iter=20, random_state=0))
    assert pipe.fit_transform(lowrank).shape == (lowrank.shape[0], 2)
    assert clone(BetaNMF(4, beta_loss=0.5)).get_params()["beta_loss"] == 0.5

    def score(est, X, y=None):
        return -est.reconstruction_err_

    grid = GridSearchCV(BetaNMF(max_iter=20, random_state=0), {"n_components": [2, 4]},
                        scoring=score, cv=2)
    grid.fit(lowrank)
    assert grid.best_params_["n_components"] in (2, 4)


def test_does_not_import_scikit_learn():
    code = (
        "import sys, numpy as np; from nmfsep import BetaNMF; "
        "BetaNMF(2, max_iter=5).fit(np.random.rand(20, 6)); "
        "assert 'sklearn' not in sys.modules, 'sklearn imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_functions_are_not_shadowed_by_their_modules():
    import importlib

    import nmfsep

    for mod in ("nmf", "separate", "divergence", "dictionary"):
        importlib.import_module(f"nmfsep.{mod}")
    assert callable(nmfsep.nmf) and callable(nmfsep.separate)
    assert nmfsep.separate.__module__ == "nmfsep.separate"
    assert callable(nmfsep.learn_dictionary) and callable(nmfsep.beta_divergence)


def test_sparse_input_is_accepted_like_scikit_learn(lowrank):
    import scipy.sparse as sp

    X = sp.csr_matrix(np.where(lowrank > 3, lowrank, 0.0))
    est = BetaNMF(3, random_state=0, max_iter=20, tol=0)
    W = est.fit_transform(X)
    dense = BetaNMF(3, random_state=0, max_iter=20, tol=0).fit_transform(X.toarray())
    assert np.array_equal(W, dense)
    assert est.transform(X).shape == W.shape
