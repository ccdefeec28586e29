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
frames (:func:`nmfsep.context.stack_frames`) with the same code. When every atom is
fixed and enough of them are mostly zeros (harmonic atoms), the products with the
atoms skip those zeros (:mod:`nmfsep._sparse`; the same iterates to rounding).

:func:`initial_gains` starts the gains from the mixture (an energy-weighted pan
histogram as in ADRess / DUET) rather than at random.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np

from ._checks import check_choice, check_int, check_real
from ._mu import N_PARTS, MUSettings, divergence_blocked, mu_exponent, mu_pass
from ._sparse import (
    SplitAtoms,
    divergence_split,
    model_cols,
    mu_pass_split,
    product_cols,
    split_atoms,
    split_groups,
)
from .divergence import EPSILON, beta_loss_to_float, divergence_terms, use_kernel
from .exceptions import ParameterError
from .nmf import (
    blas_single_thread,
    check_nonnegative_matrix,
    default_n_threads,
    starting_factors,
)

__all__ = ["NTFResult", "ntf", "initial_gains", "pan_histogram", "pan_peaks", "channel_models",
           "check_channels", "divergence", "gain_positions", "group_positions",
           "GAINS_CACHE_BYTES", "pan_spread", "histogram_spread", "PAN_SPREAD_BINS",
           "GAIN_INITS"]

#: Initialisations of the gains (:func:`initial_gains`).
GAIN_INITS = ("uniform", "share", "peaks")
#: Bins of the pan histogram of :func:`pan_spread`.
PAN_SPREAD_BINS = 360
_PAN_FRAMES = 256  # frames per block of pan_histogram and initial_gains

#: Gain groups of at least this many atoms on average are mixed from group models
#: (:func:`_pass_WH`); smaller ones are computed channel by channel (:func:`_direct_WH`).
_GROUP_SIZE = 8
#: Most bytes of group models and channel temporaries kept whole for one iteration
#: (:func:`_cached_iteration`); beyond, two passes over blocks of frames.
_CACHE_BYTES = GAINS_CACHE_BYTES = 1 << 29
#: KL: update the gains from the products of the activations' update (same state) instead of
#: a pass of their own (:func:`_stacked_iteration`); read at every call of :func:`ntf`.
JOINT_GAINS = False

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


def _ratio(Vb: np.ndarray, L: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``R = V L^(β-2)`` and ``P = L^(β-1)`` (None for KL: P = 1); L is overwritten."""
    if beta < 2 and L.min() < EPSILON:
        np.maximum(L, EPSILON, out=L)
    if beta == 1:
        return np.divide(Vb, L, out=L), None
    if beta == 2:
        return Vb, L
    P = L ** (beta - 1)
    np.power(L, beta - 2, out=L)
    return np.multiply(L, Vb, out=L), P


class _Groups:
    """Components sharing one gain vector: ``members[g]`` (ascending), ``labels[k]``."""

    def __init__(self, groups: Sequence[Sequence[int]] | None, k: int) -> None:
        if groups is None:
            groups = [[i] for i in range(k)]
        members = [np.asarray(sorted(int(i) for i in g), dtype=np.intp) for g in groups]
        labels = np.full(k, -1, dtype=np.intp)
        for g, idx in enumerate(members):
            if idx.size == 0 or idx.min() < 0 or idx.max() >= k or (labels[idx] >= 0).any():
                raise ParameterError(
                    f"gain_groups must split the {k} components into non-empty groups, "
                    f"each component in exactly one; group {g} is {list(idx)}"
                )
            labels[idx] = g
        if (labels < 0).any():
            raise ParameterError(
                f"gain_groups leave components {list(np.flatnonzero(labels < 0))} out"
            )
        self.members, self.labels, self.n = members, labels, len(members)
        # fixed atoms, cached iteration: each group's atoms split into dense and sparse
        # parts (_sparse), and models and ratios in the layout (n_bins, n_frames)
        self.splits: list[SplitAtoms] | None = None

    def models(self, W: np.ndarray, H: np.ndarray) -> np.ndarray:
        """``M[g] = W[:, g] @ H[g]`` for a block of rows, ``(G, n, n_bins)``.

        With ``splits``: ``M[g] = (W[:, g] @ H[g]).T``, ``(G, n_bins, n)``.
        """
        if self.splits is not None:
            out = np.empty((self.n, H.shape[1], W.shape[0]), dtype=np.result_type(W, H))
            for g, idx in enumerate(self.members):
                model_cols(self.splits[g], np.ascontiguousarray(W[:, idx].T), out[g])
            return out
        out = np.empty((self.n, W.shape[0], H.shape[1]), dtype=np.result_type(W, H))
        for g, idx in enumerate(self.members):
            np.matmul(W[:, idx], H[idx], out=out[g])
        return out

    def products(self, R: np.ndarray, H: np.ndarray, g: int) -> np.ndarray:
        """``R @ H[members[g]].T`` for ``R (n, n_bins)``: ``(n, len(members[g]))``.

        With ``splits`` R is given transposed, ``(n_bins, n)``.
        """
        if self.splits is not None:
            return product_cols(self.splits[g], R).T
        return R @ H[self.members[g]].T


def _mix(A: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``out[i] = Σ_j A[i, j] X[j]`` over stacked 2-D arrays, one BLAS product."""
    return (A @ X.reshape(X.shape[0], -1)).reshape((A.shape[0], *X.shape[1:]))


def _block_rows(n_bins: int, n_slices: int) -> int:
    """Rows per block so that a block's temporaries stay near 32 MB."""
    return max(16, (1 << 25) // max(1, 4 * n_bins * n_slices))


def _pass_WH(V, W, H, Q, grp: _Groups, beta, gamma, free) -> tuple | None:
    """Update W (a block of rows at a time); accumulate the free atoms' update.

    Returns the numerator and denominator of the update of ``H[free]`` (None without
    free atoms), from the updated activations, as :func:`nmfsep.nmf.nmf` does.
    """
    C, n, F = V.shape
    q_sum = Q.sum(axis=0)[grp.labels]  # (k,): Σ_c Q[c, g(k)]
    h_sum = H.sum(axis=1, dtype=np.float64)
    acc = None if free is None else (np.zeros((free.size, F)), np.zeros((free.size, F)))
    step = _block_rows(F, 2 * C + 2 * grp.n)
    for b0 in range(0, n, step):
        Wb, Vb = W[b0:b0 + step], V[:, b0:b0 + step]
        R, P = _ratio(Vb, _mix(Q, grp.models(Wb, H)), beta)
        Rg, Pg = _mix(Q.T, R), None if P is None else _mix(Q.T, P)
        num = np.empty(Wb.shape, dtype=np.float64)
        den = np.empty(Wb.shape, dtype=np.float64)
        for g, idx in enumerate(grp.members):
            num[:, idx] = grp.products(Rg[g], H, g)
            den[:, idx] = q_sum[idx] * h_sum[idx] if Pg is None else grp.products(Pg[g], H, g)
        _apply(Wb, num, den, beta, gamma)
        if acc is not None:
            _accumulate_H(Vb, Wb, H, Q, grp, beta, free, q_sum, acc)
    return acc


def _accumulate_H(Vb, Wb, H, Q, grp: _Groups, beta, free, q_sum, acc) -> None:
    """Add one block's share of the update of the free atoms to ``acc = (num, den)``."""
    R, P = _ratio(Vb, _mix(Q, grp.models(Wb, H)), beta)
    Rg, Pg = _mix(Q.T, R), None if P is None else _mix(Q.T, P)
    WQ = Wb[:, free] * q_sum[free]  # Σ_c Q[c, g] W, for the KL denominator
    for g in np.unique(grp.labels[free]):
        rows = np.flatnonzero(grp.labels[free] == g)
        Wf = Wb[:, free[rows]]
        acc[0][rows] += Wf.T @ Rg[g]
        if Pg is None:
            acc[1][rows] += WQ[:, rows].sum(axis=0, dtype=np.float64)[:, None]
        else:
            acc[1][rows] += Wf.T @ Pg[g]


def _pass_Q(V, W, H, Q, grp: _Groups, beta, gamma) -> None:
    """Update the gains, then ``Σ_c Q = 1`` with the scale moved to W (model unchanged)."""
    C, n, F = V.shape
    num = np.zeros(Q.shape, dtype=np.float64)
    den = np.zeros(Q.shape, dtype=np.float64)
    step = _block_rows(F, 2 * C + grp.n)
    for b0 in range(0, n, step):
        M = grp.models(W[b0:b0 + step], H)
        R, P = _ratio(V[:, b0:b0 + step], _mix(Q, M), beta)
        flat = M.reshape(grp.n, -1)
        num += R.reshape(C, -1) @ flat.T
        if P is None:
            den += flat.sum(axis=1, dtype=np.float64)[None]
        else:
            den += P.reshape(C, -1) @ flat.T
    _apply(Q, num, den, beta, gamma)
    _normalise(W, Q, grp)


def _cached_iteration(V, W, H, Q, grp: _Groups, beta, gamma, update_Q) -> None:
    """One iteration with fixed atoms, group models kept whole: the gains, then W.

    The group models ``W_g H_g`` do not depend on the gains, so one product serves the
    update of the gains and then (remixed with the new gains) that of W: two products
    per iteration, as :func:`nmfsep.nmf.nmf`'s (memory: the models of every frame).
    ``V`` is ``(n_channels, n_frames, n_bins)``, or ``(n_channels, n_bins, n_frames)``
    with ``grp.splits`` (every array but W, H and Q is then transposed alike).
    """
    C = V.shape[0]
    M = grp.models(W, H)
    if update_Q:
        R, P = _ratio(V, _mix(Q, M), beta)
        flat = M.reshape(grp.n, -1)
        num = R.reshape(C, -1) @ flat.T
        den = (np.broadcast_to(flat.sum(axis=1, dtype=np.float64), num.shape).copy()
               if P is None else P.reshape(C, -1) @ flat.T)
        s = _gain_step(Q, num, den, beta, gamma)
        W *= s[grp.labels].astype(W.dtype, copy=False)
        M *= s.astype(M.dtype)[:, None, None]
    R, P = _ratio(V, _mix(Q, M), beta)
    Rg, Pg = _mix(Q.T, R), None if P is None else _mix(Q.T, P)
    h_sum = H.sum(axis=1, dtype=np.float64) * Q.sum(axis=0)[grp.labels]
    num = np.empty(W.shape, dtype=np.float64)
    den = np.empty(W.shape, dtype=np.float64)
    for g, idx in enumerate(grp.members):
        num[:, idx] = grp.products(Rg[g], H, g)
        den[:, idx] = h_sum[idx] if Pg is None else grp.products(Pg[g], H, g)
    _apply(W, num, den, beta, gamma)


def _gain_step(Q: np.ndarray, num: np.ndarray, den: np.ndarray, beta: float,
               gamma: float) -> np.ndarray:
    """Update the gains, scale each column to sum 1; return the scales (for W)."""
    _apply(Q, num, den, beta, gamma)
    s = Q.sum(axis=0)
    dead = ~(s > 0)
    s[dead] = 1.0
    Q /= s
    Q[:, dead] = 1.0 / Q.shape[0]
    return s


def _direct_WH(V, W, H, Q, grp: _Groups, beta, gamma, free) -> tuple | None:
    """:func:`_pass_WH` channel by channel, for small gain groups (one per component).

    Every channel's model is ``(W * Q[c]) @ H``: the products of ``n_channels`` channels,
    without the ``(n_groups, n_frames, n_bins)`` group models.
    """
    Qk = Q[:, grp.labels]  # (C, k)
    num = np.zeros(W.shape, dtype=np.float64)
    den = np.zeros(W.shape, dtype=np.float64)
    h_sum = H.sum(axis=1, dtype=np.float64)
    for c in range(V.shape[0]):
        R, P = _ratio(V[c], (W * Qk[c]) @ H, beta)
        num += (R @ H.T) * Qk[c]
        den += Qk[c] * (h_sum if P is None else P @ H.T)
    _apply(W, num, den, beta, gamma)
    if free is None:
        return None
    num_h = np.zeros((free.size, H.shape[1]), dtype=np.float64)
    den_h = np.zeros((free.size, H.shape[1]), dtype=np.float64)
    for c in range(V.shape[0]):
        WQ = (W * Qk[c])[:, free]
        R, P = _ratio(V[c], (W * Qk[c]) @ H, beta)
        num_h += WQ.T @ R
        den_h += WQ.sum(axis=0, dtype=np.float64)[:, None] if P is None else WQ.T @ P
    return num_h, den_h


def _direct_Q(V, W, H, Q, grp: _Groups, beta, gamma) -> None:
    """:func:`_pass_Q` channel by channel, for small gain groups."""
    Qk = Q[:, grp.labels]
    num = np.zeros((V.shape[0], H.shape[0]), dtype=np.float64)
    den = np.zeros_like(num)
    for c in range(V.shape[0]):
        R, P = _ratio(V[c], (W * Qk[c]) @ H, beta)
        num[c] = np.einsum("tk,tk->k", W, R @ H.T, dtype=np.float64)
        if P is None:
            den[c] = W.sum(axis=0, dtype=np.float64) * H.sum(axis=1, dtype=np.float64)
        else:
            den[c] = np.einsum("tk,tk->k", W, P @ H.T, dtype=np.float64)
    onehot = np.eye(grp.n)[grp.labels]  # (k, n_groups): sum over each group's atoms
    _apply(Q, num @ onehot, den @ onehot, beta, gamma)
    _normalise(W, Q, grp)


class _Stacked:
    """KL passes of every channel as one β-NMF pass over the channels' stacked rows.

    Channel c's model is ``(W ∘ Q_c) H``, so stacking the channels' rows,
    ``V_s = [V_0; V_1; ...]`` ``(C n_frames, n_bins)`` and ``A = [W ∘ Q_0; W ∘ Q_1; ...]``,
    gives one model ``V_s ≈ A H`` that the fused kernels of :func:`nmfsep._mu.mu_pass`
    run (no V-sized temporary, threads over blocks of rows):

    * H: ``Σ_c (W ∘ Q_c)ᵀ R_c`` is the H-update of ``V_s ≈ A H`` (``R = V / A H``);
    * W and Q: an update of A with exponent 1 and denominator ``h = Σ_f H`` turns A
      into ``B_c = W ∘ Q_c ∘ G_c / h`` with ``G_c = R_c Hᵀ``, whence the KL updates
      ``W ← Σ_c B_c`` (since ``Σ_c Q_c = 1``) and ``Σ_t W G_c = h Σ_t B_c / Q_c``.

    The same iterates as :func:`_direct_WH` / :func:`_direct_Q` to rounding.
    """

    def __init__(self, V: np.ndarray, k: int, pool, split: SplitAtoms | None = None) -> None:
        C, n, F = V.shape
        self.C, self.n, self.pool = C, n, pool
        self.V = V.reshape(C * n, F)  # a view: V is C-contiguous (check_channels)
        self.s = MUSettings(beta=1.0, exponent=1.0, fused=use_kernel(C * n, F, k))
        self.A = np.empty((C * n, k), dtype=V.dtype)
        self.split = split  # fixed atoms, split (nmfsep._sparse): W's passes skip zeros

    def stack(self, W: np.ndarray, Qk: np.ndarray) -> np.ndarray:
        """Return ``A = [W ∘ Qk[0]; W ∘ Qk[1]; ...]``, ``(C n_frames, k)`` (reused)."""
        np.multiply(W[None], Qk[:, None].astype(W.dtype, copy=False),
                    out=self.A.reshape(self.C, self.n, -1))
        return self.A

    def scaled_gradients(self, W: np.ndarray, H: np.ndarray, Qk: np.ndarray) -> np.ndarray:
        """Return ``B (C, n_frames, k)``: ``W ∘ Q_c ∘ (R_c Hᵀ) / h``."""
        A = self.stack(W, Qk)
        if self.split is not None:
            mu_pass_split(self.V, A, self.split, self.s, pool=self.pool, n_parts=N_PARTS)
        else:
            mu_pass(self.V, A, H, self.s, update_W=True, update_H=False, free=None,
                    pool=self.pool, n_parts=N_PARTS)
        return A.reshape(self.C, self.n, -1)

    def divergence(self, W: np.ndarray, H: np.ndarray, Qk: np.ndarray) -> float:
        """``Σ_c D_KL(V_c | (W ∘ Q_c) H)``."""
        if self.split is not None:
            return divergence_split(self.V, self.stack(W, Qk), self.split, 1.0, pool=self.pool,
                                    n_parts=N_PARTS, fused=self.s.fused)
        return divergence_blocked(self.V, self.stack(W, Qk), H, 1.0, pool=self.pool,
                                  n_parts=N_PARTS, block_rows=256, fused=self.s.fused)


def _atom_sums(H: np.ndarray) -> np.ndarray:
    """``Σ_f H[k, f]`` in float64, zeros floored at EPSILON (the kernels' denominator)."""
    h = H.sum(axis=1, dtype=np.float64)
    h[h == 0] = EPSILON
    return h


def _gain_terms(B: np.ndarray, W: np.ndarray, H: np.ndarray, Qk: np.ndarray,
                grp: _Groups) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of the KL gain update, per group, from ``B`` of the state.

    ``B (C, n_frames, k)`` from :meth:`_Stacked.scaled_gradients`: ``Σ_t W G_c =
    h Σ_t B_c / Q_c`` (a gain of 0 stays 0 whatever its ratio); the denominator is
    ``Σ_t W Σ_f H``.
    """
    Bt = B.sum(axis=1, dtype=np.float64)
    num = np.divide(Bt * _atom_sums(H), Qk, out=np.zeros_like(Bt), where=Qk > 0)
    den = np.broadcast_to(W.sum(axis=0, dtype=np.float64) * H.sum(axis=1, dtype=np.float64),
                          num.shape)
    onehot = np.eye(grp.n)[grp.labels]
    return num @ onehot, den @ onehot


def _stacked_iteration(st: _Stacked, W, H, Q, grp: _Groups, free, update_Q,
                       joint: bool = False) -> None:
    """One KL iteration (W, the free atoms, the gains) by :class:`_Stacked` passes.

    ``joint``: the gains are updated from the products of W's update (the same state),
    scaled to sum one without moving their scale into W, and get no pass of their own.
    """
    Qk = Q[:, grp.labels].astype(np.float64)
    B = st.scaled_gradients(W, H, Qk)
    terms = _gain_terms(B, W, H, Qk, grp) if update_Q and joint else None
    W[...] = B.sum(axis=0)
    if terms is not None:
        _apply(Q, *terms, 1.0, 1.0)
        Q /= np.where(Q.sum(axis=0) > 0, Q.sum(axis=0), 1.0)
        Q[:, ~(Q.sum(axis=0) > 0)] = 1.0 / Q.shape[0]
    if free is not None:
        acc = mu_pass(st.V, st.stack(W, Q[:, grp.labels]), H, st.s, update_W=False,
                      update_H=True, free=free, pool=st.pool, n_parts=N_PARTS)
        if acc is not None:  # always, with update_H
            _apply(H[free[0]:], acc[0], acc[1], 1.0, 1.0)
    if not update_Q or joint:
        return
    Qk = Q[:, grp.labels].astype(np.float64)
    _apply(Q, *_gain_terms(st.scaled_gradients(W, H, Qk), W, H, Qk, grp), 1.0, 1.0)
    _normalise(W, Q, grp)


def _apply(X: np.ndarray, num: np.ndarray, den: np.ndarray, beta: float, gamma: float) -> None:
    """``X *= (num / den) ** γ`` in place (``num`` is scratch), with nmf's floors."""
    den = np.where(den == 0, EPSILON, den)
    ratio = np.divide(num, den, out=num)
    if gamma != 1:
        ratio **= gamma
    X *= ratio.astype(X.dtype, copy=False)
    if beta < 1:
        X[X < _EPS64] = 0.0


def _normalise(W: np.ndarray, Q: np.ndarray, grp: _Groups) -> None:
    """Scale every column of Q to sum 1 and W to match, in place (the model is unchanged).

    A group whose gains are all zero gets equal gains (and keeps W).
    """
    s = Q.sum(axis=0)
    dead = ~(s > 0)
    s[dead] = 1.0
    Q /= s
    Q[:, dead] = 1.0 / Q.shape[0]
    W *= s[grp.labels].astype(W.dtype, copy=False)


def divergence(V: np.ndarray, W: np.ndarray, H: np.ndarray, Q: np.ndarray, beta: float,
               gain_groups: Sequence[Sequence[int]] | None = None) -> float:
    """Return ``Σ_c D_β(V_c | W diag(Q[c]) H)``.

    Parameters
    ----------
    V : np.ndarray [shape=(n_channels, n_frames, n_bins)]
    W, H : np.ndarray [shape=(n_frames, k), (k, n_bins)]
    Q : np.ndarray [shape=(n_channels, n_groups)]
        Gains of the groups of ``gain_groups`` (None: one per component).
    beta : float
    gain_groups : sequence of sequences of int, optional
    """
    return _divergence(V, W, H, Q, beta, _Groups(gain_groups, H.shape[0]))


def _divergence_t(VT, W, H, Q, beta, grp: _Groups) -> float:
    """:func:`divergence` of ``VT (n_channels, n_bins, n_frames)`` with ``grp.splits``."""
    L = _mix(Q, grp.models(W, H))
    return sum(divergence_terms(VT[c], L[c], beta, overwrite_wh=True, fused=False)
               for c in range(VT.shape[0]))


def _divergence(V, W, H, Q, beta, grp: _Groups) -> float:
    """:func:`divergence` with the groups given (and their models, :meth:`_Groups.models`)."""
    total = 0.0
    step = _block_rows(V.shape[2], V.shape[0] + grp.n)
    for b0 in range(0, V.shape[1], step):
        L = _mix(Q, grp.models(W[b0:b0 + step], H))
        for c in range(V.shape[0]):
            total += divergence_terms(V[c, b0:b0 + step], L[c], beta, overwrite_wh=True,
                                      fused=False)
    return total


def _initial_factors(
    V, k, fixed_atoms, W, H, random_state,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return the starting W, H (``nmf``'s initialisation of ``Σ_c V_c``) and n_fixed."""
    n_fixed = 0 if fixed_atoms is None else np.asarray(fixed_atoms).shape[0]
    if W is not None or H is not None:
        if W is None or H is None:
            raise ParameterError("W and H are given together (a custom start) or not at all")
        W0, H0 = starting_factors(V.sum(axis=0), k, init="custom", W=W, H=H,
                                  fixed_atoms=fixed_atoms)
    else:
        W0, H0 = starting_factors(V.sum(axis=0), k, fixed_atoms=fixed_atoms,
                                  random_state=random_state)
    return (np.array(W0, dtype=V.dtype, order="C"),
            np.array(H0, dtype=V.dtype, order="C"), n_fixed)


def _initial_gains(Q: object, n_channels: int, n_groups: int, dtype: np.dtype) -> np.ndarray:
    if Q is None:
        return np.full((n_channels, n_groups), 1.0 / n_channels, dtype=dtype)
    arr = np.array(Q, dtype=dtype)
    if arr.shape != (n_channels, n_groups):
        raise ParameterError(
            f"Q must have shape (n_channels, n_groups) = ({n_channels}, {n_groups}), "
            f"got {arr.shape}"
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
    gain_groups: Sequence[Sequence[int]] | None = None,
    update_Q: bool = True,
    joint_gains: bool | None = None,
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
    Q : np.ndarray [shape=(n_channels, n_groups)] or None
        Initial gains of the gain groups (e.g. :func:`initial_gains`); None: equal
        gains ``1/n_channels``.
    gain_groups : sequence of sequences of int, optional
        Components that share one gain vector (e.g. the atoms of one source: the
        source sits at one place), a partition of ``0 .. k-1``; None: a gain vector
        per component.
    update_Q : bool
        False keeps the gains (normalised) as given.
    joint_gains : bool or None
        KL: update the gains with W, from the products of W's update, instead of in a
        pass of their own, on the stacked path (with a dictionary in large gain groups
        too: one threaded pass per iteration instead of the two products of the cached
        one, faster on 2 cores and more (supervised separation uses it); each update still
        minimises the same majorising function over W and the gains, so the loss never
        increases); None: :data:`JOINT_GAINS`.
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
        ``Q`` per component, ``(n_channels, k)`` (tied components share a column).

    Raises
    ------
    ParameterError
        For invalid data or parameters.

    Notes
    -----
    One iteration updates W, then the free atoms, then the gains. With a dictionary
    (no free atoms) in large gain groups whose models fit in memory, without KL joint
    gains, the gains and then W are updated from one product of the groups' models
    (``V̂_c = Σ_g Q[c, g] W_g H_g``): 1.5 times the products of
    :func:`nmfsep.nmf.nmf`'s iteration. Otherwise, for KL, each of the three
    updates is one pass of nmf's multiplicative-update code (compiled kernels
    on large problems, threads) over the channels' frames stacked, whose model is
    ``[W ∘ Q_0; W ∘ Q_1; ...] H``: about three times nmf's products per channel
    (no channel-sized temporaries); other β: numpy, block by block.

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
    W0, H0, n_fixed = _initial_factors(V, n_components, fixed_atoms, W, H, random_state)
    grp = _Groups(gain_groups, H0.shape[0])
    Q0 = _initial_gains(Q, V.shape[0], grp.n, V.dtype)
    _normalise(W0, Q0, grp)
    if beta_f <= 0:  # as nmf: entries below EPSILON * max(V) read as that floor
        floor = EPSILON * float(V.max()) or EPSILON
        V = np.maximum(V, V.dtype.type(floor)) if V.min() < floor else V
    # single-threaded BLAS, as nmf: on these sizes BLAS threads only spin (14x slower on
    # a busy 2-core machine, measured)
    with blas_single_thread(enabled=True):
        return _fit(V, W0, H0, Q0, grp, beta_f, n_fixed, update_Q and V.shape[0] > 1,
                    JOINT_GAINS if joint_gains is None else bool(joint_gains),
                    max_iter, tol, check_every, callback)


def _stepper(V, W, H, Q, grp: _Groups, beta, free, update_Q, joint,
             pool) -> tuple[Callable, Callable]:
    """Return ``step()`` (one iteration, in place) and ``loss()`` for this problem.

    Fixed atoms in large gain groups with room for their models, unless the KL gains are
    updated jointly: gains then W from one product (:func:`_cached_iteration`); else KL:
    the fused passes over the channels' stacked rows (:class:`_Stacked`); else W, the free
    atoms and the gains with numpy, mixed from the models of large groups
    (:func:`_pass_WH`) or channel by channel.
    """
    gamma = mu_exponent(beta)
    grouped = _GROUP_SIZE * grp.n <= H.shape[0]
    stacked = beta == 1 and V.dtype == W.dtype == H.dtype
    # joint KL updates: one threaded pass per iteration beats the cached products
    cached = grouped and free is None and not (joint and stacked) and (
        (grp.n + 3 * V.shape[0]) * V[0].size * V.itemsize <= _CACHE_BYTES)

    def loss() -> float:
        return _divergence(V, W, H, Q, beta, grp)

    grp.splits = split_groups(H, grp.members) if cached else None
    if grp.splits is not None:  # the same, transposed: the products skip zero atoms
        VT = np.ascontiguousarray(V.transpose(0, 2, 1))
        return ((lambda: _cached_iteration(VT, W, H, Q, grp, beta, gamma, update_Q)),
                lambda: _divergence_t(VT, W, H, Q, beta, grp))
    if cached:  # gains first, then W, from one product (monotone all the same)
        return (lambda: _cached_iteration(V, W, H, Q, grp, beta, gamma, update_Q)), loss
    if stacked:
        st = _Stacked(V, H.shape[0], pool, split_atoms(H, 1.0) if free is None else None)
        return ((lambda: _stacked_iteration(st, W, H, Q, grp, free, update_Q, joint)),
                lambda: st.divergence(W, H, Q[:, grp.labels]))
    pass_WH, pass_Q = (_pass_WH, _pass_Q) if grouped else (_direct_WH, _direct_Q)

    def step() -> None:
        acc = pass_WH(V, W, H, Q, grp, beta, gamma, free)
        if acc is not None:
            _apply(H[free[0]:], acc[0], acc[1], beta, gamma)
        if update_Q:
            pass_Q(V, W, H, Q, grp, beta, gamma)

    return step, loss


def _fit(V, W, H, Q, grp, beta, n_fixed, update_Q, joint, max_iter, tol, check_every,
         callback) -> NTFResult:
    """Run the multiplicative updates: W, then the free atoms, then the gains."""
    free = np.arange(n_fixed, H.shape[0]) if n_fixed < H.shape[0] else None
    with ExitStack() as stack:
        n_threads = default_n_threads()
        pool = None
        if n_threads > 1 and V.shape[0] * V.shape[1] >= 256:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=n_threads))
        step, loss = _stepper(V, W, H, Q, grp, beta, free, update_Q, joint, pool)
        div = loss()
        error_init = previous = np.sqrt(2 * max(div, 0.0))
        losses, its, converged, n_iter = [div], [0], False, 0
        for n_iter in range(1, max_iter + 1):
            step()
            record = n_iter % check_every == 0 or n_iter == max_iter
            if record or (tol > 0 and n_iter % 10 == 0):
                div = loss()
                if record:
                    losses.append(div)
                    its.append(n_iter)
            if callback is not None:
                callback(n_iter, div if record else None)
            if tol > 0 and n_iter % 10 == 0:
                error = np.sqrt(2 * max(div, 0.0))
                if error_init == 0 or (previous - error) / error_init < tol:
                    converged = True
                    break
                previous = error
    if converged and its[-1] != n_iter:
        losses.append(div)
        its.append(n_iter)
    return NTFResult(W=W, H=H, Q=np.ascontiguousarray(Q[:, grp.labels]), n_iter=n_iter,
                     loss_history=np.asarray(losses, dtype=np.float64),
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
    # the edges np.histogram gives for angles of V's precision
    edges = np.histogram_bin_edges(np.arctan2(V[1, :0], V[0, :0]), bins=n_bins,
                                   range=(0.0, np.pi / 2))

    def part(t0: int) -> np.ndarray:
        # a block of frames: small temporaries, and blocks on threads (3x on 2 cores)
        V0, V1 = V[0, t0 : t0 + _PAN_FRAMES], V[1, t0 : t0 + _PAN_FRAMES]
        theta = np.arctan2(V1, V0) if inv == 1.0 else np.arctan2(V1**inv, V0**inv)
        return np.histogram(theta, bins=n_bins, range=(0.0, np.pi / 2),
                            weights=np.add(V0, V1, dtype=np.float64))[0]

    starts = range(0, V.shape[1], _PAN_FRAMES)
    weights = np.zeros(n_bins)
    with ThreadPoolExecutor(max_workers=max(1, min(default_n_threads(), len(starts)))) as pool:
        for counts in pool.map(part, starts):
            weights += counts
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
    smooth = np.convolve(np.pad(weights, 2, mode="edge"), np.hanning(5) / 2.0, mode="valid")
    # the edges of [0, π/2] are positions too (hard left / right)
    padded = np.concatenate([[0.0], smooth, [0.0]])
    mid = padded[1:-1]
    height = 0.02 * padded.max() if padded.max() > 0 else 1.0
    peaks = np.flatnonzero((mid > padded[:-2]) & (mid >= padded[2:]) & (mid >= height))
    if peaks.size == 0:
        return np.array([np.pi / 4])
    order = np.argsort(mid[peaks], kind="stable")[::-1][:n_peaks]
    return centres[peaks[order]]


def initial_gains(
    V: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    *,
    method: str = "share",
    power: float = 1.0,
    n_peaks: int = 4,
    gain_groups: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """Return initial gains of every gain group, from the mixture.

    Parameters
    ----------
    V : np.ndarray [shape=(n_channels, n_frames, n_bins)], non-negative
        The channels' spectrograms.
    W, H : np.ndarray [shape=(n_frames, k), (k, n_bins)]
        A starting factorisation of ``Σ_c V_c`` (e.g. :func:`nmfsep.nmf.starting_factors`).
    method : {"uniform", "share", "peaks"}
        ``"uniform"``: ``1/n_channels``. ``"share"``: each group's energy-weighted
        share of every channel,
        ``Q[c,g] ∝ Σ_{k∈g} Σ_{t,f} W[t,k] H[k,f] V_c[t,f] / Σ_c' V_c'[t,f]`` (exact for
        a group alone in its bins). ``"peaks"`` (stereo): the share, moved to the
        nearest of the ``n_peaks`` highest peaks of the pan histogram
        (:func:`pan_histogram`); with other channel counts, the share.
    power : float
        The spectrogram's power.
    n_peaks : int
        Peaks of the histogram considered (``"peaks"``).
    gain_groups : sequence of sequences of int, optional
        As for :func:`ntf`; None: one group per component.

    Returns
    -------
    Q : np.ndarray [shape=(n_channels, n_groups)], float64
        Non-negative, each column summing to one.
    """
    check_choice(method, "method", GAIN_INITS)
    grp = _Groups(gain_groups, H.shape[0])
    C = V.shape[0]
    if method == "uniform" or C == 1:
        return np.full((C, grp.n), 1.0 / C)
    Ht = H.astype(np.float64).T
    # W with one row repeated (nmf's start with fixed atoms): the sum over frames comes
    # first, Σ_t W[t,k] (R_c Hᵀ)[t,k] = W[0,k] (Σ_t R_c[t]) Hᵀ, a vector times Hᵀ
    # instead of a (frames × bins) @ (bins × k) product
    constant = W.shape[0] > 0 and bool(np.all(W == W[:1]))

    def part(t0: int) -> np.ndarray:
        # Σ_t over a block of frames of every channel's share R_c = V_c / Σ_c' V_c'
        # (blocks on threads: small temporaries)
        frames = slice(t0, t0 + _PAN_FRAMES)
        total = np.asarray(np.sum(V[:, frames], axis=0, dtype=np.float64))
        total[total == 0] = 1.0
        out = np.empty((C, H.shape[0]))
        for c in range(C):
            R = V[c, frames] / total
            out[c] = (R.sum(axis=0) @ Ht if constant
                      else np.einsum("tk,tk->k", W[frames], R @ Ht))
        return out

    per_component = np.zeros((C, H.shape[0]))
    starts = range(0, V.shape[1], _PAN_FRAMES)
    with ThreadPoolExecutor(max_workers=max(1, min(default_n_threads(), len(starts)))) as pool:
        for counts in pool.map(part, starts):
            per_component += counts
    if constant:
        per_component *= W[0]
    Q = np.stack([per_component[:, idx].sum(axis=1) for idx in grp.members], axis=1)
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


def group_positions(
    W: np.ndarray, H: np.ndarray, Q: np.ndarray, groups: Mapping[str, Sequence[int]],
    power: float = 1.0,
) -> dict[str, tuple[np.ndarray, float | None]]:
    """Return where every group of components sits: its gains and, in stereo, its pan.

    Parameters
    ----------
    W, H : np.ndarray [shape=(n_frames, k), (k, n_bins)]
    Q : np.ndarray [shape=(n_channels, k)]
        Gains of the components (columns summing to one).
    groups : Mapping[str, Sequence[int]]
        Group name -> component indices.
    power : float
        The spectrogram's power (the gains are gains of ``|X| ** power``).

    Returns
    -------
    dict[str, tuple[np.ndarray [shape=(n_channels,)], float or None]]
        Name -> (the gains of the group's components weighted by their energy
        ``Σ_t W[t, k] Σ_f H[k, f]``, summing to one; the pan in ``[-1, 1]`` (-1: only
        channel 0, 0: centre, 1: only channel 1, constant-power law) for two
        channels, else None).
    """
    energy = np.asarray(W, dtype=np.float64).sum(axis=0) * np.asarray(H, np.float64).sum(axis=1)
    Q = np.asarray(Q, dtype=np.float64)
    out: dict[str, tuple[np.ndarray, float | None]] = {}
    for name, idx in groups.items():
        idx = list(idx)
        e = energy[idx]
        gains = Q[:, idx] @ e / e.sum() if e.sum() > 0 else Q[:, idx].mean(axis=1)
        pan = None
        if Q.shape[0] == 2:
            mag = gains ** (1.0 / float(power))
            pan = float(4 / np.pi * np.arctan2(mag[1], mag[0]) - 1)
        out[name] = (gains, pan)
    return out


def pan_spread(V: np.ndarray, *, power: float = 1.0) -> float | None:
    """Return how far apart the energy of a stereo spectrogram sits: the pan's spread.

    Parameters
    ----------
    V : np.ndarray [shape=(n_channels, n_frames, n_bins)], non-negative
    power : float
        The spectrogram's power.

    Returns
    -------
    float or None
        The energy-weighted standard deviation of the pan angle ``θ`` of
        :func:`pan_histogram` in radians (0 when everything sits at one place);
        None unless V has two channels.
    """
    if V.shape[0] != 2:
        return None
    return histogram_spread(*pan_histogram(V, power=power, n_bins=PAN_SPREAD_BINS))


def histogram_spread(centres: np.ndarray, weights: np.ndarray) -> float:
    """Return the weighted standard deviation of a pan histogram's angles (radians).

    Parameters
    ----------
    centres, weights : np.ndarray [shape=(n_bins,)]
        As :func:`pan_histogram` returns them; the weights need not sum to one (a
        stream adds up the histograms of its blocks).

    Returns
    -------
    float
        0 where the weights are all zero.
    """
    total = float(np.sum(weights))
    if not total > 0:
        return 0.0
    w = np.asarray(weights, dtype=np.float64) / total
    mean = float(centres @ w)
    return float(np.sqrt(((centres - mean) ** 2) @ w))
