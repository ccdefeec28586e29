"""Multiplicative-update kernels, processed in blocks of rows of V.

One call of :func:`mu_pass` performs one multiplicative update of the
activations W (in place, block by block) and accumulates the numerator and
denominator of the update of the atoms H over the same blocks, so V is read
once per iteration and no V-sized temporary is ever allocated. Blocks are
shared among a few threads (numpy releases the GIL in BLAS and ufunc loops);
BLAS itself is kept single-threaded by the caller.

For Kullback-Leibler and Itakura-Saito the per-range work is done by the
compiled, fused kernel of :mod:`nmfsep._kernels` when ``MUSettings.fused`` (the
solvers set it by :func:`nmfsep.divergence.use_kernel`: large problems); the
numpy functions below are the reference it is tested against, the path of small
problems (no compile, not even an import of numba) and of every other β.

The arithmetic follows scikit-learn's ``_multiplicative_update_w/_h`` (floors
at ``EPSILON``, the Févotte-Idier exponent γ(β), snapping of tiny values to
zero for β < 1) so that both implementations produce the same iterates.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from .divergence import EPSILON, divergence_terms

EPS64 = float(np.finfo(np.float64).eps)

#: Rows are always split into (at most) this many ranges, whatever the number of
#: threads: results are then bit-identical for any ``n_threads``, and several
#: ranges per thread balance the load when a core is busy with something else.
N_PARTS = 4
#: Ranges are whole multiples of this many rows (the compiled kernel's block), so
#: that they are nearly equal (ranges of whole numpy blocks of 128 or 256 rows could
#: differ by 20 %, and the slowest range sets the time of a pass).
ROW_UNIT = 32


@dataclass(frozen=True)
class MUSettings:
    """Per-fit constants of the multiplicative updates."""

    beta: float
    exponent: float  # γ(β) times any over-relaxation factor
    l1_W: float = 0.0
    l2_W: float = 0.0
    block_rows: int = 64
    v_floor: float = 0.0  # β <= 0: entries of V below this are read as this
    fused: bool = True  # KL and IS: the compiled kernel (False: the numpy path, the reference)
    l1_W_atoms: np.ndarray | None = None  # KL: one more L1 weight per atom (k,), float64


def _rows(V: np.ndarray, b0: int, b1: int, v_floor: float) -> np.ndarray:
    """Rows b0:b1 of V, floored at ``v_floor`` (a block-sized copy only when flooring)."""
    Vb = V[b0:b1]
    return np.maximum(Vb, Vb.dtype.type(v_floor)) if v_floor > 0 else Vb


def mu_exponent(beta: float) -> float:
    """Févotte & Idier (2011) exponent γ(β) that makes MU monotone.

    Parameters
    ----------
    beta : float
        β of the divergence.

    Returns
    -------
    float
        ``1/(2-β)`` for β < 1, ``1`` for 1 ≤ β ≤ 2, ``1/(β-1)`` for β > 2.
    """
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


def _floor(WH: np.ndarray) -> None:
    """Floor WH at EPSILON in place (checking first is 8x cheaper than np.maximum)."""
    if WH.min() < EPSILON:
        np.maximum(WH, EPSILON, out=WH)


def ratio_terms(
    Vb: np.ndarray, WH: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``R = V * WH^(β-2)`` and ``P = WH^(β-1)`` (``None`` for KL: P = 1).

    ``WH`` is overwritten (it is scratch space owned by the caller).
    """
    if beta < 2:
        _floor(WH)
    if beta == 1:
        np.divide(Vb, WH, out=WH)
        return WH, None
    if beta == 0:
        P = np.reciprocal(WH)
        np.multiply(P, P, out=WH)
        np.multiply(WH, Vb, out=WH)
        return WH, P
    P = WH ** (beta - 1)
    np.power(WH, beta - 2, out=WH)
    np.multiply(WH, Vb, out=WH)
    return WH, P


def _update_W_block(Vb, Wb, H, Ht, HHt, den_kl, s: MUSettings, scratch) -> None:
    """One multiplicative update of the activations of one block, in place."""
    if s.beta == 2:
        num = Vb @ Ht
        den = Wb @ HHt
    else:
        WH = np.matmul(Wb, H, out=scratch[: Wb.shape[0]])
        R, P = ratio_terms(Vb, WH, s.beta)
        num = R @ Ht
        if P is None and s.l2_W == 0:
            # KL without L2: the denominator is one row, shared by all frames
            num /= den_kl
            apply_ratio(Wb, num, s)
            return
        den = np.broadcast_to(den_kl, num.shape).copy() if P is None else P @ Ht
        if P is not None and s.l1_W > 0:
            den += s.l1_W
    if s.beta == 2 and s.l1_W > 0:
        den += s.l1_W
    divide_and_apply(Wb, num, den, s)


def divide_and_apply(W, num, den, s: MUSettings) -> None:
    """``W *= (num / (den + l2 W)) ** s.exponent`` in place, any layout (W, num, den alike).

    A zero denominator is read as EPSILON; ``num`` and ``den`` are overwritten.
    """
    if s.l2_W > 0:
        den += s.l2_W * W
    den[den == 0] = EPSILON
    num /= den
    apply_ratio(W, num, s)


def apply_ratio(Wb, ratio, s: MUSettings) -> None:
    """``Wb *= ratio ** s.exponent`` in place (``ratio`` is overwritten), snapping for β < 1."""
    if s.exponent != 1:
        ratio **= s.exponent
    Wb *= ratio
    if s.beta < 1:
        Wb[Wb < EPS64] = 0.0


def _accumulate_H_block(Vb, Wb, H, free, s: MUSettings, num_H, den_H, scratch) -> None:
    """Add one block's share of the numerator and denominator of the H update."""
    Wf = Wb if free is None else Wb[:, free]
    if s.beta == 2:
        num_H += Wf.T @ Vb
        den_H += Wf.T @ Wb  # (k_free, k): W_free^T W, multiplied by H later
        return
    WH = np.matmul(Wb, H, out=scratch[: Wb.shape[0]])
    R, P = ratio_terms(Vb, WH, s.beta)
    num_H += Wf.T @ R
    if P is None:
        den_H += Wf.sum(axis=0, dtype=np.float64)[:, None]
    else:
        den_H += Wf.T @ P


def _work(V, W, H, rows, free, s, update_W, update_H, k_free):
    """Process rows [start, stop) block by block; return this worker's H accumulators."""
    start, stop = rows
    n_bins = V.shape[1]
    num_H = np.zeros((k_free, n_bins))
    if s.beta == 2:
        den_H = np.zeros((k_free, H.shape[0]))
    elif s.beta == 1:
        den_H = np.zeros((k_free, 1))
    else:
        den_H = np.zeros((k_free, n_bins))
    if s.fused and s.beta in (0, 1) and V.dtype == H.dtype == W.dtype:
        _fused(V, W, H, rows, free, s, update_W, update_H, num_H, den_H)
        return num_H, den_H
    Ht = np.ascontiguousarray(H.T)
    HHt = H @ Ht if s.beta == 2 else None
    den_kl = None
    if s.beta == 1:
        den_kl = H.sum(axis=1) + s.l1_W
        if s.l1_W_atoms is not None:
            den_kl = den_kl + s.l1_W_atoms
        den_kl[den_kl == 0] = EPSILON
    scratch = np.empty((s.block_rows, n_bins), dtype=V.dtype)
    for b0 in range(start, stop, s.block_rows):
        b1 = min(b0 + s.block_rows, stop)
        Vb, Wb = _rows(V, b0, b1, s.v_floor), W[b0:b1]
        if update_W:
            _update_W_block(Vb, Wb, H, Ht, HHt, den_kl, s, scratch)
        if update_H:
            _accumulate_H_block(Vb, Wb, H, free, s, num_H, den_H, scratch)
    return num_H, den_H


def _fused(V, W, H, rows, free, s, update_W, update_H, num_H, den_H) -> None:
    """KL and IS: the compiled kernel of :mod:`nmfsep._kernels` (same arithmetic, fused)."""
    from ._kernels import compiled

    k = H.shape[0]
    # fixed argument types (compiled() keys the compiled kernel on V, W and H alone)
    free_idx = np.arange(k, dtype=np.int64) if free is None else np.array(free, dtype=np.int64)
    den_kl = np.zeros(k)
    if s.beta == 1:
        den_kl = H.sum(axis=1, dtype=np.float64) + s.l1_W
        if s.l1_W_atoms is not None:
            den_kl += s.l1_W_atoms
        den_kl[den_kl == 0] = EPSILON
    args = (V, W, H, free_idx, den_kl, bool(s.beta == 0), float(s.l1_W), float(s.l2_W),
            float(s.exponent), bool(s.beta < 1), float(s.v_floor), bool(update_W),
            bool(update_H), int(rows[0]), int(rows[1]), 64, num_H, den_H)
    compiled(*args)(*args)


def split_rows(n_rows: int, n_parts: int, unit: int = ROW_UNIT) -> list[tuple[int, int]]:
    """Split ``range(n_rows)`` into at most ``n_parts`` contiguous, equal ranges.

    Every range but the last is a whole number of ``unit`` rows, and the ranges differ
    by at most one unit (plus the rows missing from a partial last unit). The longer
    ones come first: threads take the ranges in order, and the last ones taken decide
    when the pass ends. The split depends on ``n_rows`` alone (not on the number of
    threads), so results are bit-identical for any thread count.
    """
    n_units = -(-n_rows // unit)
    n_parts = max(1, min(n_parts, n_units))
    edges = [min(n_rows, -(-i * n_units // n_parts) * unit) for i in range(n_parts + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def mu_pass(
    V: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    s: MUSettings,
    *,
    update_W: bool,
    update_H: bool,
    free: np.ndarray | None,
    pool: Executor | None,
    n_parts: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Update W in place and return the accumulated H-update terms.

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, n_bins)], C-contiguous
    W : np.ndarray [shape=(n_frames, k)]
        Activations, updated in place (the solver's own working copy).
    H : np.ndarray [shape=(k, n_bins)]
        Atoms (read only here).
    s : MUSettings
    update_W, update_H : bool
        Which factor(s) to update.
    free : np.ndarray of int or None
        Indices of the atoms that are learned (None = all).
    pool : Executor or None
        Thread pool; None runs in the calling thread.
    n_parts : int
        Number of row ranges to hand out.

    Returns
    -------
    (num_H, den_H) or None
        float64 sums over all rows; ``den_H`` is ``(k_free, 1)`` for KL,
        ``(k_free, k)`` for Frobenius (multiply by H), else ``(k_free, n_bins)``.
    """
    k_free = H.shape[0] if free is None else len(free)
    parts = split_rows(V.shape[0], n_parts)
    args = (free, s, update_W, update_H, k_free)
    if pool is None or len(parts) == 1:
        results = [_work(V, W, H, p, *args) for p in parts]
    else:
        futures = [pool.submit(_work, V, W, H, p, *args) for p in parts]
        results = [f.result() for f in futures]
    if not update_H:
        return None
    num_H = results[0][0]
    den_H = results[0][1]
    for n, d in results[1:]:
        num_H += n
        den_H += d
    return num_H, den_H


def _loss_work(V, W, H, rows, beta, block_rows, v_floor, fused):
    start, stop = rows
    total = 0.0
    for b0 in range(start, stop, block_rows):
        b1 = min(b0 + block_rows, stop)
        total += divergence_terms(_rows(V, b0, b1, v_floor), W[b0:b1] @ H, beta,
                                  overwrite_wh=True, fused=fused)
    return total


def divergence_blocked(
    V: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    beta: float,
    *,
    pool,
    n_parts: int,
    block_rows: int,
    v_floor: float = 0.0,
    fused: bool = True,
) -> float:
    """β-divergence ``D(max(V, v_floor) | W H)`` computed block by block (optionally in threads).

    ``fused``: KL and IS sums in a compiled pass (see ``divergence_terms``).
    """
    parts = split_rows(V.shape[0], n_parts)
    args = (beta, block_rows, v_floor, fused)
    if pool is None or len(parts) == 1:
        return sum(_loss_work(V, W, H, p, *args) for p in parts)
    futures = [pool.submit(_loss_work, V, W, H, p, *args) for p in parts]
    return sum(f.result() for f in futures)
