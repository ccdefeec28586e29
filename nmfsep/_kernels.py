"""Fused multiplicative-update kernels for Kullback-Leibler (β = 1) and Itakura-Saito (β = 0).

One call of :func:`mu_rows` runs, for a range of rows (frames) of V, the
multiplicative update of the activations W and adds those rows' share of the
numerator and denominator of the update of the atoms H. It is the same
arithmetic as the numpy path in :mod:`nmfsep._mu` (and as scikit-learn's
``_multiplicative_update_w/_h``), but fused: rows are taken four at a time,
``W H``, the ratio ``V / W H`` (KL) or ``V / (W H)^2`` and ``1 / W H`` (IS)
and the products with H live in a few rows of scratch space that stay in the
L1 cache, so V is read from memory once per iteration and no intermediate
ever leaves the cache.

The loops are written for LLVM's vectoriser: the innermost loop always runs
over the frequency bins (contiguous in V, H and the scratch rows) and four rows
× four atoms are unrolled by hand, so each load of a row of H feeds several
fused multiply-adds. The kernels release the GIL (``nogil``), so the row ranges
of :func:`nmfsep._mu.mu_pass` run truly in parallel on a thread pool, and they
are compiled once and cached on disk (``cache=True``).

Sums over bins are float32 for float32 input (as in BLAS ``sgemm``), products
over atoms are accumulated per row in float64, and the H-update terms are
flushed from a float32 block accumulator into float64 every ``flush`` rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# fused multiply-add and reordering of sums (for vectorised reductions); no
# assumptions about NaN or infinity, so comparisons and floors keep their meaning
_FASTMATH = {"reassoc", "contract", "nsz"}
_OPT = dict(nogil=True, fastmath=_FASTMATH, cache=True, boundscheck=False)

EPSILON = float(np.finfo(np.float32).eps)  # scikit-learn's floor of W H (divergence.EPSILON)
EPS64 = float(np.finfo(np.float64).eps)


@njit(**_OPT)
def _wh4(W, i, H, Q):  # pragma: no cover - compiled
    """``Q[r] = W[i + r] @ H`` for r = 0..3 (Q: (4, n_bins) scratch)."""
    k, m = H.shape
    o0, o1, o2, o3 = Q[0], Q[1], Q[2], Q[3]
    c = 0
    if k < 4:
        for j in range(m):
            o0[j] = 0
            o1[j] = 0
            o2[j] = 0
            o3[j] = 0
    else:  # the first four atoms write Q, the others add to it
        h0, h1, h2, h3 = H[0], H[1], H[2], H[3]
        a0, a1, a2, a3 = W[i, 0], W[i, 1], W[i, 2], W[i, 3]
        b0, b1, b2, b3 = W[i + 1, 0], W[i + 1, 1], W[i + 1, 2], W[i + 1, 3]
        d0, d1, d2, d3 = W[i + 2, 0], W[i + 2, 1], W[i + 2, 2], W[i + 2, 3]
        e0, e1, e2, e3 = W[i + 3, 0], W[i + 3, 1], W[i + 3, 2], W[i + 3, 3]
        for j in range(m):
            x0, x1, x2, x3 = h0[j], h1[j], h2[j], h3[j]
            o0[j] = a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
            o1[j] = b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
            o2[j] = d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3
            o3[j] = e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3
        c = 4
    while c + 4 <= k:
        h0, h1, h2, h3 = H[c], H[c + 1], H[c + 2], H[c + 3]
        a0, a1, a2, a3 = W[i, c], W[i, c + 1], W[i, c + 2], W[i, c + 3]
        b0, b1, b2, b3 = W[i + 1, c], W[i + 1, c + 1], W[i + 1, c + 2], W[i + 1, c + 3]
        d0, d1, d2, d3 = W[i + 2, c], W[i + 2, c + 1], W[i + 2, c + 2], W[i + 2, c + 3]
        e0, e1, e2, e3 = W[i + 3, c], W[i + 3, c + 1], W[i + 3, c + 2], W[i + 3, c + 3]
        for j in range(m):
            x0, x1, x2, x3 = h0[j], h1[j], h2[j], h3[j]
            o0[j] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
            o1[j] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
            o2[j] += d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3
            o3[j] += e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3
        c += 4
    while c < k:
        h0 = H[c]
        a0, b0, d0, e0 = W[i, c], W[i + 1, c], W[i + 2, c], W[i + 3, c]
        for j in range(m):
            x0 = h0[j]
            o0[j] += a0 * x0
            o1[j] += b0 * x0
            o2[j] += d0 * x0
            o3[j] += e0 * x0
        c += 1


@njit(**_OPT)
def _dot4(R, H, out):  # pragma: no cover - compiled
    """``out[r, c] += R[r] @ H[c]`` for r = 0..3 and every atom c (out: float64)."""
    k, m = H.shape
    r0, r1, r2, r3 = R[0], R[1], R[2], R[3]
    z = R.dtype.type(0)
    c = 0
    while c + 4 <= k:
        h0, h1, h2, h3 = H[c], H[c + 1], H[c + 2], H[c + 3]
        s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = z
        s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = z
        for j in range(m):
            x0, x1, x2, x3 = h0[j], h1[j], h2[j], h3[j]
            y = r0[j]
            s00 += y * x0
            s01 += y * x1
            s02 += y * x2
            s03 += y * x3
            y = r1[j]
            s10 += y * x0
            s11 += y * x1
            s12 += y * x2
            s13 += y * x3
            y = r2[j]
            s20 += y * x0
            s21 += y * x1
            s22 += y * x2
            s23 += y * x3
            y = r3[j]
            s30 += y * x0
            s31 += y * x1
            s32 += y * x2
            s33 += y * x3
        out[0, c] += s00
        out[0, c + 1] += s01
        out[0, c + 2] += s02
        out[0, c + 3] += s03
        out[1, c] += s10
        out[1, c + 1] += s11
        out[1, c + 2] += s12
        out[1, c + 3] += s13
        out[2, c] += s20
        out[2, c + 1] += s21
        out[2, c + 2] += s22
        out[2, c + 3] += s23
        out[3, c] += s30
        out[3, c + 1] += s31
        out[3, c + 2] += s32
        out[3, c + 3] += s33
        c += 4
    while c < k:
        h0 = H[c]
        s0 = s1 = s2 = s3 = z
        for j in range(m):
            x0 = h0[j]
            s0 += r0[j] * x0
            s1 += r1[j] * x0
            s2 += r2[j] * x0
            s3 += r3[j] * x0
        out[0, c] += s0
        out[1, c] += s1
        out[2, c] += s2
        out[3, c] += s3
        c += 1


@njit(**_OPT)
def _outer4(W, i, free, R, A, m):  # pragma: no cover - compiled
    """``A[f, :m] += Σ_r W[i + r, free[f]] R[r, :m]`` for every learned atom f."""
    kf = A.shape[0]
    r0, r1, r2, r3 = R[0], R[1], R[2], R[3]
    f = 0
    while f + 4 <= kf:
        g0, g1, g2, g3 = free[f], free[f + 1], free[f + 2], free[f + 3]
        A0, A1, A2, A3 = A[f], A[f + 1], A[f + 2], A[f + 3]
        a0, a1, a2, a3 = W[i, g0], W[i + 1, g0], W[i + 2, g0], W[i + 3, g0]
        b0, b1, b2, b3 = W[i, g1], W[i + 1, g1], W[i + 2, g1], W[i + 3, g1]
        d0, d1, d2, d3 = W[i, g2], W[i + 1, g2], W[i + 2, g2], W[i + 3, g2]
        e0, e1, e2, e3 = W[i, g3], W[i + 1, g3], W[i + 2, g3], W[i + 3, g3]
        for j in range(m):
            y0, y1, y2, y3 = r0[j], r1[j], r2[j], r3[j]
            A0[j] += a0 * y0 + a1 * y1 + a2 * y2 + a3 * y3
            A1[j] += b0 * y0 + b1 * y1 + b2 * y2 + b3 * y3
            A2[j] += d0 * y0 + d1 * y1 + d2 * y2 + d3 * y3
            A3[j] += e0 * y0 + e1 * y1 + e2 * y2 + e3 * y3
        f += 4
    while f < kf:
        g0 = free[f]
        A0 = A[f]
        a0, a1, a2, a3 = W[i, g0], W[i + 1, g0], W[i + 2, g0], W[i + 3, g0]
        for j in range(m):
            A0[j] += a0 * r0[j] + a1 * r1[j] + a2 * r2[j] + a3 * r3[j]
        f += 1


@njit(**_OPT)
def _ratios4(V, i, Q, P, is_beta0, v_floor):  # pragma: no cover - compiled
    """In place on the four rows of Q = W H: KL ``Q <- V / Q``; IS ``P <- 1/Q, Q <- V P²``.

    ``Q`` is floored at EPSILON first and, for IS, V at ``v_floor``.
    """
    m = V.shape[1]
    eps = Q.dtype.type(EPSILON)
    vf = Q.dtype.type(v_floor)
    for r in range(4):
        v = V[i + r]
        o = Q[r]
        if is_beta0:
            p = P[r]
            for j in range(m):
                x = o[j]
                x = x if x >= eps else eps
                y = v[j]
                y = y if y >= vf else vf
                q = 1 / x
                p[j] = q
                o[j] = y * q * q
        else:
            for j in range(m):
                x = o[j]
                o[j] = v[j] / (x if x >= eps else eps)


@njit(**_OPT)
def _update_W4(W, i, num, den, den_kl, is_beta0, l1, l2, exponent, snap):  # pragma: no cover
    """``W[i + r] *= (num / den) ** exponent`` for r = 0..3, with scikit-learn's floors."""
    k = W.shape[1]
    for r in range(4):
        for c in range(k):
            w = W[i + r, c]
            d = (den[r, c] + l1 if is_beta0 else den_kl[c]) + l2 * w
            if d == 0:
                d = EPSILON
            x = num[r, c] / d
            if exponent != 1.0:
                x = x**exponent
            w = w * x
            if snap and w < EPS64:
                w = 0
            W[i + r, c] = w


@njit(**_OPT)
def _group(V, W, i, H, free, den_kl, is_beta0, l1, l2, exponent, snap, v_floor, update_W,
           update_H, Q, P, num, den, An, Ad, den_H):  # pragma: no cover - compiled
    """Rows i..i+3: update W, then add their share of the H-update terms."""
    if update_W:
        _wh4(W, i, H, Q)
        _ratios4(V, i, Q, P, is_beta0, v_floor)
        num[:] = 0
        _dot4(Q, H, num)
        if is_beta0:
            den[:] = 0
            _dot4(P, H, den)
        _update_W4(W, i, num, den, den_kl, is_beta0, l1, l2, exponent, snap)
    if update_H:
        _wh4(W, i, H, Q)
        _ratios4(V, i, Q, P, is_beta0, v_floor)
        _outer4(W, i, free, Q, An, H.shape[1])
        if is_beta0:
            _outer4(W, i, free, P, Ad, H.shape[1])
        else:
            for f in range(free.shape[0]):
                g = free[f]
                den_H[f, 0] += (
                    np.float64(W[i, g]) + W[i + 1, g] + W[i + 2, g] + W[i + 3, g]
                )


@njit(**_OPT)
def _flush(A, total):  # pragma: no cover - compiled
    """``total += A[:, :n_bins]`` (float64) and zero A."""
    kf, m = total.shape
    for f in range(kf):
        a = A[f]
        t = total[f]
        for j in range(m):
            t[j] += a[j]
            a[j] = 0


@njit(**_OPT)
def mu_rows(V, W, H, free, den_kl, is_beta0, l1, l2, exponent, snap, v_floor, update_W,
            update_H, start, stop, flush, num_H, den_H):  # pragma: no cover - compiled
    """One multiplicative update of rows ``start:stop`` of W, and their H-update terms.

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, n_bins)], float32 or float64, C-contiguous
    W : np.ndarray [shape=(n_frames, k)], same dtype
        Activations; rows ``start:stop`` are updated in place.
    H : np.ndarray [shape=(k, n_bins)], same dtype
        Atoms (read only).
    free : np.ndarray [shape=(k_free,)], int64
        Indices of the atoms whose update terms are accumulated.
    den_kl : np.ndarray [shape=(k,)], float64
        KL only: ``H.sum(axis=1) + l1`` (the W-update denominator without L2).
    is_beta0 : bool
        True for Itakura-Saito, False for Kullback-Leibler.
    l1, l2 : float
        L1 and L2 penalties on W (already scaled).
    exponent : float
        Exponent of the multiplicative ratio (γ(β) times any over-relaxation).
    snap : bool
        Set entries of W below float64 eps to zero (scikit-learn, β < 1).
    v_floor : float
        IS: entries of V below this are read as this (0 = no floor).
    update_W, update_H : bool
    start, stop : int
        Row range.
    flush : int
        Rows accumulated in float32 before adding into the float64 totals.
    num_H : np.ndarray [shape=(k_free, n_bins)], float64
        Numerator of the H update, added to.
    den_H : np.ndarray [shape=(k_free, 1) for KL, (k_free, n_bins) for IS], float64
        Denominator of the H update, added to.
    """
    k, m = H.shape
    kf = free.shape[0]
    dt = V.dtype
    # scratch rows are padded so that rows are not a multiple of 4 KiB apart (loads of
    # one row would otherwise wait on stores to the row before: "4K aliasing")
    mp = m + 32
    Q = np.empty((4, mp), dtype=dt)
    P = np.empty((4, mp), dtype=dt)
    num = np.empty((4, k))
    den = np.empty((4, k))
    An = np.zeros((kf, mp), dtype=dt)
    Ad = np.zeros((kf, mp) if is_beta0 else (0, 0), dtype=dt)
    n_full = start + (stop - start) // 4 * 4
    # the last 1-3 rows are padded to a group of four with zero rows, which add nothing
    # (W = 0 gives zero updates and zero contributions to the H terms)
    n_tail = stop - n_full
    Vt = np.zeros((4, m), dtype=dt)
    Wt = np.zeros((4, k), dtype=dt)
    Vt[:n_tail] = V[n_full:stop]
    Wt[:n_tail] = W[n_full:stop]
    count = 0
    for i in range(start, stop, 4):
        tail = i == n_full  # one call site: the compiled group is inlined only once
        Vg, Wg, ig = (Vt, Wt, 0) if tail else (V, W, i)
        _group(Vg, Wg, ig, H, free, den_kl, is_beta0, l1, l2, exponent, snap, v_floor,
               update_W, update_H, Q, P, num, den, An, Ad, den_H)
        if tail:
            W[n_full:stop] = Wt[:n_tail]
        count += 4
        if update_H and count >= flush:
            _flush(An, num_H)
            if is_beta0:
                _flush(Ad, den_H)
            count = 0
    if update_H:
        _flush(An, num_H)
        if is_beta0:
            _flush(Ad, den_H)


@njit(**_OPT)
def loss_terms(V, WH, is_beta0):  # pragma: no cover - compiled
    """One fused pass for the KL / IS divergence of a block (see ``divergence_terms``).

    Overwrites ``WH`` with the ratio ``V / max(WH, EPSILON)`` on the entries where
    ``V > EPSILON`` and with 1 elsewhere (so that ``log`` of it is 0 there), and
    returns the sums the divergence needs besides ``Σ V log(ratio)``.

    Parameters
    ----------
    V, WH : np.ndarray [shape=(n_rows, n_bins)], same float dtype, C-contiguous
    is_beta0 : bool
        Itakura-Saito (the WH sum is skipped).

    Returns
    -------
    (sum_wh, sum_v, sum_ratio) : tuple of float
        ``Σ WH`` over all entries, ``Σ V`` and ``Σ ratio`` over the kept entries.
    """
    n, m = V.shape
    dt = V.dtype.type
    eps = dt(EPSILON)
    one = dt(1)
    zero = dt(0)
    sum_wh = 0.0
    sum_v = 0.0
    sum_r = 0.0
    for i in range(n):
        v = V[i]
        w = WH[i]
        # per-row sums in the data's precision (vectorised), rows added in float64
        row_wh = zero
        row_v = zero
        row_r = zero
        for j in range(m):
            x = w[j]
            y = v[j]
            keep = one if y > eps else zero
            r = y / max(x, eps)
            row_wh += x
            row_v += y * keep
            row_r += r * keep
            w[j] = r * keep + (one - keep)
        sum_wh += row_wh
        sum_v += row_v
        sum_r += row_r
    return sum_wh, sum_v, sum_r
