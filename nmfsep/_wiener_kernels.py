r"""Compiled point-wise kernels of the two-channel spatial Wiener filter.

The filter of :func:`nmfsep.spatial_wiener.wiener_block`'s two-channel path and
:class:`nmfsep.spatial_wiener.SpatialWiener`'s EM pass, fused: for one frame and a range of
bins at a time, the mixture covariance ``Σ_j v_j R_j``, its 2 × 2 inverse, every source's
image ``ŷ_j = v_j R_j C⁻¹ x`` (plus an equal share of what the loading leaves, so the
images add up to ``x``) and then either its power and its weighted outer product (an EM
pass, :func:`em_stereo`) or its complex masks ``ŷ_jc / x_c`` (:func:`masks_stereo`), in
float64, in a scratch array of a few rows that stays in the CPU's caches. The numpy path
makes about twenty passes over mixture-sized temporaries for the same work; these read the
mixture and the powers once per pass. Every loop runs over bins, so that LLVM makes vector
code of it; the spatial covariances come split into real arrays for that
(``R_j = [[r00, r01], [conj(r01), r11]]``, Hermitian).

Each call covers the bins ``f0 .. f1 - 1`` (and, for the masks, the frames ``t0 .. t1 - 1``)
of whole arrays, so that disjoint ranges run in parallel on a thread pool (``nogil``) and
write disjoint parts of the outputs. Compiled on first use and cached on disk
(``cache=True``), like :mod:`nmfsep._kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["em_stereo", "masks_stereo"]

_OPT = dict(nogil=True, fastmath={"reassoc", "contract", "nsz"}, cache=True,
            boundscheck=False)


@njit(**_OPT)
def _solve_row(x0, x1, v, t, f0, f1, r00, r11, r01r, r01i, load, z):  # pragma: no cover
    """``C⁻¹ x`` at frame t, bins ``f0 .. f1 - 1``, into ``z`` (float64).

    ``C = Σ_j v_j R_j``, loaded on its diagonal; ``z`` [shape=(4, >= f1 - f0)] receives
    ``Re z_0, Im z_0, Re z_1, Im z_1`` (it holds ``C``'s entries on the way).
    """
    n_sources = v.shape[0]
    n = f1 - f0
    c00 = z[0]
    c11 = z[1]
    c01r = z[2]
    c01i = z[3]
    for i in range(n):
        c00[i] = 0.0
        c11[i] = 0.0
        c01r[i] = 0.0
        c01i[i] = 0.0
    for j in range(n_sources):
        for i in range(n):
            vj = np.float64(v[j, t, f0 + i])
            c00[i] += vj * r00[j, f0 + i]
            c11[i] += vj * r11[j, f0 + i]
            c01r[i] += vj * r01r[j, f0 + i]
            c01i[i] += vj * r01i[j, f0 + i]
    for i in range(n):
        a00 = c00[i]
        a11 = c11[i]
        br = c01r[i]
        bi = c01i[i]
        extra = load * (a00 + a11) * 0.5 + 1e-30  # silent points: finite, and y = 0 there
        a00 += extra
        a11 += extra
        inv = 1.0 / (a00 * a11 - (br * br + bi * bi))
        ar = np.float64(x0[t, f0 + i].real)
        ai = np.float64(x0[t, f0 + i].imag)
        cr = np.float64(x1[t, f0 + i].real)
        ci = np.float64(x1[t, f0 + i].imag)
        # z0 = (a11 x0 - b x1) / det, z1 = (a00 x1 - conj(b) x0) / det
        c00[i] = (a11 * ar - (br * cr - bi * ci)) * inv
        c11[i] = (a11 * ai - (br * ci + bi * cr)) * inv
        c01r[i] = (a00 * cr - (br * ar + bi * ai)) * inv
        c01i[i] = (a00 * ci - (br * ai - bi * ar)) * inv


@njit(**_OPT)
def _images_row(x0, x1, v, t, f0, f1, r00, r11, r01r, r01i, load, y):  # pragma: no cover
    """Every source's image at frame t, bins ``f0 .. f1 - 1``, into ``y`` (float64).

    ``y`` [shape=(n_sources + 1, 4, >= f1 - f0)] receives ``Re ŷ_j0, Im ŷ_j0, Re ŷ_j1,
    Im ŷ_j1`` in rows ``0 .. n_sources - 1``; its last row is scratch (``C⁻¹ x``,
    :func:`_solve_row`). Every loop runs over bins, so that it becomes vector code.
    """
    n_sources = v.shape[0]
    n = f1 - f0
    _solve_row(x0, x1, v, t, f0, f1, r00, r11, r01r, r01i, load, y[n_sources])
    z0r = y[n_sources, 0]
    z0i = y[n_sources, 1]
    z1r = y[n_sources, 2]
    z1i = y[n_sources, 3]
    for j in range(n_sources):
        yj = y[j]
        for i in range(n):
            f = f0 + i
            vj = np.float64(v[j, t, f])
            pr, pi = r01r[j, f], r01i[j, f]
            # y0 = v (r00 z0 + r01 z1), y1 = v (conj(r01) z0 + r11 z1)
            yj[0, i] = vj * (r00[j, f] * z0r[i] + pr * z1r[i] - pi * z1i[i])
            yj[1, i] = vj * (r00[j, f] * z0i[i] + pr * z1i[i] + pi * z1r[i])
            yj[2, i] = vj * (pr * z0r[i] + pi * z0i[i] + r11[j, f] * z1r[i])
            yj[3, i] = vj * (pr * z0i[i] - pi * z0r[i] + r11[j, f] * z1i[i])
    # what the loading leaves, shared equally: the images add up to x
    for i in range(n):
        s0r = np.float64(x0[t, f0 + i].real)
        s0i = np.float64(x0[t, f0 + i].imag)
        s1r = np.float64(x1[t, f0 + i].real)
        s1i = np.float64(x1[t, f0 + i].imag)
        for j in range(n_sources):
            s0r -= y[j, 0, i]
            s0i -= y[j, 1, i]
            s1r -= y[j, 2, i]
            s1i -= y[j, 3, i]
        z0r[i] = s0r / n_sources
        z0i[i] = s0i / n_sources
        z1r[i] = s1r / n_sources
        z1i[i] = s1i / n_sources
    for j in range(n_sources):
        for i in range(n):
            y[j, 0, i] += z0r[i]
            y[j, 1, i] += z0i[i]
            y[j, 2, i] += z1r[i]
            y[j, 3, i] += z1i[i]


@njit(**_OPT)
def em_stereo(x0, x1, v, r00, r11, r01r, r01i, load, floor, num, f0, f1):  # pragma: no cover
    """One EM pass over bins ``f0 .. f1 - 1`` of every frame.

    Parameters
    ----------
    x0, x1 : np.ndarray [shape=(n_frames, n_bins)], complex
        The mixture's two channels.
    v : np.ndarray [shape=(n_sources, n_frames, n_bins)], float32
        Every source's power; replaced by ``mean_c |ŷ_jc|²``.
    r00, r11, r01r, r01i : np.ndarray [shape=(n_sources, n_bins)], float64
        The spatial covariances ``[[r00, r01], [conj(r01), r11]]``, ``r01 = r01r + i r01i``.
    load : float
        Diagonal loading of the mixture covariance relative to its mean diagonal.
    floor : np.ndarray [shape=(n_sources,)], float64
        Added to every power in the weights ``1 / v``.
    num : np.ndarray [shape=(n_sources, 4, n_bins)], float64
        Set, in bins ``f0 .. f1 - 1``, to ``Σ_t [|ŷ_0|², |ŷ_1|², Re, Im ŷ_0 conj(ŷ_1)] / v_j``.
    """
    n_sources, n_frames = v.shape[0], v.shape[1]
    n = f1 - f0
    y = np.empty((n_sources + 1, 4, n), dtype=np.float64)
    num[:, :, f0:f1] = 0.0
    for t in range(n_frames):
        _images_row(x0, x1, v, t, f0, f1, r00, r11, r01r, r01i, load, y)
        for j in range(n_sources):
            fl = floor[j]
            for i in range(n):
                ar, ai, br, bi = y[j, 0, i], y[j, 1, i], y[j, 2, i], y[j, 3, i]
                p0 = ar * ar + ai * ai
                p1 = br * br + bi * bi
                p = np.float32(0.5 * (p0 + p1))
                v[j, t, f0 + i] = p
                w = 1.0 / (np.float64(p) + fl)
                num[j, 0, f0 + i] += p0 * w
                num[j, 1, f0 + i] += p1 * w
                num[j, 2, f0 + i] += (ar * br + ai * bi) * w
                num[j, 3, f0 + i] += (ai * br - ar * bi) * w


@njit(**_OPT)
def masks_stereo(x0, x1, v, r00, r11, r01r, r01i, load, t0, t1, f0, f1, M):  # pragma: no cover
    """Complex masks ``ŷ_jc / x_c`` of frames ``t0 .. t1 - 1``, bins ``f0 .. f1 - 1``.

    ``M`` [shape=(n_sources, 2, t1 - t0, n_bins)], complex64, receives them; where
    ``x_c`` is zero every source's mask is ``1 / n_sources``. Other arguments as
    :func:`em_stereo`'s.
    """
    n_sources = v.shape[0]
    n = f1 - f0
    y = np.empty((n_sources + 1, 4, n), dtype=np.float64)
    even = 1.0 / n_sources
    for t in range(t0, t1):
        _images_row(x0, x1, v, t, f0, f1, r00, r11, r01r, r01i, load, y)
        for c in range(2):
            x = x0 if c == 0 else x1
            for i in range(n):
                xr = np.float64(x[t, f0 + i].real)
                xi = np.float64(x[t, f0 + i].imag)
                m = xr * xr + xi * xi
                # 1 / x = conj(x) / |x|²
                y[n_sources, 0, i] = xr / m if m > 0 else 0.0
                y[n_sources, 1, i] = -xi / m if m > 0 else 0.0
            for j in range(n_sources):
                for i in range(n):
                    ur, ui = y[n_sources, 0, i], y[n_sources, 1, i]
                    if ur == 0.0 and ui == 0.0:
                        M[j, c, t - t0, f0 + i] = even
                    else:
                        yr, yi = y[j, 2 * c, i], y[j, 2 * c + 1, i]
                        M[j, c, t - t0, f0 + i] = complex(yr * ur - yi * ui, yr * ui + yi * ur)
