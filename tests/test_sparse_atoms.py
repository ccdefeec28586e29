"""Updates against fixed, mostly-zero atoms (nmfsep._sparse) against the dense numpy path."""

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import nmfsep._sparse as sparse_mod
from nmfsep._mu import MUSettings, divergence_blocked, mu_exponent, mu_pass
from nmfsep._sparse import FRAME_BLOCK, divergence_split, mu_pass_split, split_atoms
from nmfsep.nmf import nmf

N_SPARSE = 20  # more than MIN_SPARSE_ATOMS
NMF_MODULE = sys.modules["nmfsep.nmf"]  # the package's `nmf` names the function


def _problem(n_frames=2 * FRAME_BLOCK + 37, n_bins=90, n_dense=6, dtype=np.float64, seed=0):
    """V with some zeros, W > 0 and H whose first atoms keep about 10 % of their entries."""
    rng = np.random.default_rng(seed)
    V = rng.gamma(0.5, 1.0, (n_frames, n_bins))
    V[rng.random(V.shape) < 0.1] = 0.0
    H = rng.random((N_SPARSE + n_dense, n_bins)) + 0.05
    H[:N_SPARSE][rng.random((N_SPARSE, n_bins)) > 0.1] = 0.0
    H[N_SPARSE - 1] = 0.0  # an all-zero atom: a zero KL denominator
    W = rng.random((n_frames, H.shape[0])) + 0.05
    return (np.ascontiguousarray(a, dtype=dtype) for a in (V, W, H))


def _both(V, W, H, s: MUSettings, n_pass: int = 3, pool=None):
    """W after ``n_pass`` updates on the dense numpy path and on the split path."""
    Wd, Ws = W.copy(), W.copy()
    split = split_atoms(H, s.beta)
    assert split is not None
    for _ in range(n_pass):
        mu_pass(V, Wd, H, s, update_W=True, update_H=False, free=None, pool=None, n_parts=3)
        mu_pass_split(V, Ws, split, s, pool=pool, n_parts=3)
    return Wd, Ws


def test_split_rule_depends_on_the_atoms_and_beta():
    _, _, H = _problem()
    split = split_atoms(H, 1.0)
    np.testing.assert_array_equal(split.sparse, np.arange(N_SPARSE))
    np.testing.assert_array_equal(split.dense, np.arange(N_SPARSE, H.shape[0]))
    np.testing.assert_array_equal(split.Hs.toarray(), H[:N_SPARSE])
    assert split_atoms(H, 0.5) is None  # a β without this path
    assert split_atoms(H[N_SPARSE - 5:], 1.0) is None  # too few sparse atoms
    assert split_atoms(np.ones((40, 30)), 1.0) is None  # dense atoms


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_same_W_as_the_dense_path(dtype, rtol, beta):
    V, W, H = _problem(dtype=dtype)
    s = MUSettings(beta=beta, exponent=mu_exponent(beta), fused=False,
                   v_floor=1e-3 if beta == 0 else 0.0)
    Wd, Ws = _both(V, W, H, s)
    assert not np.array_equal(Wd, W)
    np.testing.assert_allclose(Ws, Wd, rtol=rtol, atol=rtol * 1e-3 * Wd.max())


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_same_W_with_penalties_exponent_and_atom_weights(beta):
    V, W, H = _problem(seed=1)
    atoms = np.linspace(0.0, 0.5, H.shape[0]) if beta == 1 else None
    s = MUSettings(beta=beta, exponent=1.7 * mu_exponent(beta), l1_W=0.3, l2_W=0.2,
                   fused=False, v_floor=1e-3 if beta == 0 else 0.0, l1_W_atoms=atoms)
    Wd, Ws = _both(V, W, H, s)
    np.testing.assert_allclose(Ws, Wd, rtol=1e-10, atol=1e-13 * Wd.max())
    s = MUSettings(beta=beta, exponent=mu_exponent(beta), l1_W=0.3, fused=False,
                   l1_W_atoms=atoms)  # KL: L1 without L2 takes the shared denominator
    Wd, Ws = _both(V, W, H, s)
    np.testing.assert_allclose(Ws, Wd, rtol=1e-10, atol=1e-13 * Wd.max())


def test_threads_give_the_same_bits():
    V, W, H = _problem(n_frames=5 * FRAME_BLOCK + 3, dtype=np.float32)
    s = MUSettings(beta=1.0, exponent=1.0)
    split = split_atoms(H, 1.0)
    one, two = W.copy(), W.copy()
    mu_pass_split(V, one, split, s, pool=None, n_parts=4)
    with ThreadPoolExecutor(2) as pool:
        mu_pass_split(V, two, split, s, pool=pool, n_parts=4)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_divergence_matches_the_dense_sum(beta):
    V, W, H = _problem(seed=2)
    v_floor = 1e-3 if beta == 0 else 0.0
    dense = divergence_blocked(V, W, H, beta, pool=None, n_parts=3, block_rows=64,
                               v_floor=v_floor, fused=False)
    split = divergence_split(V, W, split_atoms(H, beta), beta, pool=None, n_parts=3,
                             v_floor=v_floor, fused=False)
    assert split == pytest.approx(dense, rel=1e-12)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_nmf_with_fixed_sparse_atoms_matches_the_dense_path(beta, monkeypatch):
    V, _, H = _problem(seed=3, dtype=np.float32)
    kw = dict(beta=beta, fixed_atoms=H, max_iter=40, tol=0.0, random_state=0, warn=False)
    calls = []
    split_pass = NMF_MODULE.mu_pass_split
    monkeypatch.setattr(NMF_MODULE, "mu_pass_split",
                        lambda *a, **k: calls.append(split_pass(*a, **k)))
    fast = nmf(V, H.shape[0], **kw)
    assert len(calls) == 40
    loss = np.asarray(fast.loss_history)
    assert np.all(np.diff(loss) <= 1e-5 * abs(loss[0]))  # monotone (to float32 rounding)
    monkeypatch.setattr(sparse_mod, "MIN_SPARSE_ATOMS", H.shape[0] + 1)  # the dense path
    slow = nmf(V, H.shape[0], **kw)
    np.testing.assert_allclose(fast.W, slow.W, rtol=2e-3, atol=1e-5 * slow.W.max())
    assert fast.loss_history[-1] == pytest.approx(slow.loss_history[-1], rel=1e-5)


def test_free_atoms_take_the_dense_path(monkeypatch):
    V, _, H = _problem(seed=4)

    def refuse(*args):
        raise AssertionError("split with free atoms")

    monkeypatch.setattr(NMF_MODULE, "split_atoms", refuse)
    res = nmf(V, H.shape[0] + 2, beta=1.0, fixed_atoms=H, max_iter=5, random_state=0,
              warn=False)
    np.testing.assert_array_equal(res.H[: H.shape[0]], H)


NTF_MODULE = sys.modules["nmfsep.ntf"]


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("cached", [True, False])
def test_ntf_with_fixed_sparse_atoms_matches_the_dense_path(beta, cached, monkeypatch):
    # gains tied per source (as separate does); `cached` False: the passes over blocks
    # (_pass_WH / _pass_Q for IS and β = 2, the stacked rows of _Stacked for KL)
    V0, _, H = _problem(seed=5, dtype=np.float32)
    V = np.stack([V0, 0.5 * V0 + 0.1 * V0[::-1]])
    ties = [list(range(0, 13)), list(range(13, H.shape[0]))]
    if not cached:
        monkeypatch.setattr(NTF_MODULE, "_CACHE_BYTES", 0)
    kw = dict(beta=beta, fixed_atoms=H, gain_groups=ties, max_iter=30, tol=0.0,
              random_state=0)
    fast = NTF_MODULE.ntf(V, H.shape[0], **kw)
    loss = fast.loss_history
    assert np.all(np.diff(loss) <= 1e-5 * abs(loss[0]))
    monkeypatch.setattr(sparse_mod, "MIN_SPARSE_ATOMS", H.shape[0] + 1)
    slow = NTF_MODULE.ntf(V, H.shape[0], **kw)
    np.testing.assert_allclose(fast.W, slow.W, rtol=2e-3, atol=1e-5 * slow.W.max())
    np.testing.assert_allclose(fast.Q, slow.Q, rtol=1e-4, atol=1e-6)
    assert fast.loss == pytest.approx(slow.loss, rel=1e-5)
    np.testing.assert_array_equal(fast.H, H)


def test_separate_with_harmonic_atoms_adds_up_on_the_split_path(monkeypatch):
    from _audio import SR, notes

    from nmfsep.dictionary import learn_dictionary
    from nmfsep.separate import separate
    calls = []
    split_pass = NMF_MODULE.mu_pass_split
    monkeypatch.setattr(NMF_MODULE, "mu_pass_split",
                        lambda *a, **k: calls.append(split_pass(*a, **k)))
    low, high = notes([220, 247, 262], 1.5), notes([880, 988, 1047], 1.5, seed=1)
    ds = [learn_dictionary([(y[None], SR)], name, 4, harmonic=pitches, pitch_shifts=(), max_iter=20)
          for y, name, pitches in ((low, "low", (54, 63)), (high, "high", (78, 87)))]
    assert all(d.n_harmonic >= 16 for d in ds)
    mix = 0.5 * (low + high)
    res = separate(mix, SR, dictionaries=ds, max_iter=20)
    assert calls  # the split path ran
    np.testing.assert_allclose(res.stems["low"] + res.stems["high"], mix, atol=1e-5)
