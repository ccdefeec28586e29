"""Multichannel β-NMF (nmfsep.ntf): monotone, NMF with one channel, a slow oracle, gains."""

from __future__ import annotations

import numpy as np
import pytest

from nmfsep.exceptions import ParameterError
from nmfsep.nmf import nmf
from nmfsep.ntf import channel_models, initial_gains, ntf, pan_histogram, pan_peaks

BETAS = [0.0, 0.5, 1.0, 1.5, 2.0]


def _panned(rng: np.random.Generator, n_frames: int = 120, n_bins: int = 30):
    W = rng.gamma(0.5, 1.0, (n_frames, 3))
    H = rng.gamma(0.5, 1.0, (3, n_bins))
    Q = np.array([[0.9, 0.5, 0.1], [0.1, 0.5, 0.9]])
    return W, H, Q, channel_models(W, H, Q)


@pytest.mark.parametrize("beta", BETAS)
def test_one_channel_is_nmf(beta: float) -> None:
    rng = np.random.default_rng(1)
    V = rng.gamma(1.0, 1.0, (60, 25))
    a = ntf(V[None], 4, beta=beta, max_iter=40, tol=0, random_state=3)
    b = nmf(V, 4, beta=beta, max_iter=40, tol=0, random_state=3, warn=False)
    np.testing.assert_allclose(a.W @ a.H, b.W @ b.H, rtol=1e-9, atol=1e-12)
    assert a.loss == pytest.approx(b.loss_history[-1], rel=1e-9)
    assert np.array_equal(a.Q, np.ones((1, 4)))


def test_one_channel_supervised_is_nmf_with_fixed_atoms() -> None:
    rng = np.random.default_rng(2)
    V = rng.gamma(1.0, 1.0, (50, 20)).astype(np.float32)
    D = rng.random((3, 20)).astype(np.float32)
    a = ntf(V[None], 5, fixed_atoms=D, max_iter=30, tol=0, random_state=0)
    b = nmf(V, 5, fixed_atoms=D, max_iter=30, tol=0, random_state=0, warn=False)
    np.testing.assert_allclose(a.W @ a.H, b.W @ b.H, rtol=1e-4, atol=1e-6)
    assert np.array_equal(a.H[:3], D) and a.W.dtype == np.float32


@pytest.mark.parametrize("beta", BETAS)
def test_loss_never_increases(beta: float) -> None:
    rng = np.random.default_rng(3)
    V = rng.gamma(1.0, 1.0, (2, 70, 20)) + (0.0 if beta > 0 else 1e-3)
    res = ntf(V, 5, beta=beta, max_iter=60, tol=0, check_every=1, random_state=0)
    steps = np.diff(res.loss_history)
    assert (steps <= 1e-10 * res.loss_history[0]).all(), steps.max()
    assert res.loss < res.loss_history[0]
    np.testing.assert_allclose(res.Q.sum(axis=0), 1.0, rtol=1e-12)


def _oracle(V, W, H, Qg, beta, n_iter, labels, n_fixed=0):
    """The updates written out with einsum over the whole tensor (slow and obvious).

    ``Qg (C, n_groups)``: gains shared by the components of each group (``labels[k]``);
    the first ``n_fixed`` atoms stay fixed.
    """
    g = 1 / (2 - beta) if beta < 1 else 1.0
    W, H, Qg = W.copy(), H.copy(), Qg.copy()
    T = np.eye(Qg.shape[1])[labels]  # (k, n_groups), one-hot
    Q = Qg @ T.T

    def model():
        return np.maximum(np.einsum("ck,tk,kf->ctf", Q, W, H), 2.0**-23)

    for _ in range(n_iter):
        L = model()
        W *= (np.einsum("ctf,ck,kf->tk", V * L ** (beta - 2), Q, H)
              / np.einsum("ctf,ck,kf->tk", L ** (beta - 1), Q, H)) ** g
        L = model()
        H[n_fixed:] *= (np.einsum("ctf,ck,tk->kf", V * L ** (beta - 2), Q, W)
                        / np.einsum("ctf,ck,tk->kf", L ** (beta - 1), Q, W))[n_fixed:] ** g
        L = model()
        Qg *= ((np.einsum("ctf,tk,kf->ck", V * L ** (beta - 2), W, H) @ T)
               / (np.einsum("ctf,tk,kf->ck", L ** (beta - 1), W, H) @ T)) ** g
        s = Qg.sum(axis=0)
        Qg /= s
        W *= s @ T.T
        Q = Qg @ T.T
    return W, H, Q


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("tied", [False, True, "large"])
def test_equals_a_slow_oracle(beta: float, tied: bool | str) -> None:
    """Gains per atom (channel by channel), in small groups, in large groups (mixed)."""
    rng = np.random.default_rng(4)
    k = 20 if tied == "large" else 4
    V = rng.gamma(1.0, 1.0, (3, 30, 12))
    W0, H0 = rng.random((30, k)) + 0.1, rng.random((k, 12)) + 0.1
    labels = {False: np.arange(4), True: np.array([0, 1, 0, 2]),
              "large": np.arange(k) // 10}[tied]
    groups = [list(np.flatnonzero(labels == g)) for g in range(labels.max() + 1)]
    Q0 = rng.random((3, len(groups))) + 0.1
    Q0 /= Q0.sum(axis=0)
    res = ntf(V, k, beta=beta, W=W0, H=H0, Q=Q0, gain_groups=groups, max_iter=15, tol=0)
    W, H, Q = _oracle(V, W0, H0, Q0, beta, 15, labels)
    np.testing.assert_allclose(res.Q, Q, rtol=1e-8)
    np.testing.assert_allclose(res.W @ res.H, W @ H, rtol=1e-8)


@pytest.mark.parametrize("n_fixed", [0, 24])
def test_compiled_stacked_passes_equal_the_oracle(n_fixed: int) -> None:
    """KL in float32, large enough for the compiled kernels over the channels' stacked rows:
    gains per atom (blind), and a dictionary in two tied groups plus free atoms."""
    rng = np.random.default_rng(7)
    C, n, F, k = 2, 256, 1024, 32  # C n F k = 2 ** 24: nmfsep.divergence.KERNEL_MIN_WORK
    V = rng.gamma(1.0, 1.0, (C, n, F)).astype(np.float32)
    W0 = (rng.random((n, k)) + 0.1).astype(np.float32)
    H0 = (rng.random((k, F)) + 0.1).astype(np.float32)
    labels = np.arange(k) if n_fixed == 0 else np.r_[[0] * 12, [1] * 12, np.arange(2, 10)]
    groups = [list(np.flatnonzero(labels == g)) for g in range(labels.max() + 1)]
    Q0 = rng.random((C, len(groups))) + 0.1
    Q0 /= Q0.sum(axis=0)
    res = ntf(V, k, W=W0, H=H0, Q=Q0, gain_groups=groups, max_iter=5, tol=0,
              fixed_atoms=H0[:n_fixed] if n_fixed else None)
    W, H, Q = _oracle(V.astype(np.float64), W0.astype(np.float64), H0.astype(np.float64),
                      Q0, 1.0, 5, labels, n_fixed)
    np.testing.assert_allclose(res.Q, Q, rtol=1e-4)
    np.testing.assert_allclose(res.W @ res.H, W @ H, rtol=2e-4)
    assert np.array_equal(res.H[:n_fixed], H0[:n_fixed]) and res.W.dtype == np.float32


def test_joint_gain_updates_converge_like_the_alternating_ones(monkeypatch) -> None:
    """nmfsep.ntf.JOINT_GAINS (off by default): gains from W's products, no pass of their own."""
    import nmfsep.ntf as ntf_module

    rng = np.random.default_rng(8)
    W, H, Q, V = _panned(rng, 150, 40)
    exact = ntf(V, 3, max_iter=150, tol=0, random_state=0)
    monkeypatch.setattr(ntf_module, "JOINT_GAINS", True)
    joint = ntf(V, 3, max_iter=150, tol=0, check_every=1, random_state=0)
    assert joint.loss < 1e-3 * joint.loss_history[0]
    assert joint.loss == pytest.approx(exact.loss, rel=0.5, abs=1e-6 * exact.loss_history[0])
    np.testing.assert_allclose(joint.Q.sum(axis=0), 1.0, rtol=1e-12)
    found = sorted(map(tuple, np.round(joint.Q.T, 1)))
    assert found == sorted(map(tuple, np.round(Q.T, 1)))


@pytest.mark.parametrize("tied", [False, True])
def test_joint_gain_updates_never_increase_the_loss(tied: bool, monkeypatch) -> None:
    """joint_gains=True: W and the gains minimise one majorising function together (exact
    for a product W_tk Q_ck), so the KL loss never increases, with tied gains too; the
    argument equals the module switch."""
    import nmfsep.ntf as ntf_module

    rng = np.random.default_rng(10)
    V = rng.gamma(1.0, 1.0, (2, 70, 20)).astype(np.float32)
    groups = [[0, 1], [2], [3, 4]] if tied else None
    res = ntf(V, 5, joint_gains=True, gain_groups=groups, max_iter=80, tol=0, check_every=1,
              random_state=0)
    steps = np.diff(res.loss_history)
    assert (steps <= 1e-6 * res.loss_history[0]).all(), steps.max()
    assert res.loss < 0.5 * res.loss_history[0]
    np.testing.assert_allclose(res.Q.sum(axis=0), 1.0, rtol=1e-6)
    monkeypatch.setattr(ntf_module, "JOINT_GAINS", True)
    same = ntf(V, 5, gain_groups=groups, max_iter=80, tol=0, random_state=0)
    assert np.array_equal(same.W, res.W) and np.array_equal(same.Q, res.Q)


def test_joint_gain_updates_with_free_atoms_never_increase_the_loss() -> None:
    """Semi-supervised (plan.SEMI_JOINT_GAINS): fixed atoms with one tied gain vector, free
    atoms with their own; W and the gains jointly, then the free atoms: monotone, and the
    fixed atoms stay as given."""
    rng = np.random.default_rng(11)
    V = rng.gamma(1.0, 1.0, (2, 70, 20)).astype(np.float32)
    fixed = rng.gamma(1.0, 1.0, (3, 20)).astype(np.float32)
    res = ntf(V, 5, fixed_atoms=fixed, gain_groups=[[0, 1, 2], [3], [4]], joint_gains=True,
              max_iter=80, tol=0, check_every=1, random_state=0)
    steps = np.diff(res.loss_history)
    assert (steps <= 1e-6 * res.loss_history[0]).all(), steps.max()
    assert res.loss < 0.7 * res.loss_history[0]
    assert np.array_equal(res.H[:3], fixed) and not np.array_equal(res.Q[:, 3], res.Q[:, 4])
    np.testing.assert_allclose(res.Q.sum(axis=0), 1.0, rtol=1e-6)


def test_recovers_known_gains_with_fixed_atoms() -> None:
    W, H, Q, V = _panned(np.random.default_rng(5))
    res = ntf(V, fixed_atoms=H, max_iter=400, tol=0)
    np.testing.assert_allclose(res.Q, Q, atol=2e-3)
    assert np.array_equal(res.H, H)
    # a source of 16 atoms at one place, another of 8: one gain vector each
    rng = np.random.default_rng(9)
    W, H = rng.gamma(0.5, 1.0, (150, 24)), rng.gamma(0.5, 1.0, (24, 30))
    Qt = np.array([[0.8] * 16 + [0.3] * 8, [0.2] * 16 + [0.7] * 8])
    V = channel_models(W, H, Qt)
    res = ntf(V, fixed_atoms=H, gain_groups=[range(16), range(16, 24)], max_iter=1500, tol=0)
    np.testing.assert_allclose(res.Q, Qt, atol=2e-3)
    assert np.array_equal(res.Q[:, 0], res.Q[:, 15])


def test_inputs_untouched_and_arguments_checked() -> None:
    W, H, Q, V = _panned(np.random.default_rng(6))
    keep = V.copy()
    ntf(V, 3, max_iter=5, random_state=0)
    assert np.array_equal(V, keep)
    with pytest.raises(ParameterError, match="n_channels, n_frames, n_bins"):
        ntf(V[0], 3)
    with pytest.raises(ParameterError, match="Negative"):
        ntf(-V, 3)
    with pytest.raises(ParameterError, match="Q must have shape"):
        ntf(V, 3, Q=np.ones((3, 3)))
    with pytest.raises(ParameterError, match="gain_groups"):
        ntf(V, 3, gain_groups=[[0, 1], [1, 2]])
    with pytest.raises(ParameterError, match="leave components"):
        ntf(V, 3, gain_groups=[[0, 1]])


def test_pan_histogram_finds_the_positions() -> None:
    rng = np.random.default_rng(7)
    S = rng.gamma(0.3, 1.0, (2, 200, 64))
    angles = np.array([0.3, 1.2])  # radians: left of centre, right of centre
    # W-disjoint orthogonality (DUET): each bin belongs to the louder source
    mask = S[0] > S[1]
    V = np.stack([np.where(mask, np.cos(angles[0]) * S[0], np.cos(angles[1]) * S[1]),
                  np.where(mask, np.sin(angles[0]) * S[0], np.sin(angles[1]) * S[1])])
    centres, weights = pan_histogram(V)
    assert weights.sum() == pytest.approx(1.0)
    found = np.sort(pan_peaks(centres, weights, 2))
    np.testing.assert_allclose(found, angles, atol=0.03)


@pytest.mark.parametrize("method", ["share", "peaks"])
def test_initial_gains_point_at_each_component(method: str) -> None:
    rng = np.random.default_rng(8)
    H = np.zeros((2, 40))
    H[0, :20], H[1, 20:] = 1.0, 1.0  # disjoint spectra: each bin belongs to one source
    W = rng.gamma(1.0, 1.0, (100, 2))
    Q = np.array([[np.cos(0.3), np.cos(1.2)], [np.sin(0.3), np.sin(1.2)]])
    Q = Q / Q.sum(axis=0)
    V = channel_models(W, H, Q)
    got = initial_gains(V, np.ones_like(W), H, method=method)
    np.testing.assert_allclose(got, Q, atol=0.03)
    both = initial_gains(V, np.ones_like(W), H, method="share", gain_groups=[[0, 1]])
    share = (V / V.sum(axis=0)).mean(axis=(1, 2))  # W H = 1 everywhere: a plain mean
    np.testing.assert_allclose(both[:, 0], share, atol=1e-9)
    np.testing.assert_allclose(initial_gains(V, W, H, method="uniform"), 0.5)


def test_initial_gains_with_a_constant_start_equal_the_general_sum() -> None:
    """nmf's start with fixed atoms repeats one row of W: the shortcut sums frames first."""
    rng = np.random.default_rng(12)
    V = rng.gamma(1.0, 1.0, (2, 30, 16))
    H = rng.random((5, 16))
    W = np.full((30, 5), 0.7)
    total = V.sum(axis=0)
    slow = np.array([[np.sum(W[:, k:k + 1] * H[k] * V[c] / total) for k in range(5)]
                     for c in range(2)])
    slow /= slow.sum(axis=0)
    np.testing.assert_allclose(initial_gains(V, W, H, method="share"), slow, rtol=1e-10)
    W[3, 2] = 0.8  # not constant: the general product
    slow2 = np.array([[np.sum(W[:, k:k + 1] * H[k] * V[c] / total) for k in range(5)]
                      for c in range(2)])
    np.testing.assert_allclose(initial_gains(V, W, H, method="share"),
                               slow2 / slow2.sum(axis=0), rtol=1e-10)


@pytest.mark.parametrize("beta", [0.0, 1.0, 1.5])
def test_fixed_atoms_in_source_groups_gains_then_activations(beta: float) -> None:
    """With a dictionary and large gain groups the gains are updated first, then W."""
    rng = np.random.default_rng(10)
    V = rng.gamma(1.0, 1.0, (2, 40, 15)) + 1e-3
    D = rng.random((20, 15)) + 0.1
    labels = np.arange(20) // 10
    groups = [range(10), range(10, 20)]
    W0 = rng.random((40, 20)) + 0.1
    Q0 = np.array([[0.7, 0.4], [0.3, 0.6]])
    res = ntf(V, fixed_atoms=D, beta=beta, W=W0, H=D, Q=Q0, gain_groups=groups, max_iter=12,
              tol=0, check_every=1)
    assert (np.diff(res.loss_history) <= 1e-10 * res.loss_history[0]).all()
    g = 1 / (2 - beta) if beta < 1 else 1.0
    W, Qg, T = W0.copy(), Q0.copy(), np.eye(2)[labels]
    for _ in range(12):
        for part in ("Q", "W"):
            L = np.maximum(np.einsum("ck,tk,kf->ctf", Qg @ T.T, W, D), 2.0**-23)
            num, den = V * L ** (beta - 2), L ** (beta - 1)
            if part == "Q":
                Qg *= ((np.einsum("ctf,tk,kf->ck", num, W, D) @ T)
                       / (np.einsum("ctf,tk,kf->ck", den, W, D) @ T)) ** g
                s = Qg.sum(axis=0)
                Qg /= s
                W *= s @ T.T
            else:
                W *= (np.einsum("ctf,ck,kf->tk", num, Qg @ T.T, D)
                      / np.einsum("ctf,ck,kf->tk", den, Qg @ T.T, D)) ** g
    np.testing.assert_allclose(res.Q, Qg @ T.T, rtol=1e-8)
    np.testing.assert_allclose(res.W, W, rtol=1e-8)


def test_pan_spread_tells_one_place_from_several() -> None:
    from nmfsep.ntf import pan_spread

    rng = np.random.default_rng(11)
    S = rng.gamma(0.3, 1.0, (2, 100, 40))
    one = np.stack([np.cos(0.5) * S.sum(0), np.sin(0.5) * S.sum(0)])
    apart = np.stack([np.cos(0.2) * S[0] + np.cos(1.3) * S[1],
                      np.sin(0.2) * S[0] + np.sin(1.3) * S[1]])
    assert pan_spread(one) < 0.01 < 0.3 < pan_spread(apart)
    assert pan_spread(np.zeros((2, 3, 4))) == 0.0 and pan_spread(S[:1]) is None
