import tracemalloc
import warnings

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from nmfsep import ParameterError, beta_divergence, nmf
from nmfsep.online import OnlineNMF, online_nmf, transform_blocks

K, N_FRAMES, N_BINS = 4, 3000, 64


def _synthetic(seed=0, noise=10.0):
    """V = W_true H_true (k=4) times gamma noise of mean 1 (without noise the batch loss is ~0
    and a loss ratio means nothing)."""
    g = np.random.default_rng(seed)
    W_true = g.gamma(0.5, 1.0, (N_FRAMES, K))
    H_true = g.gamma(1.0, 1.0, (K, N_BINS))
    V = (W_true @ H_true) * g.gamma(noise, 1.0 / noise, (N_FRAMES, N_BINS))
    return V, H_true


def atom_similarity(Ha, Hb):
    """Mean cosine similarity of the atoms after matching them (Hungarian method)."""
    A = Ha / np.linalg.norm(Ha, axis=1, keepdims=True)
    B = Hb / np.linalg.norm(Hb, axis=1, keepdims=True)
    C = A @ B.T
    rows, cols = linear_sum_assignment(-C)
    return float(C[rows, cols].mean())


def refit_loss(V, H, beta):
    """Loss per entry of V with H fixed and the activations re-solved."""
    res = nmf(V, H.shape[0], beta=beta, H=H, update_H=False, max_iter=500, tol=1e-6, warn=False)
    return beta_divergence(V, res.W, H, beta) / V.size


@pytest.fixture(scope="module")
def synthetic():
    return _synthetic()


@pytest.fixture(scope="module")
def batch_fits(synthetic):
    V, _ = synthetic
    fits = {}
    for beta in (1.0, 0.0, 2.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = nmf(V, K, beta=beta, max_iter=400, tol=1e-6, random_state=0)
        fits[beta] = (res.H, refit_loss(V, res.H, beta))
    return fits


@pytest.mark.parametrize("beta", [1.0, 0.0, 2.0])
def test_online_atoms_converge_to_batch_and_truth(beta, synthetic, batch_fits):
    V, H_true = synthetic
    H_batch, loss_batch = batch_fits[beta]
    blocks = [V[i : i + 100] for i in range(0, N_FRAMES, 100)]
    res = online_nmf(blocks, K, beta=beta, passes=5, forget=0.3, n_inner=30, random_state=0)
    assert res.H.shape == (K, N_BINS)
    assert res.n_batches == 5 * 30 and res.n_frames_seen == 5 * N_FRAMES
    assert res.loss_history.shape == (150,) and np.all(np.isfinite(res.loss_history))
    assert atom_similarity(res.H, H_true) > 0.95
    assert atom_similarity(res.H, H_batch) > 0.95
    assert refit_loss(V, res.H, beta) < 1.1 * loss_batch
    # the per-batch losses come down as the atoms improve
    assert res.loss_history[-30:].mean() < res.loss_history[:30].mean()


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_block_size_does_not_matter_much(beta, synthetic):
    V, _ = synthetic
    kw = dict(beta=beta, passes=5, forget=0.3, n_inner=30, random_state=0)
    a = online_nmf(np.array_split(V, 30), K, **kw)  # 100 frames
    b = online_nmf(np.array_split(V, 12), K, **kw)  # 250 frames
    assert atom_similarity(a.H, b.H) > 0.97
    assert refit_loss(V, b.H, beta) == pytest.approx(refit_loss(V, a.H, beta), rel=0.05)


@pytest.mark.parametrize("beta", [1.0, 0.0, 2.0, 0.5, 3.0])
def test_one_block_is_one_multiplicative_update(beta, rng):
    """On a single block the online update of H is the batch MU update."""
    V = rng.gamma(2.0, 1.0, (60, 12)) + 0.1
    H0 = rng.random((3, 12)) + 0.1
    W0 = np.full((60, 3), np.sqrt(V.mean() / 3))  # the start the online solver uses
    online = online_nmf([V], 3, beta=beta, H_init=H0, n_inner=1)
    batch = nmf(V, 3, beta=beta, init="custom", W=W0, H=H0, max_iter=1, tol=0)
    np.testing.assert_allclose(online.H, batch.H, rtol=1e-10)


@pytest.mark.parametrize("beta", [1.0, 0.0, 2.0, 1.5])
def test_accumulated_update_matches_scikit_learn(beta, rng):
    """The update with accumulated A, B and forgetting rho is scikit-learn's MiniBatchNMF one."""
    pytest.importorskip("sklearn")
    from sklearn.decomposition._nmf import _multiplicative_update_h

    from nmfsep._mu import MUSettings, mu_exponent, mu_pass

    V = rng.gamma(2.0, 1.0, (50, 10)) + 0.1
    W = rng.random((50, 3)) + 0.1
    H = rng.random((3, 10)) + 0.1
    A, B = rng.random((3, 10)) + 0.5, rng.random((3, 10)) + 0.5
    state = OnlineNMF(3, beta=beta, forget=0.8, forget_frames=50, H_init=H)
    state._start(V)
    state._A, state._B = A.copy(), B.copy()
    gamma = mu_exponent(beta)
    num, den = mu_pass(V, W.copy(), state.H, MUSettings(beta=beta, exponent=gamma),
                       update_W=False, update_H=True, free=None, pool=None, n_parts=1)
    state._update_H(num, den, 0.8)
    A_sk, B_sk = A.copy(), B.copy()
    H_sk = _multiplicative_update_h(V, W, H.copy(), beta, 0, 0, gamma, A_sk, B_sk, 0.8)
    np.testing.assert_allclose(state.H, H_sk, rtol=1e-10)
    np.testing.assert_allclose(state._A, A_sk, rtol=1e-10)
    np.testing.assert_allclose(state._B, B_sk, rtol=1e-10)


def test_fixed_atoms_stay_bit_identical_and_free_atoms_learn_the_rest(synthetic):
    V, H_true = synthetic
    D = H_true[:2].copy()
    D_before = D.copy()
    res = online_nmf(np.array_split(V, 30), K, fixed_atoms=D, passes=5, forget=0.3,
                     n_inner=30, random_state=0)
    assert np.array_equal(res.H[:2], D_before) and np.array_equal(D, D_before)
    assert res.fixed.tolist() == [True, True, False, False]
    assert atom_similarity(res.H[2:], H_true[2:]) > 0.95
    # fully supervised: nothing is learned, nothing changes
    sup = online_nmf(np.array_split(V[:500], 5), fixed_atoms=D)
    assert np.array_equal(sup.H, D_before)


def test_inputs_are_never_modified(rng):
    blocks = [rng.gamma(1.0, 3000.0, (80, 20)) for _ in range(4)]
    blocks[1][:10] = 0.0
    H0, D = rng.random((3, 20)), rng.random((2, 20))
    copies = [b.copy() for b in blocks] + [H0.copy(), D.copy()]
    for beta in (1.0, 0.0):
        online_nmf(blocks, 3, beta=beta, H_init=H0, passes=2)
        online_nmf(blocks, 4, beta=beta, fixed_atoms=D, normalize_atoms=True)
        list(transform_blocks(blocks, H0, beta=beta, max_iter=5))
    for a, b in zip(blocks + [H0, D], copies, strict=True):
        assert np.array_equal(a, b)


def test_generator_list_and_callable_give_the_same_atoms(synthetic):
    V, _ = synthetic
    V = V[:1000]

    def gen():
        for i in range(0, len(V), 100):
            yield V[i : i + 100]

    kw = dict(random_state=3, forget=0.5)
    from_list = online_nmf(list(gen()), K, **kw)
    from_gen = online_nmf(gen(), K, **kw)
    assert np.array_equal(from_list.H, from_gen.H)
    three_list = online_nmf(list(gen()), K, passes=3, **kw)
    three_call = online_nmf(gen, K, passes=3, **kw)
    assert np.array_equal(three_list.H, three_call.H)
    assert three_call.n_passes == 3 and three_call.n_frames_seen == 3000
    with pytest.raises(ParameterError, match="one-shot iterator"):
        online_nmf(gen(), K, passes=2)
    with pytest.raises(ParameterError, match="no frames in pass 2"):
        g = gen()
        online_nmf(lambda: g, K, passes=2)


def test_push_style_state_matches_online_nmf(synthetic):
    V, _ = synthetic
    blocks = np.array_split(V[:1200], 6)
    state = OnlineNMF(K, beta="itakura-saito", random_state=1)
    losses = [state.partial_fit(b) for b in blocks]
    res = online_nmf(blocks, K, beta="itakura-saito", random_state=1)
    assert np.array_equal(state.result().H, res.H)
    assert np.array_equal(np.array(losses), res.loss_history)


def test_reproducible_dtype_preserved_and_threads_do_not_change_results(synthetic):
    V = synthetic[0][:1500].astype(np.float32)
    blocks = np.array_split(V, 5)  # 300 frames: long enough for the thread pool
    a = online_nmf(blocks, K, random_state=7, n_threads=1)
    b = online_nmf(blocks, K, random_state=7, n_threads=2)
    assert a.H.dtype == np.float32
    assert np.array_equal(a.H, b.H)
    c = online_nmf(blocks, K, random_state=7, n_threads=2)
    assert np.array_equal(b.H, c.H)


def test_callback_sees_every_batch_and_can_stop(synthetic):
    V, _ = synthetic
    seen = []
    res = online_nmf(np.array_split(V, 30), K, passes=3,
                     callback=lambda n, loss: seen.append((n, loss)) or n == 40)
    assert [n for n, _ in seen] == list(range(1, 41))
    assert res.n_batches == 40 and res.n_passes == 2
    assert np.allclose([loss for _, loss in seen], res.loss_history)


def test_leading_silence_and_empty_blocks_are_skipped(synthetic):
    V, H_true = synthetic
    blocks = [np.zeros((100, N_BINS)), np.zeros((0, N_BINS))] + np.array_split(V, 30)
    res = online_nmf(blocks, K, passes=3, forget=0.3, n_inner=30, random_state=0)
    assert np.all(np.isfinite(res.H)) and res.H.max() > 0
    assert res.n_frames_seen == 3 * (N_FRAMES + 100) and res.n_batches == 3 * 30 + 2
    assert atom_similarity(res.H, H_true) > 0.95
    with pytest.raises(ParameterError, match="digital silence"):
        online_nmf([np.zeros((50, 8))] * 3, 2)


@pytest.mark.parametrize("beta", [0.0, -0.5, 1.0])
def test_silence_inside_the_stream_gives_finite_atoms(beta, rng):
    blocks = [rng.gamma(1.0, 1.0, (60, 16)) ** 2 for _ in range(5)]
    blocks[2] = np.zeros((60, 16))
    blocks[3][:, 4] = 0.0
    res = online_nmf(blocks, 3, beta=beta, passes=2, random_state=0)
    assert np.all(np.isfinite(res.H)) and np.all(np.isfinite(res.loss_history))
    assert (np.abs(res.H).sum(axis=1) > 0).all()


def test_normalize_atoms_gives_unit_atoms_and_the_same_fit(synthetic):
    V, _ = synthetic
    kw = dict(passes=5, forget=0.3, n_inner=30, random_state=0)
    plain = online_nmf(np.array_split(V, 30), K, **kw)
    unit = online_nmf(np.array_split(V, 30), K, normalize_atoms=True, **kw)
    np.testing.assert_allclose(np.linalg.norm(unit.H, axis=1), 1.0, rtol=1e-10)
    assert atom_similarity(plain.H, unit.H) > 0.99
    assert refit_loss(V, unit.H, 1.0) == pytest.approx(refit_loss(V, plain.H, 1.0), rel=0.02)


def test_transform_blocks_solves_each_block_with_the_atoms_fixed(synthetic):
    V, H_true = synthetic
    blocks = np.array_split(V[:600], 3)
    it = transform_blocks(iter(blocks), H_true, max_iter=50)
    assert iter(it) is it  # lazy: nothing is computed before it is asked for
    Ws = list(it)
    assert [W.shape for W in Ws] == [(200, K)] * 3
    for W, Vb in zip(Ws, blocks, strict=True):
        ref = nmf(Vb, K, H=H_true, update_H=False, max_iter=50, warn=False)
        assert np.array_equal(W, ref.W)
    with pytest.raises(ParameterError, match="bins"):
        list(transform_blocks([V[:10, :5]], H_true))
    with pytest.raises(ParameterError, match="single 2-D array"):
        transform_blocks(V, H_true)


def test_memory_does_not_grow_with_the_stream(rng):
    block = rng.gamma(1.0, 1.0, (200, 257)).astype(np.float32)

    def stream(n):
        for i in range(n):
            yield block * (1.0 + 0.01 * (i % 7))  # a new array each time, dropped after use

    def peak(n):
        tracemalloc.start()
        online_nmf(stream(n), 8, n_inner=2, random_state=0, n_threads=1)
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p

    small, large = peak(5), peak(50)
    assert large < 1.1 * small + 64 * 1024, (small, large)


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        (dict(n_components=0), "n_components"),
        (dict(n_components=None), "n_components is required"),
        (dict(n_components=2, forget=0.0), "forget"),
        (dict(n_components=2, forget=1.5), r"^forget must be a number in \(0, 1\], got 1.5$"),
        (dict(n_components=2, forget="x"), "forget"),
        (dict(n_components=2, forget_frames=0), "forget_frames"),
        (dict(n_components=2, n_inner=0), "n_inner"),
        (dict(n_components=2, passes=0), "passes"),
        (dict(n_components=2, beta="kl"), "beta must"),
        (dict(n_components=2, n_threads=0), "n_threads"),
        (dict(n_components=2, random_state="x"), "random_state"),
        (dict(n_components=2, normalize_atoms="yes"), "normalize_atoms"),
        (dict(n_components=2, eps=-1.0), "eps"),
        (dict(n_components=2, callback=3), "callback"),
        (dict(n_components=1, fixed_atoms=np.ones((2, 6))), "smaller than"),
        (dict(n_components=3, fixed_atoms=np.ones((2, 5))), "bins"),
        (dict(n_components=3, H_init=np.ones((2, 6))),
         r"^H_init must be an array of shape \(3, n_bins\), got \(2, 6\)$"),
        (dict(n_components=2, H_init=-np.ones((2, 6))), "Negative"),
    ],
)
def test_bad_parameters_are_refused(kwargs, msg, rng):
    blocks = [rng.random((8, 6)) for _ in range(2)]
    with pytest.raises(ParameterError, match=msg):
        online_nmf(blocks, **kwargs)


@pytest.mark.parametrize(
    "blocks,msg",
    [
        (np.ones((8, 6)), "single 2-D array"),
        ([np.ones(6)], "1-D"),
        ([np.ones((4, 6)), np.ones((4, 5))], "bins"),
        ([np.ones((4, 6)), -np.ones((4, 6))], "Negative"),
        ([np.full((4, 6), np.nan)], "NaN"),
        ([np.ones((4, 6), dtype=complex)], "Complex"),
        (3, "iterable"),
        ([], "no frames"),
        (lambda: 3, "must return an iterable"),
    ],
)
def test_bad_blocks_are_refused(blocks, msg):
    with pytest.raises(ParameterError, match=msg):
        online_nmf(blocks, 2)
