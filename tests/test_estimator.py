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


# -- scikit-learn drop-in: what its own test_nmf.py checks, in our words -------------------
@pytest.mark.parametrize("init", ["random", "nndsvd"])
@pytest.mark.parametrize("alpha_W, alpha_H", [(0.0, 0.0), (1.0, "same"), (0.0, 1.0)])
def test_mu_matches_scikit_learn_function(init, alpha_W, alpha_H):
    from sklearn.decomposition import non_negative_factorization

    A = np.abs(np.random.RandomState(42).randn(10, 10))
    A[:, 2 * np.arange(5)] = 0
    kw = dict(init=init, solver="mu", max_iter=500, alpha_W=alpha_W, alpha_H=alpha_H,
              random_state=1, tol=1e-2)
    with pytest.warns() if init == "nndsvd" else _no_warning():
        W_sk, H_sk, _ = non_negative_factorization(A, **kw)
        W_sk2, _, _ = non_negative_factorization(A, H=H_sk, update_H=False, **kw)
    est = BetaNMF(beta_loss="frobenius", **kw)
    np.testing.assert_allclose(est.fit_transform(A), W_sk, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(est.components_, H_sk, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(est.transform(A), W_sk2, rtol=1e-7, atol=1e-12)


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


def test_n_components_auto_comes_from_custom_factors():
    rng = np.random.RandomState(0)
    X, W, H = rng.random_sample((6, 5)), rng.random_sample((6, 2)), rng.random_sample((2, 5))
    est = BetaNMF("auto", init="custom", tol=1e-6, max_iter=500)
    assert est.fit_transform(X, W=W, H=H).shape == (6, 2)
    assert est.n_components_ == 2
    assert BetaNMF("auto", max_iter=5, tol=0).fit(X).n_components_ == 5  # no W/H: all features


def test_custom_factors_of_another_dtype_are_a_type_error():
    rng = np.random.RandomState(0)
    X, W = rng.random_sample((20, 15)), rng.random_sample((20, 15))
    H = rng.random_sample((15, 15)).astype(np.float32)
    with pytest.raises(TypeError, match=r"^H must be of the same dtype as X \(float64\)"):
        BetaNMF(init="custom").fit(X, W=W, H=H)
    BetaNMF(init="custom", max_iter=2, tol=0).fit(X, W=W, H=H.astype(np.float64))


def test_custom_factors_of_another_shape_are_a_value_error():
    rng = np.random.RandomState(0)
    X, H = rng.random_sample((6, 5)), rng.random_sample((2, 5))
    with pytest.raises(ValueError, match=r"W must be an array of shape \(6, 2\), got \(5, 2\)"):
        BetaNMF(2, init="custom").fit(X, W=rng.random_sample((5, 2)), H=H)


def test_convergence_warning_is_scikit_learns_when_it_is_imported():
    import warnings

    from sklearn.exceptions import ConvergenceWarning as SkWarning

    from nmfsep import ConvergenceWarning

    A = np.ones((2, 2))
    with pytest.warns(SkWarning, match="Maximum number of iterations 1 reached") as rec:
        BetaNMF(max_iter=1).fit(A)
    assert issubclass(rec[0].category, ConvergenceWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", SkWarning)  # what users of scikit-learn write
        BetaNMF(max_iter=1).fit(A)


def test_convergence_warning_without_scikit_learn():
    code = (
        "import sys, warnings, numpy as np; from nmfsep import BetaNMF, ConvergenceWarning\n"
        "with warnings.catch_warnings(record=True) as rec:\n"
        "    warnings.simplefilter('always'); BetaNMF(max_iter=1).fit(np.ones((2, 2)))\n"
        "assert rec[0].category is ConvergenceWarning, rec[0].category\n"
        "assert 'sklearn' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_feature_names_out_and_set_output(lowrank):
    pd = pytest.importorskip("pandas")
    est = BetaNMF(3, max_iter=20, random_state=0)
    with pytest.raises(NotFittedError):
        est.get_feature_names_out()
    est.fit(lowrank)
    assert list(est.get_feature_names_out()) == ["betanmf0", "betanmf1", "betanmf2"]
    X = pd.DataFrame(lowrank, columns=[f"bin{i}" for i in range(lowrank.shape[1])],
                     index=np.arange(lowrank.shape[0]) + 100)
    out = est.set_output(transform="pandas").fit(X).transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["betanmf0", "betanmf1", "betanmf2"]
    assert list(out.index) == list(X.index)
    assert list(est.feature_names_in_) == list(X.columns)
    assert isinstance(est.set_output(transform="default").transform(X), np.ndarray)
    with pytest.raises(ParameterError, match="^transform must be one of"):
        est.set_output(transform="xarray")


def test_pipeline_set_output_and_global_config(lowrank):
    pd = pytest.importorskip("pandas")
    import sklearn
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    pipe = make_pipeline(MinMaxScaler(), BetaNMF(2, max_iter=20, random_state=0))
    out = pipe.set_output(transform="pandas").fit_transform(lowrank)
    assert list(out.columns) == ["betanmf0", "betanmf1"]
    with sklearn.config_context(transform_output="pandas"):
        assert isinstance(BetaNMF(2, max_iter=5).fit_transform(lowrank), pd.DataFrame)


# -- fixed atoms, dictionaries, librosa ----------------------------------------------------
def test_fixed_atoms_stay_and_free_ones_are_learned(lowrank):
    D = BetaNMF(2, max_iter=50, random_state=0).fit(lowrank).components_
    est = BetaNMF(4, fixed_atoms=D, max_iter=30, random_state=0).fit(lowrank)
    assert est.components_.shape == (4, lowrank.shape[1])
    assert np.array_equal(est.components_[:2], D)
    res = nmf(lowrank, 4, fixed_atoms=D, max_iter=30, random_state=0)
    assert np.array_equal(est.components_, res.H)


def test_from_dictionary_is_fitted_and_semi_supervised(lowrank):
    from sklearn.base import clone

    from nmfsep import Dictionary
    from nmfsep.spectral import STFTConfig

    D = BetaNMF(3, max_iter=50, random_state=0).fit(lowrank).components_
    est = BetaNMF.from_dictionary(D, max_iter=40)
    assert np.array_equal(est.components_, D) and est.n_components_ == 3
    W = est.transform(lowrank)
    assert np.array_equal(W, nmf(lowrank, 3, H=D, update_H=False, max_iter=40).W)
    assert np.array_equal(clone(est).fit(lowrank).components_, D)  # a clone refits, atoms kept
    semi = BetaNMF.from_dictionary(D, n_free=2, max_iter=10)
    assert not hasattr(semi, "components_")
    assert np.array_equal(semi.fit(lowrank).components_[:3], D)
    stft = STFTConfig(n_fft=2 * (lowrank.shape[1] - 1), hop_length=16)
    d = Dictionary(D, ["x"] * 3, sr=22050, stft=stft, beta=1.0)
    assert np.array_equal(BetaNMF.from_dictionary(d).components_, D.astype(np.float32))
    with pytest.raises(ParameterError, match="^n_free must be an int >= 0"):
        BetaNMF.from_dictionary(D, n_free=-1)


def test_librosa_decompose_supervised_and_fitted(lowrank):
    librosa = pytest.importorskip("librosa")
    S = np.ascontiguousarray(lowrank.T)  # librosa: (n_bins, n_frames)
    D = BetaNMF(3, max_iter=50, random_state=0).fit(lowrank).components_
    comps, acts = librosa.decompose.decompose(
        S, transformer=BetaNMF.from_dictionary(D, max_iter=40), fit=False
    )
    assert np.array_equal(comps, D.T)
    np.testing.assert_array_equal(acts, BetaNMF.from_dictionary(D, max_iter=40).transform(S.T).T)
    comps, acts = librosa.decompose.decompose(
        S, transformer=BetaNMF(3, max_iter=50, random_state=0)
    )
    assert comps.shape == (S.shape[0], 3) and acts.shape == (3, S.shape[1])
