import warnings

import numpy as np
import pytest

from nmfsep import ConvergenceWarning, ParameterError, beta_divergence, nmf
from nmfsep.nmf import SOLVERS

BETAS = [-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


def _solver_betas():
    for solver in SOLVERS:
        for beta in BETAS:
            if solver == "cd" and beta not in (1.0, 2.0):
                continue
            yield solver, beta


@pytest.mark.parametrize("solver,beta", list(_solver_betas()))
@pytest.mark.parametrize("reg", [None, "l1", "l2"])
def test_objective_never_increases(solver, beta, reg, lowrank):
    kw = {}
    if reg == "l1":
        kw = dict(alpha_W=0.01, alpha_H=0.01, l1_ratio=1.0)
    elif reg == "l2":
        kw = dict(alpha_W=0.01, alpha_H=0.02, l1_ratio=0.3)
    res = nmf(lowrank, 5, beta=beta, solver=solver, init="random", random_state=1, max_iter=25,
              tol=0, check_every=1, **kw)
    hist = res.loss_history
    assert len(hist) == 26
    assert np.all(np.isfinite(hist))
    assert np.all(np.diff(hist) <= 1e-9 * abs(hist[0])), np.diff(hist).max()
    assert hist[-1] < hist[0]


@pytest.mark.parametrize("beta", BETAS)
def test_sparse_normalized_objective_never_increases(beta, lowrank):
    res = nmf(lowrank, 5, beta=beta, normalize_atoms=True, alpha_W=0.01, alpha_H=0.0,
              l1_ratio=1.0, init="random", random_state=3, max_iter=30, tol=0, check_every=1)
    hist = res.loss_history
    assert np.all(np.diff(hist) <= 1e-7 * abs(hist[0]))
    np.testing.assert_allclose(np.linalg.norm(res.H, axis=1), 1.0, rtol=1e-6)


def _sklearn_fit(V, W0, H0, beta, n_iter, update_H=True, **reg):
    from sklearn.decomposition import non_negative_factorization

    W, H, _ = non_negative_factorization(
        V.copy(), W=None if not update_H else W0.copy(), H=H0.copy(), n_components=H0.shape[0],
        init="custom" if update_H else None, update_H=update_H, solver="mu", beta_loss=beta,
        tol=0, max_iter=n_iter, **reg,
    )
    return W, H


@pytest.mark.parametrize("beta", ["kullback-leibler", "itakura-saito", "frobenius", 0.5, 3.0])
@pytest.mark.parametrize("update_H", [True, False])
def test_parity_with_scikit_learn(beta, update_H, rng):
    V = rng.random((80, 2)) @ rng.random((2, 30)) + 0.01
    W0 = rng.random((80, 4)) + 0.1
    H0 = rng.random((4, 30)) + 0.1
    Ws, Hs = _sklearn_fit(V, W0, H0, beta, 50, update_H=update_H)
    if update_H:
        res = nmf(V, 4, beta=beta, init="custom", W=W0, H=H0, tol=0, max_iter=50)
    else:
        res = nmf(V, 4, beta=beta, H=H0, update_H=False, tol=0, max_iter=50)
    loss_sk = beta_divergence(V, Ws, Hs, beta)
    loss = beta_divergence(V, res.W, res.H, beta)
    assert loss == pytest.approx(loss_sk, rel=1e-5)
    np.testing.assert_allclose(res.W, Ws, rtol=1e-6, atol=1e-10)


def test_parity_with_scikit_learn_regularized(rng):
    V = rng.random((60, 25)) + 0.01
    W0, H0 = rng.random((60, 3)) + 0.1, rng.random((3, 25)) + 0.1
    reg = dict(alpha_W=0.001, alpha_H=0.002, l1_ratio=0.4)
    Ws, Hs = _sklearn_fit(V, W0, H0, "kullback-leibler", 50, **reg)
    res = nmf(V, 3, init="custom", W=W0, H=H0, tol=0, max_iter=50, **reg)
    np.testing.assert_allclose(res.H, Hs, rtol=1e-6, atol=1e-12)


def test_reconstruction_err_and_n_iter_match_scikit_learn_estimator(rng):
    from sklearn.decomposition import NMF

    V = rng.random((50, 2)) @ rng.random((2, 20)) + 0.01
    W0, H0 = rng.random((50, 3)) + 0.1, rng.random((3, 20)) + 0.1
    sk = NMF(3, beta_loss="kullback-leibler", solver="mu", init="custom", tol=1e-3, max_iter=500)
    sk.fit_transform(V.copy(), W=W0.copy(), H=H0.copy())
    res = nmf(V, 3, init="custom", W=W0, H=H0, tol=1e-3, max_iter=500)
    assert res.n_iter == sk.n_iter_
    assert res.reconstruction_err == pytest.approx(sk.reconstruction_err_, rel=1e-8)
    assert res.converged


def test_partially_fixed_atoms_stay_bit_identical(lowrank, rng):
    D = rng.random((3, lowrank.shape[1])).astype(lowrank.dtype)
    D_before = D.copy()
    res = nmf(lowrank, 6, fixed_atoms=D, random_state=0, max_iter=40, tol=0)
    assert np.array_equal(res.H[:3], D_before)
    assert np.array_equal(D, D_before)
    assert not np.array_equal(res.H[3:], nmf(lowrank, 6, fixed_atoms=D, random_state=0,
                                             max_iter=1, tol=0).H[3:])
    assert res.fixed.tolist() == [True] * 3 + [False] * 3


def test_semi_supervised_free_atoms_explain_what_dictionary_misses(rng):
    D_true = rng.gamma(1.0, 1.0, (4, 30))
    W_true = rng.gamma(1.0, 1.0, (200, 4))
    V = W_true @ D_true
    only_known = nmf(V, 2, fixed_atoms=D_true[:2], max_iter=300, tol=0)
    semi = nmf(V, 4, fixed_atoms=D_true[:2], max_iter=300, tol=0, random_state=0)
    assert semi.reconstruction_err < 0.3 * only_known.reconstruction_err


@pytest.mark.parametrize("solver", SOLVERS)
def test_inputs_are_never_modified(solver, rng):
    V = rng.gamma(1.0, 3000.0, (300, 20))  # realistic (int16-scale) magnitudes
    W0, H0 = rng.random((300, 3)), rng.random((3, 20))
    copies = [a.copy() for a in (V, W0, H0)]
    nmf(V, 3, solver=solver, init="custom", W=W0, H=H0, max_iter=5, tol=0)
    nmf(V, 3, solver=solver, H=H0, update_H=False, max_iter=5, tol=0)
    nmf(V, 5, solver=solver, fixed_atoms=H0, max_iter=5, tol=0)
    for a, b in zip((V, W0, H0), copies, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("solver", SOLVERS)
def test_dtype_is_preserved_and_float32_close_to_float64(solver, lowrank):
    r64 = nmf(lowrank, 4, solver=solver, random_state=0, max_iter=30, tol=0)
    r32 = nmf(lowrank.astype(np.float32), 4, solver=solver, random_state=0, max_iter=30, tol=0)
    assert r64.W.dtype == r64.H.dtype == np.float64
    assert r32.W.dtype == r32.H.dtype == np.float32
    assert r32.reconstruction_err == pytest.approx(r64.reconstruction_err, rel=1e-3)


@pytest.mark.parametrize("init", ["random", "nndsvd", "nndsvda", "nndsvdar"])
def test_reproducible_bit_for_bit(init, rng):
    V = rng.gamma(1.0, 1.0, (700, 60)).astype(np.float32)
    a = nmf(V, 5, init=init, random_state=11, max_iter=20, tol=0, n_threads=2)
    b = nmf(V, 5, init=init, random_state=11, max_iter=20, tol=0, n_threads=2)
    assert np.array_equal(a.W, b.W) and np.array_equal(a.H, b.H)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0, 1.5])
def test_threads_give_bit_identical_results(beta, rng):
    V = rng.gamma(1.0, 1.0, (900, 50)).astype(np.float32)
    a = nmf(V, 4, beta=beta, random_state=0, max_iter=20, tol=0, n_threads=1)
    b = nmf(V, 4, beta=beta, random_state=0, max_iter=20, tol=0, n_threads=2)
    c = nmf(V, 4, beta=beta, random_state=0, max_iter=20, tol=0, n_threads=3)
    assert np.array_equal(a.W, b.W) and np.array_equal(a.H, b.H)
    assert np.array_equal(a.W, c.W) and np.array_equal(a.H, c.H)


def test_random_init_matches_scikit_learn(rng):
    from sklearn.decomposition._nmf import _initialize_nmf

    from nmfsep.init import initialize

    V = rng.random((30, 10))
    for method in ("random", "nndsvd", "nndsvda"):
        W, H = initialize(V, 3, method, random_state=5)
        Ws, Hs = _initialize_nmf(V, 3, init=method, random_state=5)
        np.testing.assert_allclose(W @ H, Ws @ Hs, rtol=1e-8, atol=1e-10)


def test_itakura_saito_handles_digital_silence(rng):
    V = rng.gamma(1.0, 1.0, (100, 30)) ** 2
    V[20:40] = 0.0  # silent frames
    V[:, 5] = 0.0
    res = nmf(V, 4, beta="itakura-saito", random_state=0, max_iter=50, tol=0)
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    assert np.all(np.isfinite(res.loss_history))


@pytest.mark.parametrize("beta", BETAS)
def test_all_zero_input_gives_finite_output(beta):
    V = np.zeros((50, 10))
    res = nmf(V, 3, beta=beta, init="random", random_state=0, max_iter=20)
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    assert np.isfinite(res.reconstruction_err)


def test_convergence_warning_and_callback(lowrank):
    calls = []
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        res = nmf(lowrank, 3, max_iter=7, tol=1e-12,
                  callback=lambda i, loss: calls.append((i, loss)))
    assert [c[0] for c in calls] == list(range(1, 8))
    assert calls[-1][1] is not None and calls[0][1] is None
    assert res.n_iter == 7 and not res.converged
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nmf(lowrank, 3, max_iter=7, tol=0)  # tol=0: no warning


def test_loss_history_every_iteration_on_request(lowrank):
    res = nmf(lowrank, 3, max_iter=12, tol=0, check_every=1)
    assert res.loss_iterations.tolist() == list(range(13))
    res = nmf(lowrank, 3, max_iter=25, tol=0)
    assert res.loss_iterations.tolist() == [0, 10, 20, 25]


def test_sparse_activations_with_unit_norm_atoms(lowrank):
    plain = nmf(lowrank, 6, alpha_W=0.5, alpha_H=0.0, l1_ratio=1.0, random_state=0,
                max_iter=300, tol=0)
    sparse = nmf(lowrank, 6, alpha_W=0.5, alpha_H=0.0, l1_ratio=1.0, normalize_atoms=True,
                 random_state=0, max_iter=300, tol=0)
    # without normalisation the L1 penalty is dodged: W shrinks and H grows
    assert np.linalg.norm(plain.H, axis=1).max() > 2.0
    np.testing.assert_allclose(np.linalg.norm(sparse.H, axis=1), 1.0, rtol=1e-6)

    def gini_sparsity(W):
        x = np.sort(np.abs(W).ravel())
        n = x.size
        return 1 - 2 * np.sum(x * (n - np.arange(1, n + 1) + 0.5)) / (n * x.sum())

    dense = nmf(lowrank, 6, normalize_atoms=True, random_state=0, max_iter=300, tol=0)
    assert gini_sparsity(sparse.W) > gini_sparsity(dense.W) + 0.05


@pytest.mark.parametrize(
    "V,msg",
    [
        (np.array([[1.0, -1.0]]), "negative"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[1.0, np.inf]]), "NaN or infinite"),
        (np.ones(5), "2-D"),
        (np.ones((0, 5)), "is empty"),
        (np.array([["a", "b"]]), "real numbers"),
    ],
)
def test_bad_data_is_refused(V, msg):
    with pytest.raises(ParameterError, match=msg):
        nmf(V, 1)


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        (dict(n_components=0), "n_components"),
        (dict(n_components=2.5), "n_components"),
        (dict(n_components=2, solver="als"), r"^solver must be one of \('mu', 'amu', 'cd'\)"),
        (dict(n_components=2, beta="kl"), "beta must"),
        (dict(n_components=2, solver="cd", beta=0.5), "solver='cd'"),
        (dict(n_components=2, max_iter=-1), "max_iter"),
        (dict(n_components=2, tol=-1.0), "tol"),
        (dict(n_components=2, l1_ratio=2.0), r"^l1_ratio must be a number in \[0, 1\], got 2.0$"),
        (dict(n_components=2, alpha_W=-1.0), "alpha_W"),
        (dict(n_components=2, init="svd"), r"^init must be one of \('random', .*'custom'\)"),
        (dict(n_components=2, init="custom"), "custom"),
        (dict(n_components=1, fixed_atoms=np.ones((2, 6))), "smaller than"),
        (dict(n_components=3, fixed_atoms=np.ones((2, 5))), "bins"),
        (dict(n_components=9, init="nndsvd"), "init='random'"),
        (dict(n_components=2, random_state="x"), "random_state"),
        (dict(n_components=2, random_state=-1), "random_state must be an int from 0 to"),
        (dict(n_components=2, init="custom", W=np.ones((8, 3)), H=np.ones((2, 6))),
         r"^W must be an array of shape \(8, 2\), got \(8, 3\)$"),
    ],
)
def test_bad_parameters_are_refused(kwargs, msg, rng):
    V = rng.random((8, 6))
    with pytest.raises(ParameterError, match=msg):
        nmf(V, **kwargs)


def test_cd_reaches_lower_loss_per_iteration_than_mu(lowrank):
    for beta in (1.0, 2.0):
        mu = nmf(lowrank, 4, beta=beta, random_state=0, max_iter=20, tol=0)
        cd = nmf(lowrank, 4, beta=beta, solver="cd", random_state=0, max_iter=20, tol=0)
        assert cd.loss < mu.loss


def test_amu_reaches_lower_loss_than_mu_in_same_iterations(lowrank):
    for beta in (0.0, 1.0):
        mu = nmf(lowrank, 4, beta=beta, random_state=0, max_iter=100, tol=0)
        amu = nmf(lowrank, 4, beta=beta, solver="amu", random_state=0, max_iter=100, tol=0)
        assert amu.loss < mu.loss


def test_blas_is_single_threaded_during_a_fit_and_restored_after():
    from threadpoolctl import threadpool_info

    from nmfsep.nmf import _blas_controller, blas_single_thread

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    with blas_single_thread(enabled=True):
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
    # the library scan is cached: the same controller until modules are imported
    assert _blas_controller() is _blas_controller()


def test_kernel_or_numpy_is_decided_by_problem_size_alone():
    from nmfsep.divergence import KERNEL_MIN_WORK, use_kernel

    # the README's 8-second sample (345 frames x 1025 bins, k = 16) runs in numpy: no
    # compile on a fresh install; the benchmarks' 60-second spectrogram with k = 8 (and
    # anything bigger) in the compiled kernel
    assert not use_kernel(345, 1025, 16)
    assert use_kernel(2584, 1025, 8)
    assert use_kernel(1, 1, KERNEL_MIN_WORK) and not use_kernel(1, 1, KERNEL_MIN_WORK - 1)


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_small_problems_never_touch_the_compiled_kernels(beta, monkeypatch, rng):
    import nmfsep._mu
    import nmfsep.divergence

    def compiled(*args, **kwargs):
        raise AssertionError("a compiled kernel was used")

    monkeypatch.setattr(nmfsep._mu, "_fused", compiled)
    monkeypatch.setattr(nmfsep.divergence, "_divergence_terms_fused", compiled)
    V = rng.gamma(1.0, 1.0, (345, 200)).astype(np.float32)
    res = nmf(V, 16, beta=beta, solver="amu", random_state=0, max_iter=20, tol=1e-4, warn=False)
    assert np.isfinite(beta_divergence(V, res.W, res.H, beta))


def test_small_fit_does_not_even_import_numba():
    import subprocess
    import sys

    code = ("import sys, numpy as np, nmfsep\n"
            "V = np.random.default_rng(0).gamma(1.0, 1.0, (345, 1025)).astype(np.float32)\n"
            "for b in ('kullback-leibler', 'itakura-saito'):\n"
            "    r = nmfsep.nmf(V, 16, beta=b, max_iter=3, random_state=0, warn=False)\n"
            "    nmfsep.beta_divergence(V, r.W, r.H, b)\n"
            "assert 'numba' not in sys.modules, 'numba imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_large_problems_run_the_kernel_with_the_numpy_iterates(beta, monkeypatch, rng):
    import nmfsep._mu
    import nmfsep.divergence

    V = rng.gamma(1.0, 1.0, (300, 70))
    numpy_path = nmf(V, 5, beta=beta, random_state=0, max_iter=30, tol=0)
    calls = []
    fused = nmfsep._mu._fused
    monkeypatch.setattr(nmfsep._mu, "_fused", lambda *a: calls.append(1) or fused(*a))
    monkeypatch.setattr(nmfsep.divergence, "KERNEL_MIN_WORK", 1)  # every problem is "large"
    one = nmf(V, 5, beta=beta, random_state=0, max_iter=30, tol=0, n_threads=1)
    two = nmf(V, 5, beta=beta, random_state=0, max_iter=30, tol=0, n_threads=2)
    assert calls
    assert np.array_equal(one.W, two.W) and np.array_equal(one.H, two.H)
    np.testing.assert_allclose(one.W, numpy_path.W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(one.H, numpy_path.H, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(one.loss_history, numpy_path.loss_history, rtol=1e-12)


@pytest.mark.parametrize("case", ["nndsvda", "random", "fixed", "custom"])
def test_starting_factors_are_nmfs_start(case):
    """starting_factors gives the W, H that nmf(max_iter=0) returns, without the loss."""
    from nmfsep.nmf import starting_factors

    rng = np.random.default_rng(3)
    V = rng.random((40, 12)).astype(np.float32)
    V_before = V.copy()
    kw: dict = {"random_state": 7}
    if case == "random":
        kw["init"] = "random"
    elif case == "fixed":
        kw["fixed_atoms"] = rng.random((3, 12))
    elif case == "custom":
        kw.update(init="custom", W=rng.random((40, 5)), H=rng.random((5, 12)),
                  fixed_atoms=rng.random((2, 12)))
    W0, H0 = starting_factors(V, 5, **kw)
    ref = nmf(V, 5, max_iter=0, warn=False, **kw)
    np.testing.assert_array_equal(W0, ref.W)
    np.testing.assert_array_equal(H0, ref.H)
    assert W0.dtype == H0.dtype == np.float32
    np.testing.assert_array_equal(V, V_before)
    with pytest.raises(ParameterError, match="n_components"):
        starting_factors(V, 1, fixed_atoms=rng.random((3, 12)))
