"""Fused multiplicative-update kernels for Kullback-Leibler (β = 1) and Itakura-Saito (β = 0).

One call of :func:`mu_rows` runs, for a range of rows (frames) of V, the
multiplicative update of the activations W and adds those rows' share of the
numerator and denominator of the update of the atoms H. It is the same
arithmetic as the numpy path in :mod:`nmfsep._mu` (and as scikit-learn's
``_multiplicative_update_w/_h``), but fused: rows are taken in blocks of
``BLOCK`` (32), ``W H``, the ratio ``V / W H`` (KL) or ``V / (W H)^2`` and
``1 / W H`` (IS) and the products with H live in a few rows of scratch space
that stay in the CPU's caches, so V is read from memory once per iteration and
no V-sized intermediate is ever made.

Per block:

1. for each four rows: ``W H`` (:func:`nmfsep._tiles.wh_tile`), the ratio, its
   products with H (``_dot4``: 4 rows × 4 atoms of sums over bins held in
   registers) and the update of those rows of W;
2. ``W H`` again with the new W, the ratio, and the block's share of the H
   numerator ``Wᵀ R`` (:func:`nmfsep._tiles.outer_tile4`, summed over the
   block's rows in registers).

The two products that write a matrix (``W H`` and ``Wᵀ R``) are register-tiled
in the generated module :mod:`nmfsep._tiles`, which only LLVM's SLP vectoriser
turns into vector code; numba leaves that vectoriser off by default, so
:func:`compiled` turns it on while these kernels compile (:func:`slp_vectorizer`).
All kernels release the GIL (``nogil``), so the row ranges of
:func:`nmfsep._mu.mu_pass` run truly in parallel on a thread pool, and they are
compiled once and cached on disk (``cache=True``).

Sums over bins and atoms are in the data's precision (as in BLAS ``sgemm``), the
W-update terms are float64, and the H-update terms are flushed from a block
accumulator in the data's precision into float64 every ``flush`` rows.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator

import numba
import numpy as np
from numba import njit
from numba.core.compiler_lock import global_compiler_lock

from ._tiles import LANES, outer_tile1, outer_tile4, wh_tile

# fused multiply-add and reordering of sums (for vectorised reductions); no
# assumptions about NaN or infinity, so comparisons and floors keep their meaning
_FASTMATH = {"reassoc", "contract", "nsz"}
_OPT = dict(nogil=True, fastmath=_FASTMATH, cache=True, boundscheck=False)

EPSILON = float(np.finfo(np.float32).eps)  # scikit-learn's floor of W H (divergence.EPSILON)
EPS64 = float(np.finfo(np.float64).eps)
BLOCK = 32  # rows per block: the H-update products sum over them in registers
# sha256 of _tiles.py, written by _gen_tiles: numba's cache of these kernels is keyed
# by this file's text alone, so new tiles must change a line here
TILES_SHA256 = "17fa1ab8b6cd5e1b76acf65a6e9675c630e892a316ba2c5528c8e07c06ee0a77"


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
def _update_W4(W, i, num, den, den_kl, is_beta0, l1, l2, exponent, snap):  # pragma: no cover
    """``W[i + r] *= (num / den) ** exponent`` for r = 0..3, with scikit-learn's floors.

    Written without branches in the loop body (a zero denominator becomes EPSILON by
    adding ``(d == 0) * EPSILON``; snapping multiplies by ``w >= EPS64``), which LLVM
    vectorises; the exponent 1/2 of Itakura-Saito is a square root, as in numpy.
    """
    k = W.shape[1]
    sqrt = exponent == 0.5
    for r in range(4):
        w_r = W[i + r]
        num_r = num[r]
        den_r = den[r]
        for c in range(k):
            w = np.float64(w_r[c])
            d = (den_r[c] + l1 if is_beta0 else den_kl[c]) + l2 * w
            d += (d == 0) * EPSILON
            x = num_r[c] / d
            if sqrt:
                x = np.sqrt(x)
            elif exponent != 1.0:
                x = x**exponent
            w = w * x
            if snap:
                w = w * (w >= EPS64)
            w_r[c] = w


@njit(**_OPT)
def _pack(H, n_pan):  # pragma: no cover - compiled
    """H (k, n_bins) in panels of LANES bins: (n_pan, k, LANES), zero-padded."""
    k, m = H.shape
    Hp = np.zeros((n_pan, k, LANES), dtype=H.dtype)
    for a in range(k):
        for j in range(m):
            Hp[j // LANES, a, j % LANES] = H[a, j]
    return Hp


@njit(**_OPT)
def _ratios(V, Q, P, is_beta0, v_floor):  # pragma: no cover - compiled
    """In place on the first rows of Q = W H: KL ``Q <- V / Q``; IS ``P <- 1/Q, Q <- V P²``.

    As many rows as V has. ``Q`` is floored at EPSILON first and, for IS, V at
    ``v_floor``. The padding of Q and P beyond the bins of V is set to zero.
    """
    n, m = V.shape
    eps = Q.dtype.type(EPSILON)
    vf = Q.dtype.type(v_floor)
    one = Q.dtype.type(1)
    for r in range(n):
        v = V[r]
        o = Q[r]
        if is_beta0:
            p = P[r]
            for j in range(m):  # max(), not a conditional expression: it vectorises
                q = one / max(o[j], eps)
                p[j] = q
                o[j] = max(v[j], vf) * q * q
            p[m:] = 0
        else:
            for j in range(m):
                o[j] = v[j] / max(o[j], eps)
        o[m:] = 0


@njit(**_OPT)
def _flush(A, total):  # pragma: no cover - compiled
    """``total += A[:, :n_bins]`` (float64) and zero A."""
    kf, m = total.shape
    for f in range(kf):
        a = A[f]
        t = total[f]
        for j in range(m):
            t[j] += a[j]
        a[:] = 0


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
    n_pan = (m + LANES - 1) // LANES
    mp = n_pan * LANES
    Hp = _pack(H, n_pan)
    Q = np.empty((BLOCK, mp), dtype=dt)
    P = np.empty((BLOCK, mp) if is_beta0 else (0, 0), dtype=dt)
    num = np.empty((4, k))
    den = np.empty((4, k))
    An = np.zeros((kf, mp), dtype=dt)
    Ad = np.zeros((kf, mp) if is_beta0 else (0, 0), dtype=dt)
    # a last block whose row count is not a multiple of 4 is copied and padded with
    # zero rows, which add nothing (W = 0 gives zero updates and zero H terms)
    Vt = np.zeros((BLOCK, m), dtype=dt)
    Wt = np.zeros((BLOCK, k), dtype=dt)
    count = 0
    for b0 in range(start, stop, BLOCK):
        n = min(BLOCK, stop - b0)
        n4 = (n + 3) // 4 * 4
        tail = n4 != n
        if tail:
            Vt[:n] = V[b0:b0 + n]
            Wt[:n] = W[b0:b0 + n]
        Vb, Wb = (Vt, Wt) if tail else (V[b0:b0 + n], W[b0:b0 + n])
        # the tiles are called from here, not from helpers: numba optimises a callee's
        # code again in every caller, and the tiles are large (a quarter of the compile time)
        if update_W:
            for i in range(0, n4, 4):
                wh_tile(Wb, i, Hp, Q)
                _ratios(Vb[i:i + 4], Q, P, is_beta0, v_floor)
                num[:] = 0
                _dot4(Q, H, num)
                if is_beta0:
                    den[:] = 0
                    _dot4(P, H, den)
                _update_W4(Wb, i, num, den, den_kl, is_beta0, l1, l2, exponent, snap)
        if update_H:
            for i in range(0, n4, 4):
                wh_tile(Wb, i, Hp, Q[i:i + 4])
            _ratios(Vb[:n4], Q, P, is_beta0, v_floor)
            for R, A in ((Q, An), (P, Ad)):  # IS also sums P = 1 / W H into the denominator
                # range loops: a first call with the constant 0 would compile the tile twice
                kf4 = A.shape[0] // 4 * 4
                for f in range(0, kf4, 4):
                    outer_tile4(Wb, n4, free, f, R, A)
                for f in range(kf4, A.shape[0]):
                    outer_tile1(Wb, n4, free, f, R, A)
            if not is_beta0:
                for f in range(kf):
                    total = 0.0
                    for r in range(n4):
                        total += Wb[r, free[f]]
                    den_H[f, 0] += total
        if tail:
            W[b0:b0 + n] = Wt[:n]
        count += n
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


_READY: set[tuple] = set()
_READY_LOCK = threading.Lock()


@contextlib.contextmanager
def slp_vectorizer() -> Iterator[None]:
    """Compile with LLVM's SLP vectoriser on, holding numba's compiler lock.

    numba leaves the SLP vectoriser off by default (numba issue 8705); the tiles of
    :mod:`nmfsep._tiles` need it to become vector code (without it they run correctly
    but about 20 times slower). The lock keeps anything else from being compiled with
    it.
    """
    with global_compiler_lock:
        old = numba.config.SLP_VECTORIZE  # type: ignore[attr-defined]
        numba.config.SLP_VECTORIZE = 1  # type: ignore[attr-defined]
        try:
            yield
        finally:
            numba.config.SLP_VECTORIZE = old  # type: ignore[attr-defined]


@contextlib.contextmanager
def cache_lock() -> Iterator[None]:
    """Hold the machine-wide lock under which nmfsep compiles or loads its kernels.

    numba's on-disk cache is not safe when several processes compile the same function
    at once (numba issues 4807 and 10128: a process can load an index written by one
    compile and the code of another, and crash), which happens on a fresh install when a
    batch's worker processes (``separate_batch``, ``--jobs``) reach their first large
    problem together. The lock is an advisory lock (``flock``) on a file in the
    temporary folder; where that cannot be had (no ``fcntl``, a file not ours to open)
    nothing is locked. Held by one thread of this process at a time.
    """
    with _READY_LOCK:
        try:
            import fcntl

            fd = os.open(os.path.join(tempfile.gettempdir(), "nmfsep-numba-cache.lock"),
                         os.O_RDONLY | os.O_CREAT, 0o666)
        except (ImportError, OSError):
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def compile_once(kernel: Callable, *args, key: tuple | None = None,
                 slp: bool = False) -> Callable:
    """Compile ``kernel`` (or load it from numba's cache) for the types of ``args``, once.

    Under :func:`cache_lock`, once per process and signature; cheap afterwards.

    Parameters
    ----------
    kernel : numba dispatcher
    *args
        The arguments of a call.
    key : tuple or None
        What identifies the signature, when cheaper to compute than the types of every
        argument (``numba.typeof`` of each); None: those types.
    slp : bool
        Compile with LLVM's SLP vectoriser on (:func:`slp_vectorizer`).

    Returns
    -------
    Callable
        ``kernel``.
    """
    if key is None:
        key = tuple(numba.typeof(a) for a in args)
    ready = (kernel, key)
    if ready not in _READY:
        with cache_lock():
            if ready not in _READY:
                with slp_vectorizer() if slp else contextlib.nullcontext():
                    kernel.compile(tuple(numba.typeof(a) for a in args))  # type: ignore[attr-defined]
                _READY.add(ready)
    return kernel


def compiled(*args) -> Callable:
    """:func:`mu_rows`, compiled for the types of ``args`` with the SLP vectoriser on.

    :func:`compile_once`, keyed on V, W and H alone: the callers pass every other
    argument with fixed types. Thread-safe; cheap once compiled.

    Parameters
    ----------
    *args
        The arguments of a :func:`mu_rows` call.

    Returns
    -------
    Callable
        ``mu_rows``.
    """
    key = tuple((a.dtype.str, a.flags.c_contiguous, a.flags.writeable, a.flags.aligned)
                for a in args[:3])
    return compile_once(mu_rows, *args, key=key, slp=True)
