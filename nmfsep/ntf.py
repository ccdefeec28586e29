r"""Multichannel β-NMF: non-negative tensor factorisation with a gain per channel.

Every channel's spectrogram is modelled with the same atoms and activations and a
non-negative gain per (channel, component):

.. math::

    V_c \approx \hat V_c = W \,\mathrm{diag}(Q_{c,:})\, H, \qquad
    \hat V_c[t, f] = \sum_k Q[c, k] \, W[t, k] \, H[k, f]

with ``V (n_channels, n_frames, n_bins)``, ``W (n_frames, k)`` the activations,
``H (k, n_bins)`` the spectral atoms and ``Q (n_channels, k)`` the gains, normalised
so that ``Σ_c Q[c, k] = 1`` (the scale lives in W; then ``Σ_c V̂_c = W H``). The
objective is ``Σ_c D_β(V_c | V̂_c)``; W, H and Q are updated in turn with the
multiplicative updates of Févotte & Idier (2011) (the exponent γ(β) keeps every
step monotone), which for this model are those of FitzGerald, Cranitch & Coyle
(2005) and Ozerov & Févotte (2010). Each channel then gets its own Wiener masks
``(Σ_{k∈g} Q[c,k] W_k H_k)^p / Σ_j (...)^p``, so every group keeps its own stereo
position and the masks still sum to one per channel.

With one channel Q is identically 1 and is not updated: the updates are exactly
those of :func:`nmfsep.nmf.nmf` (``solver="mu"``, same initialisation), so the two
give the same ``W @ H`` to rounding. Fixed atoms (a dictionary) come first in H and
stay bit-identical (supervised: W and Q are learned; semi-supervised: free atoms
too). Dictionaries with temporal context are factorised on every channel's stacked
frames (:func:`nmfsep.context.stack_frames`) with the same code.

:func:`initial_gains` starts the gains from the mixture (an energy-weighted pan
histogram as in ADRess / DUET) rather than at random.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._checks import check_choice, check_int, check_real
from ._mu import mu_exponent
from .divergence import EPSILON, beta_loss_to_float, divergence_terms
from .exceptions import ParameterError
from .nmf import blas_single_thread, check_nonnegative_matrix, nmf

__all__ = ["NTFResult", "ntf", "initial_gains", "pan_histogram", "pan_peaks", "channel_models",
           "normalise_gains", "check_channels", "divergence", "gain_positions",
           "GAIN_INITS"]

#: Initialisations of the gains (:func:`initial_gains`).
GAIN_INITS = ("uniform", "share", "peaks")

#: Floor applied to the factors for β < 1, as :func:`nmfsep.nmf.nmf` does.
_EPS64 = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class NTFResult:
    """What :func:`ntf` found.

    Attributes
    ----------
    W : np.ndarray [shape=(n_frames, k)]
        Activations.
    H : np.ndarray [shape=(k, n_bins)]
        Spectral atoms; fixed atoms are bit-identical to those given.
    Q : np.ndarray [shape=(n_channels, k)]
        Gains, non-negative, each column summing to one.
    n_iter : int
        Iterations run.
    loss_history : np.ndarray [shape=(n_checks,)], float64
        ``Σ_c D_β(V_c | V̂_c)`` at iteration 0 and at every check.
    loss_iterations : np.ndarray [shape=(n_checks,)]
        Iteration of each entry of ``loss_history``.
    converged : bool
        Whether ``tol`` was reached before ``max_iter``.
    beta : float
        The β of the divergence.
    """

    W: np.ndarray
    H: np.ndarray
    Q: np.ndarray
    n_iter: int
    loss_history: np.ndarray
    loss_iterations: np.ndarray
    converged: bool
    beta: float

    @property
    def loss(self) -> float:
        """The last value of the objective."""
        return float(self.loss_history[-1])


def check_channels(V: object) -> np.ndarray:
    """Return ``V (n_channels, n_frames, n_bins)`` checked: real, finite, non-negative.

    float32 and float64 arrays come back unchanged (no copy), anything else as float64.
    """
    arr = np.asarray(V)
    if arr.ndim != 3 or 0 in arr.shape:
        raise ParameterError(
            f"V must have shape (n_channels, n_frames, n_bins), got shape {arr.shape}"
        )
    flat = check_nonnegative_matrix(arr.reshape(arr.shape[0] * arr.shape[1], -1), "V")
    return flat.reshape(arr.shape)


def channel_models(W: np.ndarray, H: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Return every channel's model ``V̂_c = W diag(Q[c]) H``.

    Parameters
    ----------
    W : np.ndarray [shape=(n_frames, k)]
    H : np.ndarray [shape=(k, n_bins)]
    Q : np.ndarray [shape=(n_channels, k)]

    Returns
    -------
    np.ndarray [shape=(n_channels, n_frames, n_bins)]
    """
    return np.stack([(W * Q[c]) @ H for c in range(Q.shape[0])])


def _ratio(Vc: np.ndarray, L: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``R = V L^(β-2)`` and ``P = L^(β-1)`` (None for KL: P = 1); L is overwritten."""
    if beta < 2 and L.min() < EPSILON:
        np.maximum(L, EPSILON, out=L)
    if beta == 1:
        return np.divide(Vc, L, out=L), None
    if beta == 2:
        return Vc, L
    P = L ** (beta - 1)
    np.power(L, beta - 2, out=L)
    return np.multiply(L, Vc, out=L), P


def _step_W(V, W, H, Q, beta, gamma) -> None:
    """Multiplicative update of the activations, in place."""
    Ht = H.T
    num = np.zeros(W.shape, dtype=np.float64)
    den = np.zeros(W.shape, dtype=np.float64)
    for c in range(V.shape[0]):
        R, P = _ratio(V[c], (W * Q[c]) @ H, beta)
        num += (R @ Ht) * Q[c]
        den += Q[c] * (H.sum(axis=1) if P is None else P @ Ht)
    _apply(W, num, den, beta, gamma)


def _step_H(V, W, H, Q, beta, gamma, n_fixed) -> None:
    """Multiplicative update of the free atoms (rows ``n_fixed:``), in place."""
    free = slice(n_fixed, H.shape[0])
    num = np.zeros(H[free].shape, dtype=np.float64)
    den = np.zeros(H[free].shape, dtype=np.float64)
    for c in range(V.shape[0]):
        WQ = W * Q[c]
        R, P = _ratio(V[c], WQ @ H, beta)
        num += WQ[:, free].T @ R
        den += WQ[:, free].sum(axis=0)[:, None] if P is None else WQ[:, free].T @ P
    _apply(H[free], num, den, beta, gamma)


def _step_Q(V, W, H, Q, beta, gamma) -> None:
    """Multiplicative update of the gains, then ``Σ_c Q = 1`` with the scale moved to W."""
    num = np.zeros(Q.shape, dtype=np.float64)
    den = np.zeros(Q.shape, dtype=np.float64)
    Ht = H.T
    for c in range(V.shape[0]):
        R, P = _ratio(V[c], (W * Q[c]) @ H, beta)
        num[c] = np.einsum("tk,tk->k", W, R @ Ht, dtype=np.float64)
        if P is None:
            den[c] = W.sum(axis=0, dtype=np.float64) * H.sum(axis=1, dtype=np.float64)
        else:
            den[c] = np.einsum("tk,tk->k", W, P @ Ht, dtype=np.float64)
    _apply(Q, num, den, beta, gamma)
    normalise_gains(W, Q)


def _apply(X: np.ndarray, num: np.ndarray, den: np.ndarray, beta: float, gamma: float) -> None:
    """``X *= (num / den) ** γ`` in place (``num`` is scratch), with nmf's floors."""
    den[den == 0] = EPSILON
    ratio = np.divide(num, den, out=num)
    if gamma != 1:
        ratio **= gamma
    X *= ratio.astype(X.dtype, copy=False)
    if beta < 1:
        X[X < _EPS64] = 0.0


def normalise_gains(W: np.ndarray, Q: np.ndarray) -> None:
    """Scale every column of Q to sum 1 and W to match, in place (the model is unchanged).

    A component whose gains are all zero gets equal gains (and keeps W).
    """
    s = Q.sum(axis=0)
    dead = ~(s > 0)
    s[dead] = 1.0
    Q /= s
    Q[:, dead] = 1.0 / Q.shape[0]
    W *= s.astype(W.dtype, copy=False)


def divergence(V: np.ndarray, W: np.ndarray, H: np.ndarray, Q: np.ndarray, beta: float,
               v_floor: float = 0.0) -> float:
    """Return ``Σ_c D_β(V_c | W diag(Q[c]) H)`` (V floored at ``v_floor`` if > 0)."""
    total = 0.0
    for c in range(V.shape[0]):
        Vc = np.maximum(V[c], V.dtype.type(v_floor)) if v_floor > 0 else V[c]
        total += divergence_terms(Vc, (W * Q[c]) @ H, beta, overwrite_wh=True, fused=False)
    return total


def _initial_factors(V, k, fixed_atoms, W, H, random_state, beta) -> tuple[np.ndarray, ...]:
    """Return the starting W, H (``nmf``'s initialisation of ``Σ_c V_c``) and n_fixed."""
    n_fixed = 0 if fixed_atoms is None else np.asarray(fixed_atoms).shape[0]
    if W is not None or H is not None:
        if W is None or H is None:
            raise ParameterError("W and H are given together (a custom start) or not at all")
        start = nmf(V.sum(axis=0), k, beta=beta, init="custom", W=W, H=H,
                    fixed_atoms=fixed_atoms, max_iter=0, warn=False)
    else:
        start = nmf(V.sum(axis=0), k, beta=beta, fixed_atoms=fixed_atoms, max_iter=0,
                    random_state=random_state, warn=False)
    return (np.array(start.W, dtype=V.dtype, order="C"),
            np.array(start.H, dtype=V.dtype, order="C"), n_fixed)


def _initial_gains(Q: object, n_channels: int, k: int, dtype: np.dtype) -> np.ndarray:
    if Q is None:
        return np.full((n_channels, k), 1.0 / n_channels, dtype=dtype)
    arr = np.array(Q, dtype=dtype)
    if arr.shape != (n_channels, k):
        raise ParameterError(
            f"Q must have shape (n_channels, k) = ({n_channels}, {k}), got {arr.shape}"
        )
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ParameterError("Q must be finite and non-negative")
    return arr


def ntf(
    V: np.ndarray,
    n_components: int | None = None,
    *,
    beta: str | float = "kullback-leibler",
    fixed_atoms: np.ndarray | None = None,
    W: np.ndarray | None = None,
    H: np.ndarray | None = None,
    Q: np.ndarray | None = None,
    update_Q: bool = True,
    max_iter: int = 200,
    tol: float = 1e-4,
    random_state: int | np.random.Generator | None = None,
    check_every: int = 10,
    callback: Callable[[int, float | None], None] | None = None,
) -> NTFResult:
    """Factorise ``V_c ≈ W diag(Q[c]) H`` for every channel c under a β-divergence.

    Parameters
    ----------
    V : np.ndarray [shape=(n_channels, n_frames, n_bins)], non-negative
        One spectrogram per channel (one row per frame). Never modified.
    n_components : int or None
        Total number of atoms k (fixed ones included); None: the fixed atoms' number.
    beta : {"kullback-leibler", "itakura-saito", "frobenius"} or float
        The β-divergence.
    fixed_atoms : np.ndarray [shape=(k_fixed, n_bins)] or None
        Atoms held fixed (a dictionary), the first rows of H.
    W, H : np.ndarray [shape=(n_frames, k), (k, n_bins)] or None
        A custom start (both or neither); default: :func:`nmfsep.nmf.nmf`'s
        initialisation of ``Σ_c V_c`` with ``random_state``.
    Q : np.ndarray [shape=(n_channels, k)] or None
        Initial gains (e.g. :func:`initial_gains`); None: equal gains ``1/n_channels``.
    update_Q : bool
        False keeps the gains (normalised) as given.
    max_iter, tol, check_every
        Stopping rules as :func:`nmfsep.nmf.nmf` (``(e_prev - e) / e_init < tol``
        every 10 iterations, ``e = sqrt(2 D)``).
    random_state : int, generator or None
        Seed of the default initialisation.
    callback : callable(iteration, loss or None), optional
        Called after every iteration.

    Returns
    -------
    NTFResult

    Raises
    ------
    ParameterError
        For invalid data or parameters.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> W, H = rng.random((50, 2)), rng.random((2, 20))
    >>> V = np.stack([W * [0.9, 0.2] @ H, W * [0.1, 0.8] @ H])
    >>> res = ntf(V, 2, max_iter=300, random_state=0)
    >>> res.Q.shape
    (2, 2)
    """
    V = check_channels(V)
    beta_f = beta_loss_to_float(beta)
    max_iter = check_int(max_iter, "max_iter", 0)
    check_every = check_int(check_every, "check_every", 1)
    tol = check_real(tol, "tol")
    W0, H0, n_fixed = _initial_factors(V, n_components, fixed_atoms, W, H, random_state, beta_f)
    Q0 = _initial_gains(Q, V.shape[0], H0.shape[0], V.dtype)
    normalise_gains(W0, Q0)
    if beta_f <= 0:  # as nmf: entries below EPSILON * max(V) read as that floor
        floor = EPSILON * float(V.max()) or EPSILON
        V = np.maximum(V, V.dtype.type(floor)) if V.min() < floor else V
    # single-threaded BLAS, as nmf: on these sizes BLAS threads only spin (14x slower on
    # a busy 2-core machine, measured)
    with blas_single_thread(enabled=True):
        return _fit(V, W0, H0, Q0, beta_f, n_fixed, update_Q and V.shape[0] > 1, max_iter,
                    tol, check_every, callback)


def _fit(V, W, H, Q, beta, n_fixed, update_Q, max_iter, tol, check_every,
         callback) -> NTFResult:
    """Run the multiplicative updates: W, then the free atoms, then the gains."""
    gamma = mu_exponent(beta)
    div = divergence(V, W, H, Q, beta)
    error_init = previous = np.sqrt(2 * max(div, 0.0))
    losses, its, converged, n_iter = [div], [0], False, 0
    for n_iter in range(1, max_iter + 1):
        _step_W(V, W, H, Q, beta, gamma)
        if n_fixed < H.shape[0]:
            _step_H(V, W, H, Q, beta, gamma, n_fixed)
        if update_Q:
            _step_Q(V, W, H, Q, beta, gamma)
        loss_now = None
        if n_iter % check_every == 0 or n_iter == max_iter or (tol > 0 and n_iter % 10 == 0):
            div = divergence(V, W, H, Q, beta)
            if n_iter % check_every == 0 or n_iter == max_iter:
                losses.append(div)
                its.append(n_iter)
                loss_now = div
        if callback is not None:
            callback(n_iter, loss_now)
        if tol > 0 and n_iter % 10 == 0:
            error = np.sqrt(2 * max(div, 0.0))
            if error_init == 0 or (previous - error) / error_init < tol:
                converged = True
                break
            previous = error
    if converged and its[-1] != n_iter:
        losses.append(div)
        its.append(n_iter)
    return NTFResult(W=W, H=H, Q=Q,
                     n_iter=n_iter, loss_history=np.asarray(losses, dtype=np.float64),
                     loss_iterations=np.asarray(its, dtype=np.int64), converged=converged,
                     beta=beta)


def pan_histogram(
    V: np.ndarray, *, power: float = 1.0, n_bins: int = 90
) -> tuple[np.ndarray, np.ndarray]:
    """Energy-weighted histogram of the pan angle of a stereo spectrogram (ADRess / DUET).

    Every time-frequency bin has a pan angle ``θ = atan2(|X_1|, |X_0|)`` in
    ``[0, π/2]`` (0: only channel 0, π/4: centre, π/2: only channel 1) and votes with
    its energy ``Σ_c V_c``; a source panned with gains ``(cos θ, sin θ)`` piles up
    near ``θ``.

    Parameters
    ----------
    V : np.ndarray [shape=(2, n_frames, n_bins)], non-negative
        Spectrograms of the two channels, ``|X_c| ** power``.
    power : float
        The spectrogram's power (to recover magnitudes).
    n_bins : int
        Bins of the histogram over ``[0, π/2]``.

    Returns
    -------
    centres : np.ndarray [shape=(n_bins,)]
        Angles of the histogram's bins, radians.
    weights : np.ndarray [shape=(n_bins,)]
        Energy in each bin, summing to one (all zeros for a silent V).
    """
    if V.shape[0] != 2:
        raise ParameterError(f"a pan histogram needs 2 channels, got {V.shape[0]}")
    inv = 1.0 / float(power)
    theta = np.arctan2(V[1] ** inv, V[0] ** inv)
    weights, edges = np.histogram(theta, bins=n_bins, range=(0.0, np.pi / 2),
                                  weights=V.sum(axis=0, dtype=np.float64))
    total = weights.sum()
    return 0.5 * (edges[1:] + edges[:-1]), weights / total if total > 0 else weights


def pan_peaks(centres: np.ndarray, weights: np.ndarray, n_peaks: int) -> np.ndarray:
    """Return the angles of the ``n_peaks`` highest peaks of a smoothed pan histogram.

    Parameters
    ----------
    centres, weights : np.ndarray [shape=(n_bins,)]
        From :func:`pan_histogram`.
    n_peaks : int
        Most peaks wanted.

    Returns
    -------
    np.ndarray [shape=(n <= n_peaks,)]
        Angles in radians, highest peak first; the centre ``π/4`` if there is none.
    """
    from scipy.signal import find_peaks

    smooth = np.convolve(np.pad(weights, 2, mode="edge"), np.hanning(5) / 2.0, mode="valid")
    # the edges of [0, π/2] are positions too (hard left / right)
    padded = np.concatenate([[0.0], smooth, [0.0]])
    peaks, props = find_peaks(padded, height=0.02 * padded.max() if padded.max() > 0 else 1)
    if peaks.size == 0:
        return np.array([np.pi / 4])
    order = np.argsort(props["peak_heights"])[::-1][:n_peaks]
    return centres[peaks[order] - 1]


def initial_gains(
    V: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    *,
    method: str = "share",
    power: float = 1.0,
    n_peaks: int = 4,
) -> np.ndarray:
    """Return initial gains of every component, from the mixture.

    Parameters
    ----------
    V : np.ndarray [shape=(n_channels, n_frames, n_bins)], non-negative
        The channels' spectrograms.
    W, H : np.ndarray [shape=(n_frames, k), (k, n_bins)]
        A starting factorisation of ``Σ_c V_c`` (e.g. ``nmf(..., max_iter=0)``).
    method : {"uniform", "share", "peaks"}
        ``"uniform"``: ``1/n_channels``. ``"share"``: each component's energy-weighted
        share of every channel, ``Q[c,k] ∝ Σ_{t,f} W[t,k] H[k,f] V_c[t,f] / Σ_c' V_c'[t,f]``
        (exact for a component alone in its bins). ``"peaks"`` (stereo): the share,
        moved to the nearest of the ``n_peaks`` highest peaks of the pan histogram
        (:func:`pan_histogram`); with other channel counts, the share.
    power : float
        The spectrogram's power.
    n_peaks : int
        Peaks of the histogram considered (``"peaks"``).

    Returns
    -------
    Q : np.ndarray [shape=(n_channels, k)], float64
        Non-negative, each column summing to one.
    """
    check_choice(method, "method", GAIN_INITS)
    C, k = V.shape[0], H.shape[0]
    if method == "uniform" or C == 1:
        return np.full((C, k), 1.0 / C)
    total = V.sum(axis=0, dtype=np.float64)
    total[total == 0] = 1.0
    Q = np.empty((C, k))
    Ht = H.astype(np.float64).T
    for c in range(C):
        Q[c] = np.einsum("tk,tk->k", W, (V[c] / total) @ Ht)
    s = Q.sum(axis=0)
    Q[:, s > 0] /= s[s > 0]
    Q[:, ~(s > 0)] = 1.0 / C
    if method == "peaks" and C == 2:
        peaks = pan_peaks(*pan_histogram(V, power=power), n_peaks)
        inv = 1.0 / float(power)
        theta = np.arctan2(Q[1] ** inv, Q[0] ** inv)
        snapped = peaks[np.argmin(np.abs(theta[:, None] - peaks[None]), axis=1)]
        g = np.stack([np.cos(snapped), np.sin(snapped)]) ** float(power)
        Q = g / g.sum(axis=0)
    return Q


def gain_positions(Q: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Return every component's position: the unit vector of its channel magnitudes.

    Parameters
    ----------
    Q : np.ndarray [shape=(n_channels, k)], non-negative
        Gains of spectrograms of power ``power``.
    power : float
        The spectrogram's power.

    Returns
    -------
    np.ndarray [shape=(k, n_channels)], float64
        ``Q[:, k] ** (1 / power)`` scaled to unit length (stereo: ``(cos θ, sin θ)``
        with θ the pan angle); equal gains for a component with none.
    """
    P = np.asarray(Q, dtype=np.float64).T ** (1.0 / float(power))
    norms = np.linalg.norm(P, axis=1, keepdims=True)
    P = np.divide(P, norms, out=np.full_like(P, 1.0 / np.sqrt(P.shape[1])), where=norms > 0)
    return P
