r"""Multichannel Wiener filtering with spatial covariances refined by EM.

A per-channel mask can only scale each channel's STFT; it cannot use the fact that, at a
given time-frequency point, the two channels of a stereo mixture are in the ratio of the
source that sounds there. The multichannel Wiener filter does: with every source j modelled
as a zero-mean complex Gaussian of power ``v_j(t, f)`` and spatial covariance
``R_j(f)`` (``n_channels × n_channels``, Hermitian), the posterior mean of source j's
image is

.. math::

    \hat y_j(t, f) = v_j(t, f) R_j(f) \Big(\sum_k v_k(t, f) R_k(f)\Big)^{-1} x(t, f),

which, for sources at distinct positions, undoes the mixing wherever the spectral model
is poor (two sources in two channels are recovered exactly from their positions alone).
The covariances are refined by the EM updates of Duong, Vincent & Gribonval (2010), in the
weighted form of norbert (sigsep; Open-Unmix's ``--niter``):
``v_j = mean_c |ŷ_jc|²`` and ``R_j(f) = Σ_t ŷ_j ŷ_jᴴ / Σ_t v_j``.

nmfsep starts them from its own multichannel factorisation (:mod:`nmfsep.ntf`): the
source powers from its per-channel masks and ``R_j`` from the learned gains (the
source's position, with some width: :data:`START_WIDTH`), which EM then widens and
rotates to what the mixture shows (stereo width, delays, reverb). Starting EM from the
masks alone, as norbert does, barely moves them when the masks mix the sources up.

Everything works on blocks of frames: :class:`SpatialWiener` makes one pass over the
mixture per EM iteration to accumulate the covariances, then gives the filter of any block
as complex masks ``ŷ_jc / x_c`` (summing to one over the sources), so that the stems are
formed and inverted block by block as with real masks (:func:`nmfsep.separate.stem_blocks`).
For two channels and long mixtures (:data:`FUSED_MIN_POINTS`) the point-wise work of a pass
is done by the compiled kernels of :mod:`nmfsep._wiener_kernels`, on ranges of bins in
parallel; :func:`wiener_block` is their reference.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .exceptions import ParameterError
from .nmf import default_n_threads

__all__ = ["wiener_block", "rank_one_covariances", "SpatialWiener", "real_masks",
           "WIENER_ITER", "MAX_WIENER_SOURCES", "START_WIDTH"]

#: EM iterations of the spatial Wiener filter after its start from the gains
#: (``separate(wiener_iter=...)``, ``--wiener-iter``; 0 keeps the per-channel masks).
WIENER_ITER = 4
#: Diagonal loading of the mixture covariance, relative to its trace (keeps the inverse
#: finite where every source's power vanishes).
_LOAD = 1e-6
#: Width of every source at the start: ``R_j = (1 - w) a_j a_jᵀ + w diag(a_j²)``, a
#: share ``w`` of each channel's power incoherent with the other's and the levels those of
#: the gains. EM cannot widen a covariance of rank one (its images stay on the line
#: ``a_j``), so a source recorded in stereo (FluidSynth's stereo-sampled pianos) needs
#: room from the start; kept in proportion to each channel's level, it lets no leak into
#: the channel where a source panned hard is quiet (an isotropic ``w I`` did: -3.5 dB on
#: a duo panned hard). Chosen with ``benchmarks/bench_stereo.py``'s conditions on FluidR3
#: and the bundled FluidSynth stereo mixtures: 0.05 had the best median and least gain
#: over the masks there (0.02, 0.1, 0.2 the others tried).
START_WIDTH = 0.05
_BLOCK_FRAMES = 64
#: The filter is used for at most this many stems (sources); beyond, e.g. a blind run's
#: component stems, per-channel masks are kept: the filter keeps every stem's power for
#: the whole mixture (4 bytes per stem and time-frequency point) and two channels can set
#: apart only two positions at any one point.
MAX_WIENER_SOURCES = 6
#: Two-channel mixtures of at least this many time-frequency points are filtered by the
#: compiled kernels of :mod:`nmfsep._wiener_kernels` (:func:`wiener_block`'s filter in
#: double precision and one pass over the data: several times faster); smaller ones by
#: numpy, with no compile (numba's import and cached kernels cost about a second).
#: The choice depends on the size alone, so a mixture always takes the same path.
FUSED_MIN_POINTS = 1 << 20
#: Powers under this fraction of a source's largest (of the previous iterate) count as
#: this much in the covariance update (its weights ``1 / v``).
_FLOOR = 1e-6


def rank_one_covariances(A: np.ndarray, n_bins: int, width: float = 0.0) -> np.ndarray:
    """Spatial covariances ``(1 - width) a_j a_jᵀ + width diag(a_j²)`` of sources with gains.

    Parameters
    ----------
    A : np.ndarray [shape=(n_channels, n_sources)], non-negative
        Every source's magnitude gain in every channel (e.g. its learned gains).
    n_bins : int
        Frequency bins (the same covariance in each).
    width : float in [0, 1]
        The share of each channel's power incoherent with the others (``a_j`` has
        squared norm ``n_channels``); a tiny ``1e-6 I`` keeps the matrices invertible.

    Returns
    -------
    R : np.ndarray [shape=(n_sources, n_bins, n_channels, n_channels)], complex128
    """
    A = np.asarray(A, dtype=np.float64)
    n_channels = A.shape[0]
    norm = np.sqrt(np.sum(A**2, axis=0))
    a = A / np.where(norm > 0, norm, 1.0) * np.sqrt(n_channels)
    a[:, norm <= 0] = 1.0
    w = float(width)
    R = (1 - w) * np.einsum("cj,dj->jcd", a, a) + w * np.einsum(
        "cj,cd->jcd", a**2, np.eye(n_channels)) + 1e-6 * np.eye(n_channels)
    return np.broadcast_to(R[:, None], (A.shape[1], n_bins, n_channels, n_channels)).astype(
        np.complex128)


def wiener_block(X: np.ndarray, v: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Return the multichannel Wiener estimate of every source image on a block of frames.

    Parameters
    ----------
    X : np.ndarray [shape=(n_channels, n_frames, n_bins)], complex
        The mixture.
    v : np.ndarray [shape=(n_sources, n_frames, n_bins)], non-negative
        Every source's power.
    R : np.ndarray [shape=(n_sources, n_bins, n_channels, n_channels)], complex
        Every source's spatial covariance (Hermitian, positive semi-definite).

    Returns
    -------
    Y : np.ndarray [shape=(n_sources, n_channels, n_frames, n_bins)], complex
        complex64 for two channels (the filter in single precision after a float64
        determinant), complex128 otherwise.
        The source images; ``Y.sum(axis=0) == X`` to rounding (the remainder the loading
        leaves is shared equally, as :func:`nmfsep.separate.stem_blocks` shares its own).
    """
    n_channels = X.shape[0]
    if n_channels == 2:
        return _wiener_stereo(X, v, R)
    X = X.astype(np.complex128, copy=False)
    v = v.astype(np.float64, copy=False)
    C = np.einsum("jtf,jfcd->tfcd", v, R)  # Σ_j v_j R_j: (n_frames, n_bins, C, C)
    trace = np.einsum("tfcc->tf", C).real
    # loading relative to the trace; silent points stay finite (and give Y = 0)
    C[..., np.arange(n_channels), np.arange(n_channels)] += (
        _LOAD * trace / n_channels + 1e-30)[..., None]
    Z = np.linalg.solve(C, X.transpose(1, 2, 0)[..., None])[..., 0].transpose(2, 0, 1)
    Y = np.einsum("jtf,jfcd,dtf->jctf", v, R, Z)
    Y += (X - Y.sum(axis=0)) / Y.shape[0]
    return Y


def _wiener_stereo(X: np.ndarray, v: np.ndarray, R: np.ndarray) -> np.ndarray:
    """:func:`wiener_block` for two channels: the 2 × 2 inverse written out, point-wise.

    The mixture covariance and its determinant are formed in float64 (the determinant
    cancels where one source dominates), the rest in single precision.
    """
    v64 = v.astype(np.float64, copy=False)
    c00 = np.einsum("jtf,jf->tf", v64, R[:, :, 0, 0].real)
    c11 = np.einsum("jtf,jf->tf", v64, R[:, :, 1, 1].real)
    c01 = (np.einsum("jtf,jf->tf", v64, R[:, :, 0, 1].real)
           + 1j * np.einsum("jtf,jf->tf", v64, R[:, :, 0, 1].imag))
    load = _LOAD * (c00 + c11) / 2 + 1e-30  # silent points: finite, and Y = 0 there
    c00 += load
    c11 += load
    det = c00 * c11 - (c01.real**2 + c01.imag**2)
    # the inverse's entries (at most about 1 / load: within float32)
    i00, i11 = (c11 / det).astype(np.float32), (c00 / det).astype(np.float32)
    i01 = (-c01 / det).astype(np.complex64)
    x0, x1 = X[0].astype(np.complex64, copy=False), X[1].astype(np.complex64, copy=False)
    z0 = i00 * x0 + i01 * x1
    z1 = np.conj(i01) * x0 + i11 * x1
    R32 = R.astype(np.complex64)[:, None]  # (n_sources, 1, n_bins, 2, 2)
    v32 = v.astype(np.float32, copy=False)
    Y = np.empty((v.shape[0], 2, *v.shape[1:]), dtype=np.complex64)
    np.multiply(v32, R32[..., 0, 0] * z0 + R32[..., 0, 1] * z1, out=Y[:, 0])
    np.multiply(v32, R32[..., 1, 0] * z0 + R32[..., 1, 1] * z1, out=Y[:, 1])
    Y += (X - Y.sum(axis=0)) / Y.shape[0]
    return Y


def _add_outer(num: np.ndarray, Y: np.ndarray) -> None:
    """``num[j, f] += Σ_t Y[j, :, t, f] Y[j, :, t, f]ᴴ`` (two channels written out)."""
    if Y.shape[1] != 2:
        num += np.einsum("jctf,jdtf->jfcd", Y, np.conj(Y))
        return
    y0, y1 = Y[:, 0], Y[:, 1]
    num[..., 0, 0] += np.sum(y0.real**2 + y0.imag**2, axis=1)
    num[..., 1, 1] += np.sum(y1.real**2 + y1.imag**2, axis=1)
    cross = np.sum(y0 * np.conj(y1), axis=1)
    num[..., 0, 1] += cross
    num[..., 1, 0] += np.conj(cross)


def _workers() -> int:
    """Threads for the blocks: the process's cores, at most 4."""
    return max(1, min(default_n_threads(), 4))


def _split(R: np.ndarray) -> tuple[np.ndarray, ...]:
    """Two-channel covariances as the kernels take them: ``r00, r11, Re r01, Im r01``."""
    return tuple(np.ascontiguousarray(a, dtype=np.float64) for a in (
        R[..., 0, 0].real, R[..., 1, 1].real, R[..., 0, 1].real, R[..., 0, 1].imag))


def _powers(Y: np.ndarray) -> np.ndarray:
    """Every source's power ``mean_c |Y_jc|²``: (n_sources, n_frames, n_bins)."""
    return np.mean(Y.real**2 + Y.imag**2, axis=1)


class SpatialWiener:
    """The spatial Wiener filter of a mixture, as complex masks a block of frames at a time.

    The source powers of the latest iterate are kept, ``(n_sources, n_frames, n_bins)``
    float32 (the filter of a block depends on the previous iterate only through them), so
    each EM iteration is one pass over the mixture and the filter of a block one more.

    Parameters
    ----------
    X : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex
        STFT of the mixture (the layout of :func:`nmfsep.spectral.stft`).
    masks_of : callable(t0, t1) -> np.ndarray [shape=(n_sources, n_channels, t1 - t0, n_bins)]
        Every channel's masks (:class:`nmfsep.masks.ChannelMasks`): the start of the
        source images.
    A : np.ndarray [shape=(n_channels, n_sources)], non-negative
        Every source's magnitude gain in every channel: the start of the spatial
        covariances (:func:`rank_one_covariances`, width :data:`START_WIDTH`).
    n_iter : int
        EM iterations; 0 gives the Wiener filter of the start.
    width : float or None
        The start's incoherent share (:func:`rank_one_covariances`); None:
        :data:`START_WIDTH`.

    Raises
    ------
    ParameterError
        If the shapes do not agree.
    """

    def __init__(
        self,
        X: np.ndarray,
        masks_of: Callable[[int, int], np.ndarray],
        A: np.ndarray,
        n_iter: int,
        width: float | None = None,
    ) -> None:
        n_channels, n_bins, n_frames = X.shape
        A = np.asarray(A, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != n_channels:
            raise ParameterError(
                f"gains of shape {A.shape} do not match a mixture of {n_channels} channels; "
                "give (n_channels, n_sources)"
            )
        self._frames = X.transpose(0, 2, 1)  # (n_channels, n_frames, n_bins), a view
        self.n_frames, self.n_bins = n_frames, n_bins
        self._v = np.empty((A.shape[1], n_frames, n_bins), dtype=np.float32)
        for t0, t1 in self._blocks():
            self._v[:, t0:t1] = _powers(masks_of(t0, t1) * self._frames[None, :, t0:t1])
        self.R = rank_one_covariances(A, n_bins, START_WIDTH if width is None else width)
        #: whether the compiled two-channel kernels (:mod:`nmfsep._wiener_kernels`) do the
        #: point-wise work: two channels and at least :data:`FUSED_MIN_POINTS` points
        self.fused = n_channels == 2 and n_frames * n_bins >= FUSED_MIN_POINTS
        # blocks of frames (numpy: its point-wise work releases the GIL), or ranges of bins
        # (compiled), in parallel; each writes its own part of the powers and returns or
        # writes its share of the covariance sums
        with ThreadPoolExecutor(max_workers=_workers()) as pool:
            for _ in range(int(n_iter)):
                # powers under this count as this much in the weights 1 / v_j
                floor = _FLOOR * self._v.max(axis=(1, 2)).astype(np.float64) + np.finfo(
                    np.float32).tiny
                num = self._em_fused(pool, floor) if self.fused else self._em_numpy(pool, floor)
                trace = np.einsum("jfcc->jf", num).real
                self.R = num * (n_channels / (trace + np.finfo(np.float64).tiny))[..., None, None]
        # the final covariances as the compiled kernels take them (every block's filter)
        self._r = _split(self.R) if self.fused else ()

    def _em_numpy(self, pool: ThreadPoolExecutor, floor: np.ndarray) -> np.ndarray:
        """Run an EM pass in blocks of frames; return ``Σ_t y yᴴ / v_j`` per source and bin."""
        blocks = self._blocks()
        num = np.zeros_like(self.R)
        for part in pool.map(self._em_block, [b[0] for b in blocks], [b[1] for b in blocks],
                             [floor[:, None, None]] * len(blocks)):
            num += part
        return num

    def _em_fused(self, pool: ThreadPoolExecutor, floor: np.ndarray) -> np.ndarray:
        """Run :meth:`_em_numpy` by :func:`nmfsep._wiener_kernels.em_stereo`, ranges of bins."""
        from ._kernels import compile_once
        from ._wiener_kernels import em_stereo

        x0, x1 = self._frames[0], self._frames[1]
        r = _split(self.R)
        sums = np.empty((self._v.shape[0], 4, self.n_bins))
        kernel = compile_once(em_stereo, x0, x1, self._v, *r, _LOAD, floor, sums, 0, 1)
        list(pool.map(lambda b: kernel(x0, x1, self._v, *r, _LOAD, floor, sums, *b),
                      self._bin_ranges()))
        num = np.empty_like(self.R)
        num[..., 0, 0], num[..., 1, 1] = sums[:, 0], sums[:, 1]
        num[..., 0, 1] = sums[:, 2] + 1j * sums[:, 3]
        num[..., 1, 0] = np.conj(num[..., 0, 1])
        return num

    def _em_block(self, t0: int, t1: int, floor: np.ndarray) -> np.ndarray:
        """One block of an EM pass: its new powers, and ``Σ_t y yᴴ / v_j`` over its frames."""
        Y = wiener_block(self._frames[:, t0:t1], self._v[:, t0:t1], self.R)
        v = _powers(Y)
        self._v[:, t0:t1] = v
        # R_j(f) = Σ_t y yᴴ / v_j, scaled to trace n_channels (Duong et al. 2010)
        Y /= np.sqrt(v + floor)[:, None]
        num = np.zeros_like(self.R)
        _add_outer(num, Y)
        return num

    def _blocks(self) -> list[tuple[int, int]]:
        return [(t0, min(t0 + _BLOCK_FRAMES, self.n_frames))
                for t0 in range(0, self.n_frames, _BLOCK_FRAMES)]

    def _bin_ranges(self) -> list[tuple[int, int]]:
        """Ranges of bins for the compiled kernels: four per worker thread."""
        edges = np.linspace(0, self.n_bins, 4 * _workers() + 1).astype(int)
        return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]

    def __call__(self, t0: int, t1: int) -> np.ndarray:
        """Complex masks ``Y_jc / X_c`` of frames t0 .. t1 - 1.

        Returns
        -------
        M : np.ndarray [shape=(n_sources, n_channels, t1 - t0, n_bins)], complex64
            ``M * X`` is the filter's estimate of every source image; the masks sum to
            one over the sources (where the mixture is zero, each is ``1 / n_sources``).
        """
        M = np.empty((self._v.shape[0], self._frames.shape[0], t1 - t0, self.n_bins),
                     dtype=np.complex64)
        if self.fused:
            from ._kernels import compile_once
            from ._wiener_kernels import masks_stereo

            x0, x1 = self._frames[0], self._frames[1]
            r = self._r
            kernel = compile_once(masks_stereo, x0, x1, self._v, *r, _LOAD, t0, t1, 0, 1, M)
            with ThreadPoolExecutor(max_workers=_workers()) as pool:
                list(pool.map(lambda b: kernel(x0, x1, self._v, *r, _LOAD, t0, t1, *b, M),
                              self._bin_ranges()))
            return M

        def fill(a: int) -> None:
            b = min(a + _BLOCK_FRAMES, t1)
            X = self._frames[:, a:b]
            Y = wiener_block(X, self._v[:, a:b], self.R)
            M[:, :, a - t0 : b - t0] = 1.0 / Y.shape[0]
            np.divide(Y, X[None], out=M[:, :, a - t0 : b - t0], where=(np.abs(X) > 0)[None])

        starts = range(t0, t1, _BLOCK_FRAMES)
        if len(starts) > 1:
            with ThreadPoolExecutor(max_workers=_workers()) as pool:
                list(pool.map(fill, starts))
        else:
            for a in starts:
                fill(a)
        return M


def real_masks(M: np.ndarray) -> np.ndarray:
    """Real masks in ``[0, 1]`` summing to one, for display, from complex ones.

    Parameters
    ----------
    M : np.ndarray [shape=(n_sources, ...)], complex or real

    Returns
    -------
    np.ndarray [shape=M.shape], float32
        ``|M_j| / Σ_k |M_k|`` (each source's share of the magnitude); real masks unchanged.
    """
    if not np.iscomplexobj(M):
        return M.astype(np.float32, copy=False)
    mag = np.abs(M)
    total = mag.sum(axis=0)
    return np.divide(mag, total, out=np.full(mag.shape, 1.0 / M.shape[0]),
                     where=total > 0).astype(np.float32)
