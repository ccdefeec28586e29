"""Temporal context: stacking frames, averaging stacked models, single-frame rewrite."""

import numpy as np
import pytest

from nmfsep.context import expand_factors, expand_indices, stack_frames, unstack_frames
from nmfsep.exceptions import ParameterError


def _slow_unstack(M, T, F):
    """Average, for every frame, the slices of the stacked rows that predict it."""
    n = M.shape[0]
    c = (T - 1) // 2
    out = np.zeros((n, F))
    for t in range(n):
        preds = [M[t + c - j, j * F:(j + 1) * F] for j in range(T) if 0 <= t + c - j < n]
        out[t] = np.mean(preds, axis=0)
    return out


@pytest.mark.parametrize("T", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [1, 2, 4, 9])
def test_stack_and_unstack_against_slow_versions(T, n):
    rng = np.random.default_rng(T * 10 + n)
    V = rng.random((n, 6)).astype(np.float32)
    S = stack_frames(V, T)
    assert S.shape == (n, T * 6) and S.dtype == np.float32
    c = (T - 1) // 2
    for t in range(n):
        for j in range(T):
            np.testing.assert_array_equal(S[t, j * 6:(j + 1) * 6], V[min(max(t + j - c, 0), n - 1)])
    # unstacking a stacked spectrogram gives it back; a general model is averaged
    np.testing.assert_allclose(unstack_frames(S, T), V, rtol=1e-6)
    M = rng.random((n, T * 6))
    np.testing.assert_allclose(unstack_frames(M, T), _slow_unstack(M, T, 6), rtol=1e-12)


@pytest.mark.parametrize("T", [2, 3, 7])
@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_stack_frames_stacks_every_channel_into_one_array(T, n):
    # (n_channels, n_frames, n_bins): each channel as on its own, fewer frames than T too
    rng = np.random.default_rng(n)
    V = rng.random((2, n, 3)).astype(np.float32)
    before = V.copy()
    S = stack_frames(V, T)
    assert S.shape == (2, n, T * 3) and S.flags.c_contiguous
    for ch in range(2):
        np.testing.assert_array_equal(S[ch], stack_frames(V[ch], T))
    np.testing.assert_array_equal(V, before)


@pytest.mark.parametrize("T", [1, 3, 4])
def test_expanded_factors_give_the_unstacked_model_and_keep_groups(T):
    rng = np.random.default_rng(T)
    W, H = rng.random((11, 5)), rng.random((5, 7 * T))
    W0, H0 = W.copy(), H.copy()
    W2, H2 = expand_factors(W, H, T)
    assert W2.shape == (11, 5 * T) and H2.shape == (5 * T, 7)
    np.testing.assert_allclose(W2 @ H2, unstack_frames(W @ H, T), rtol=1e-12)
    # each group's model is the unstacked model of its own atoms, so they add up
    groups = [[0, 2], [1, 3, 4]]
    models = [W2[:, expand_indices(g, T)] @ H2[expand_indices(g, T)] for g in groups]
    for g, model in zip(groups, models, strict=True):
        np.testing.assert_allclose(model, unstack_frames(W[:, g] @ H[g], T), rtol=1e-12)
    np.testing.assert_allclose(sum(models), W2 @ H2, rtol=1e-12)
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(H, H0)


def test_bad_context_is_refused():
    with pytest.raises(ParameterError, match="context_frames"):
        stack_frames(np.ones((3, 2)), 0)
    with pytest.raises(ParameterError, match="multiple"):
        unstack_frames(np.ones((3, 5)), 2)
    with pytest.raises(ParameterError, match="shape"):
        expand_factors(np.ones((3, 2)), np.ones((2, 5)), 2)
