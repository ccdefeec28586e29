"""Fixed atoms adapted under a penalty (``nmf(..., adapt=mu)``, nmfsep._adapt)."""

import warnings

import numpy as np
import pytest
from scipy.special import kl_div

from nmfsep import ParameterError, nmf


@pytest.fixture(scope="module")
def problem():
    """V (150, 36) from 3 atoms; two learned atoms H0 (unit L2 norm) near two of them."""
    g = np.random.default_rng(11)
    H_true = g.gamma(1.0, 1.0, (3, 36))
    V = g.gamma(1.0, 1.0, (150, 3)) @ H_true + 0.02 * g.random((150, 36))
    H0 = H_true[:2] * g.uniform(0.5, 1.5, (2, 36))  # learned elsewhere: a distorted copy
    H0 /= np.linalg.norm(H0, axis=1, keepdims=True)
    return V, H0


def _fit(V, H0, k, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nmf(V, k, fixed_atoms=H0, random_state=0, tol=0, **kw)


def _slow(V, H0, W, H, mu, n_iter):
    """The updates of nmfsep._adapt written out on whole matrices (every atom adapted)."""
    W, H = W.copy(), H.copy()
    for _ in range(n_iter):
        c = mu * kl_div(H0, H).sum(axis=1)
        W *= (V / np.maximum(W @ H, 1.1920929e-07)) @ H.T / (H.sum(axis=1) + c)
        s = W.sum(axis=0)[:, None]
        mu_ = (H * ((W.T @ (V / np.maximum(W @ H, 1.1920929e-07))) / s) + mu * H0) / (1 + mu)
        H = mu_
    return W, H


def _objective(V, W, H, H0, mu):
    WH = W @ H
    data = np.sum(kl_div(V, WH))
    return data + mu * np.sum(W.sum(axis=0) * kl_div(H0, H[: H0.shape[0]]).sum(axis=1))


@pytest.mark.parametrize("solver", ["mu", "amu"])
@pytest.mark.parametrize("mu", [0.0, 0.05, 1.0, 20.0])
@pytest.mark.parametrize("n_free", [0, 2])
def test_penalised_objective_never_increases(problem, solver, mu, n_free):
    V, H0 = problem
    res = _fit(V, H0, 2 + n_free, adapt=mu, solver=solver, max_iter=40, check_every=1)
    hist = res.loss_history
    assert len(hist) == 41 and np.all(np.isfinite(hist))
    assert np.all(np.diff(hist) <= 1e-10 * abs(hist[0])), np.diff(hist).max()
    assert hist[-1] < hist[0]
    if n_free == 0:  # the history is the penalised objective, not the divergence alone
        np.testing.assert_allclose(hist[-1], _objective(V, res.W, res.H, H0, mu), rtol=1e-9)


def test_matches_a_slow_obvious_implementation(problem):
    V, H0 = problem
    start = _fit(V, H0, 2, adapt=0.3, max_iter=0)
    res = _fit(V, H0, 2, adapt=0.3, max_iter=25)
    W, H = _slow(V, H0, start.W, start.H, 0.3, 25)
    np.testing.assert_allclose(res.W, W, rtol=1e-9)
    np.testing.assert_allclose(res.H, H, rtol=1e-9)


@pytest.mark.parametrize("fixed_value", [None, np.inf, [np.inf, np.inf]])
def test_infinite_mu_is_the_fixed_atoms_bit_for_bit(problem, fixed_value):
    V, H0 = problem
    fixed = _fit(V, H0, 4, max_iter=30)
    same = _fit(V, H0, 4, adapt=fixed_value, max_iter=30)
    assert np.array_equal(fixed.W, same.W) and np.array_equal(fixed.H, same.H)
    assert np.array_equal(same.H[:2], H0)
    np.testing.assert_array_equal(fixed.loss_history, same.loss_history)


def test_zero_mu_is_free_atoms_started_from_the_learned_ones(problem):
    V, H0 = problem
    start = _fit(V, H0, 4, adapt=0.0, max_iter=0)
    adapted = _fit(V, H0, 4, adapt=0.0, max_iter=30)
    free = nmf(V, 4, init="custom", W=start.W, H=start.H, max_iter=30, tol=0)
    assert np.array_equal(adapted.W, free.W) and np.array_equal(adapted.H, free.H)


def test_mu_per_atom_moves_only_the_finite_ones(problem):
    V, H0 = problem
    res = _fit(V, H0, 3, adapt=[np.inf, 0.5], max_iter=30)
    assert np.array_equal(res.H[0], H0[0])
    assert not np.allclose(res.H[1], H0[1])


def test_atoms_move_less_as_mu_grows_and_fit_better_than_fixed(problem):
    V, H0 = problem
    fixed = _fit(V, H0, 2, max_iter=100)
    dist = []
    for mu in (0.0, 0.1, 1.0, 10.0, 100.0):
        res = _fit(V, H0, 2, adapt=mu, max_iter=100)
        dist.append(np.abs(res.H - H0).max())
        assert res.reconstruction_err < fixed.reconstruction_err
    assert np.all(np.diff(dist) < 0), dist
    assert dist[-1] < 0.02 * dist[0]


def test_the_penalty_does_not_depend_on_the_level_of_v(problem):
    # weighted by each atom's activations, the penalty scales with V like the divergence
    V, H0 = problem
    a = _fit(V, H0, 2, adapt=0.5, max_iter=30)
    b = _fit(1000.0 * V, H0, 2, adapt=0.5, max_iter=30)
    np.testing.assert_allclose(b.H, a.H, rtol=1e-8)
    np.testing.assert_allclose(b.W, 1000.0 * a.W, rtol=1e-8)


def test_float32_and_the_compiled_kernel_follow_the_numpy_path(problem, monkeypatch):
    import nmfsep.divergence

    V, H0 = problem
    ref = _fit(V, H0, 3, adapt=0.2, max_iter=20)
    monkeypatch.setattr(nmfsep.divergence, "KERNEL_MIN_WORK", 1)  # every problem is "large"
    fused = _fit(V, H0, 3, adapt=0.2, max_iter=20)
    np.testing.assert_allclose(fused.W, ref.W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fused.H, ref.H, rtol=1e-9, atol=1e-12)
    f32 = _fit(V.astype(np.float32), H0.astype(np.float32), 3, adapt=0.2, max_iter=20)
    assert f32.H.dtype == np.float32
    np.testing.assert_allclose(f32.H, ref.H, rtol=2e-3, atol=1e-5)


def test_inputs_are_not_modified(problem):
    V, H0 = problem
    V0, H00 = V.copy(), H0.copy()
    mu = np.array([0.1, 0.2])
    _fit(V, H0, 3, adapt=mu, max_iter=5)
    assert np.array_equal(V, V0) and np.array_equal(H0, H00)
    assert np.array_equal(mu, [0.1, 0.2])


@pytest.mark.parametrize("kwargs,msg", [
    (dict(adapt=-1.0), "adapt must be a number >= 0"),
    (dict(adapt=float("nan")), "adapt must be a number >= 0"),
    (dict(adapt=[0.1, 0.2, 0.3]), "or 2 of them"),
    (dict(adapt="0.5"), "adapt must be"),
    (dict(adapt=0.5, beta="itakura-saito"), "adapt supports beta 1"),
    (dict(adapt=0.5, solver="cd"), "adapt needs solver='mu' or 'amu'"),
    (dict(adapt=0.5, update_H=False), "update_H=False"),
])
def test_bad_adapt_is_refused(problem, kwargs, msg):
    V, H0 = problem
    with pytest.raises(ParameterError, match=msg):
        nmf(V + 0.01, 2, fixed_atoms=H0, max_iter=2, **kwargs)


def test_adapt_needs_fixed_atoms(problem):
    with pytest.raises(ParameterError, match="adapt needs fixed_atoms"):
        nmf(problem[0], 2, adapt=0.5, max_iter=2)
