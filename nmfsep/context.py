"""Temporal context: spectrogram frames stacked with their neighbours.

An atom learned on stacked frames spans ``T`` consecutive STFT frames, so it
describes how a sound evolves over a short time (an attack, a decay), not only its
spectrum; this is the "stacked frames" form of convolutive NMF (Smaragdis 2004).
Row ``t`` of the stacked spectrogram is ``[V[t - c], ..., V[t + T - 1 - c]]`` with
``c = (T - 1) // 2`` (centred), the first and last frames repeated at the edges.

After factorising a stacked spectrogram, a model ``W_g H_g`` of shape
``(n_frames, T * n_bins)`` predicts every frame ``T`` times (once from each
window that covers it); :func:`unstack_frames` averages those predictions back to
``(n_frames, n_bins)``. Averaging is linear, so the group models still add up to
the full model and masks built from them still sum to one.
"""

from __future__ import annotations

import numpy as np

from nmfsep._checks import check_int
from nmfsep.exceptions import ParameterError

__all__ = ["stack_frames", "unstack_frames", "expand_factors", "expand_indices"]


def _check_T(context_frames: object) -> int:
    return check_int(context_frames, "context_frames", 1)


def stack_frames(V: np.ndarray, context_frames: int) -> np.ndarray:
    """Stack every frame of a spectrogram with its neighbours.

    Parameters
    ----------
    V : np.ndarray [shape=(..., n_frames, n_bins)]
        Spectrogram, one frame per row; leading axes (e.g. channels) are stacked
        independently, into one array. Not modified.
    context_frames : int
        Frames per stacked row, T >= 1 (1 returns ``V`` itself).

    Returns
    -------
    np.ndarray [shape=(..., n_frames, T * n_bins)], dtype of V, C-contiguous
        Row t holds frames ``t - c .. t + T - 1 - c`` (``c = (T - 1) // 2``), edge
        frames repeated.

    Examples
    --------
    >>> V = np.arange(6.0).reshape(3, 2)
    >>> stack_frames(V, 3)
    array([[0., 1., 0., 1., 2., 3.],
           [0., 1., 2., 3., 4., 5.],
           [2., 3., 4., 5., 4., 5.]])
    """
    T = _check_T(context_frames)
    if T == 1:
        return V
    *lead, n, F = V.shape
    c = (T - 1) // 2
    out = np.empty((*lead, n, T * F), dtype=V.dtype)
    for j in range(T):
        # block j of row t is frame t + s, clipped to the first and last frames;
        # slices, not an index array (no temporary the size of the block)
        s, block = j - c, out[..., j * F : (j + 1) * F]
        a = min(max(0, -s), n)          # rows before a take frame 0
        b = max(a, min(n, n - s))       # rows from b on take frame n - 1
        block[..., a:b, :] = V[..., a + s : b + s, :]
        block[..., :a, :] = V[..., :1, :]
        block[..., b:, :] = V[..., n - 1 : n, :] if n else V[..., :0, :]
    return out


def unstack_frames(M: np.ndarray, context_frames: int) -> np.ndarray:
    """Average the ``T`` predictions of every frame of a stacked model.

    Parameters
    ----------
    M : np.ndarray [shape=(n_frames, T * n_bins)]
        Model of a stacked spectrogram (e.g. ``W_g @ H_g``). Not modified.
    context_frames : int
        T, as given to :func:`stack_frames`.

    Returns
    -------
    np.ndarray [shape=(n_frames, n_bins)], dtype of M
        Frame t is the mean of slice j of row ``t + c - j`` over the rows that exist.
    """
    T = _check_T(context_frames)
    if T == 1:
        return M
    n, TF = M.shape
    if TF % T:
        raise ParameterError(f"a stacked model has a multiple of {T} columns, got {TF}")
    F = TF // T
    c = (T - 1) // 2
    total = np.zeros((n, F), dtype=M.dtype)
    count = np.zeros((n, 1), dtype=M.dtype)
    for j in range(T):
        # slice j of row r predicts frame r + j - c
        lo, hi = max(0, c - j), min(n, n + c - j)  # rows whose prediction lands in range
        total[lo + j - c : hi + j - c] += M[lo:hi, j * F : (j + 1) * F]
        count[lo + j - c : hi + j - c] += 1
    total /= count
    return total


def expand_factors(
    W: np.ndarray, H: np.ndarray, context_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rewrite a factorisation of stacked frames as single-frame atoms and activations.

    The unstacked model of :func:`unstack_frames` is linear in W, so
    ``unstack_frames(W @ H)`` equals ``W2 @ H2`` with one single-frame atom per
    (atom, frame offset) pair: atom ``a * T + j`` of ``H2`` is frame ``j`` of atom
    ``a`` and its activation at frame t is ``W[t + c - j, a] / n_t`` (``n_t`` the
    number of predictions of frame t, 0 where row ``t + c - j`` does not exist).
    Everything downstream of the factorisation (group models, masks, plots, saved
    models) then works on ``(W2, H2)`` as on any factorisation.

    Parameters
    ----------
    W : np.ndarray [shape=(n_frames, k)]
        Activations of the stacked spectrogram.
    H : np.ndarray [shape=(k, T * n_bins)]
        Atoms spanning T frames.
    context_frames : int
        T.

    Returns
    -------
    W2 : np.ndarray [shape=(n_frames, k * T)], dtype of W
    H2 : np.ndarray [shape=(k * T, n_bins)], dtype of H
        ``W2 @ H2 == unstack_frames(W @ H, T)`` (to rounding); atoms ``a*T .. a*T+T-1``
        come from atom a, so a group of atoms maps to :func:`expand_indices`.
    """
    T = _check_T(context_frames)
    if T == 1:
        return W, H
    n, k = W.shape
    if H.shape[0] != k or H.shape[1] % T:
        raise ParameterError(
            f"H must have shape ({k}, T * n_bins) with T = {T}, got {H.shape}"
        )
    F = H.shape[1] // T
    c = (T - 1) // 2
    H2 = np.ascontiguousarray(H.reshape(k, T, F).reshape(k * T, F))
    count = np.zeros(n, dtype=np.float64)
    W2 = np.zeros((n, k, T), dtype=W.dtype)
    for j in range(T):
        # frame t takes row r = t + c - j of W
        lo, hi = max(0, j - c), min(n, n + j - c)  # frames whose row exists
        W2[lo:hi, :, j] = W[lo + c - j : hi + c - j]
        count[lo:hi] += 1
    W2 /= count.astype(W.dtype)[:, None, None]
    return W2.reshape(n, k * T), H2


def expand_indices(indices: list[int], context_frames: int) -> list[int]:
    """Return the single-frame atoms of :func:`expand_factors` that come from ``indices``.

    Parameters
    ----------
    indices : list of int
        Atoms of the stacked factorisation (e.g. one group).
    context_frames : int
        T.

    Returns
    -------
    list of int
        ``[a * T + j for a in indices for j in range(T)]``.
    """
    T = _check_T(context_frames)
    return [int(a) * T + j for a in indices for j in range(T)]
