"""Coarse-to-fine multichannel NMF (nmfsep.ntf_coarse): pooling, monotone fine stage, ntf."""

from __future__ import annotations

import numpy as np
import pytest

from nmfsep.exceptions import ParameterError
from nmfsep.ntf import channel_models, ntf
from nmfsep.ntf_coarse import ntf_coarse_to_fine, pool_frames, unpool_frames


def _panned(seed: int, n_frames: int = 121, n_bins: int = 30):
    rng = np.random.default_rng(seed)
    W = rng.gamma(0.5, 1.0, (n_frames, 3))
    H = rng.gamma(0.5, 1.0, (3, n_bins))
    Q = np.array([[0.9, 0.5, 0.1], [0.1, 0.5, 0.9]])
    return W, H, Q, channel_models(W, H, Q)


@pytest.mark.parametrize("pool", [1, 2, 3, 7])
def test_pooling_is_the_mean_of_each_group(pool: int) -> None:
    X = np.random.default_rng(0).random((2, 11, 4)).astype(np.float32)
    P = pool_frames(X, pool)
    groups = range(0, 11, pool)
    oracle = np.stack([X[:, t:t + pool].mean(axis=1) for t in groups], axis=1)
    assert P.shape == (2, len(groups), 4) and P.dtype == np.float32
    np.testing.assert_allclose(P, oracle, rtol=1e-6)
    U = unpool_frames(P[0], pool, 11)
    assert U.shape == (11, 4) and U.flags.c_contiguous
    assert all(np.array_equal(U[t], P[0, t // pool]) for t in range(11))
    # the model of the pooled frames is the pooled model, exactly (up to rounding)
    W, H, Q, V = _panned(1)
    np.testing.assert_allclose(pool_frames(V, pool),
                               channel_models(pool_frames(W, pool), H, Q), rtol=1e-10)


@pytest.mark.parametrize(("beta", "joint"), [(0.0, None), (1.0, False), (1.0, True),
                                             (2.0, None)])
def test_fine_stage_loss_never_increases_and_counts_both_stages(beta: float, joint) -> None:
    W, H, Q, V = _panned(2)
    V = V + (1e-3 if beta == 0 else 0.0)
    seen: list[tuple[int, float | None]] = []
    res = ntf_coarse_to_fine(V, 4, beta=beta, pool=2, coarse_iter=25, fine_iter=15, tol=0,
                             check_every=1, random_state=0, joint_coarse=joint,
                             joint_fine=joint,
                             callback=lambda i, d: seen.append((i, d)))
    assert res.n_iter == 40 and [i for i, _ in seen] == list(range(1, 41))
    assert all(d is None for _, d in seen[:25]) and all(d is not None for _, d in seen[25:])
    assert list(res.loss_iterations) == list(range(25, 41))
    steps = np.diff(res.loss_history)
    assert (steps <= 1e-10 * res.loss_history[0]).all(), steps.max()
    assert res.W.shape == (121, 4) and res.H.shape == (4, 30)
    np.testing.assert_allclose(res.Q.sum(axis=0), 1.0, rtol=1e-12)
    # the fine stage is ntf from the coarse factors: the same loss as ntf's own account
    assert seen[-1][1] == pytest.approx(res.loss, rel=1e-12)


def test_without_pooling_it_is_ntf() -> None:
    W, H, Q, V = _panned(3)
    a = ntf_coarse_to_fine(V, 3, pool=1, max_iter=50, tol=0, random_state=4)
    b = ntf(V, 3, max_iter=50, tol=0, random_state=4)
    for x, y in ((a.W, b.W), (a.H, b.H), (a.Q, b.Q), (a.loss_history, b.loss_history)):
        assert np.array_equal(x, y)
    # too few frames to pool, or no room for the coarse stage: ntf alone as well
    short = ntf_coarse_to_fine(V[:, :3], 3, pool=2, max_iter=20, tol=0, random_state=4)
    assert np.array_equal(short.W, ntf(V[:, :3], 3, max_iter=20, tol=0, random_state=4).W)
    few = ntf_coarse_to_fine(V, 3, pool=2, fine_iter=30, max_iter=30, tol=0, random_state=4)
    assert np.array_equal(few.W, ntf(V, 3, max_iter=30, tol=0, random_state=4).W)


@pytest.mark.parametrize("joint", [False, True])
def test_recovers_the_positions_and_respects_max_iter(joint: bool) -> None:
    W, H, Q, V = _panned(5, n_frames=240)
    res = ntf_coarse_to_fine(V, 3, pool=2, coarse_iter=300, fine_iter=100, max_iter=350,
                             tol=0, random_state=0, joint_coarse=joint,
                             joint_fine=not joint)
    assert res.n_iter == 350  # 250 coarse (max_iter - fine_iter), 100 fine
    # every true position is found by a component (any order)
    found = np.sort(res.Q[0])
    np.testing.assert_allclose(found, np.sort(Q[0]), atol=0.05)
    assert res.loss < 1e-3 * np.sum(V)


def test_inputs_untouched_and_arguments_checked() -> None:
    W, H, Q, V = _panned(6)
    keep, W0, H0 = V.copy(), W.copy(), H.copy()
    ntf_coarse_to_fine(V, 3, W=W, H=H, Q=Q, coarse_iter=5, fine_iter=5)
    assert np.array_equal(V, keep) and np.array_equal(W, W0) and np.array_equal(H, H0)
    with pytest.raises(ParameterError, match="pool"):
        ntf_coarse_to_fine(V, 3, pool=0)
    with pytest.raises(ParameterError, match="together"):
        ntf_coarse_to_fine(V, 3, W=W)
    with pytest.raises(ParameterError, match="n_channels, n_frames, n_bins"):
        ntf_coarse_to_fine(V[0], 3)


def test_fixed_atoms_stay_fixed_in_both_stages() -> None:
    W, H, Q, V = _panned(7, n_frames=240)
    fixed = H[:2].copy()
    seen: list[int] = []
    res = ntf_coarse_to_fine(V, 3, fixed_atoms=fixed, pool=2, coarse_iter=60, fine_iter=40,
                             tol=0, check_every=1, random_state=0,
                             callback=lambda i, d: seen.append(i))
    assert res.n_iter == 100 and seen == list(range(1, 101))
    np.testing.assert_allclose(res.H[:2], fixed, rtol=1e-6)  # the dictionary, untouched
    assert np.array_equal(fixed, H[:2])
    steps = np.diff(res.loss_history)
    assert (steps <= 1e-10 * res.loss_history[0]).all(), steps.max()
    # the free atom learns the third source: the fit is close to exact
    assert res.loss < 1e-2 * np.sum(V)
    # without pooling it is ntf with the same dictionary
    a = ntf_coarse_to_fine(V, 3, fixed_atoms=fixed, pool=1, max_iter=30, tol=0, random_state=2)
    b = ntf(V, 3, fixed_atoms=fixed, max_iter=30, tol=0, random_state=2)
    assert np.array_equal(a.W, b.W) and np.array_equal(a.H, b.H)
