"""BSS Eval v3 ``bss_eval_sources``, written here (no private or deprecated mir_eval API).

The decomposition of Vincent, Gribonval & Févotte (2006), as
``mir_eval.separation.bss_eval_sources`` computes it: an estimate ``ŝ`` is split
into ``s_target + e_interf + e_artif`` by least-squares projections onto
time-invariant filters of ``filter_length`` taps (512) of its reference
(``s_target``, with the filtering distortion) and of all the references
(``+ e_interf``); the rest is ``e_artif``. Then

* SDR = 10 log10(‖s_target‖² / ‖e_interf + e_artif‖²)
* SIR = 10 log10(‖s_target‖² / ‖e_interf‖²)
* SAR = 10 log10(‖s_target + e_interf‖² / ‖e_artif‖²)

in dB (+inf when the denominator is 0). :func:`bss_eval_images` does the same for
multichannel source images (each estimate channel projected on every channel of
the references) and adds ISR, the image-to-spatial-distortion ratio. The Gram matrix of the delayed
references is computed and factorised once per reference set and reused for every
estimate. ``tests/test_bsseval.py`` checks the numbers against mir_eval.
"""

from __future__ import annotations

import numpy as np

from nmfsep.exceptions import ParameterError

__all__ = [
    "FILTER_LENGTH", "BSSEval", "bss_eval_sources", "bss_eval_framewise", "bss_eval_images"
]

#: mir_eval's ``bss_eval_sources`` filter length, in taps.
FILTER_LENGTH = 512

_DEPENDENT = (
    "BSS Eval failed: the reference sources are linearly dependent (two identical or "
    "delayed/filtered copies of one signal, or pure tones); evaluate distinct references"
)


def _db(num: float, den: float) -> float:
    return float("inf") if den == 0 else float(10 * np.log10(num / den))


class BSSEval:
    """The projections of BSS Eval v3 onto one set of references.

    Parameters
    ----------
    references : np.ndarray [shape=(n_sources, n_samples) or (n_sources, n_channels, n_samples)]
        Non-silent references: mono (``bss_eval_sources``) or source images
        (``bss_eval_images``: each estimate channel is projected on every channel of
        every reference).
    filter_length : int
        Taps of the distortion filters (512 in BSS Eval v3).

    Raises
    ------
    ParameterError
        If the references are linearly dependent (their Gram matrix is singular).
    """

    def __init__(self, references: np.ndarray, filter_length: int = FILTER_LENGTH) -> None:
        R = np.asarray(references, dtype=np.float64)
        self.mono = R.ndim == 2
        R = R[:, None] if self.mono else R
        self.n_src, self.n_chan, self.n = R.shape
        self.rows = R.reshape(self.n_src * self.n_chan, self.n)  # source-major
        self.flen = f = int(filter_length)
        self.n_fft = int(2 ** np.ceil(np.log2(self.n + f - 1.0)))
        self.spectra = np.fft.fft(self.rows, n=self.n_fft, axis=1)
        G = self._gram()
        c = self.n_chan * f  # rows of G per source
        # source images may be rank-deficient (a panned mono source: its channels are
        # scaled copies of one signal); the projections are still defined, and are
        # computed from a pivoted Cholesky factor that stops at the numerical rank (any
        # solution gives the least-squares projection mir_eval's lstsq gives)
        singular_ok = not self.mono
        self._all = _factor(G, singular_ok)
        self._own = [_factor(G[j * c:(j + 1) * c, j * c:(j + 1) * c], singular_ok)
                     for j in range(self.n_src)]

    def _gram(self) -> np.ndarray:
        """Inner products of every pair of delayed reference rows."""
        import scipy.linalg

        f, n_rows = self.flen, self.rows.shape[0]
        G = np.zeros((n_rows * f, n_rows * f))
        for i in range(n_rows):
            for j in range(i, n_rows):
                c = np.real(np.fft.ifft(self.spectra[i] * np.conj(self.spectra[j])))
                block = scipy.linalg.toeplitz(np.hstack((c[0], c[-1:-f:-1])), r=c[:f])
                G[i * f:(i + 1) * f, j * f:(j + 1) * f] = block
                G[j * f:(j + 1) * f, i * f:(i + 1) * f] = block.T
        return G

    def _correlations(self, e: np.ndarray) -> np.ndarray:
        """Inner products of each estimate channel with every delayed reference row.

        Returns
        -------
        np.ndarray [shape=(n_rows * flen, n_channels)]
        """
        spec = np.fft.fft(e, n=self.n_fft, axis=1)
        f = self.flen
        cols = []
        for channel in spec:
            c = np.real(np.fft.ifft(self.spectra * np.conj(channel)[None], axis=1))
            cols.append(np.hstack([np.hstack((row[0], row[-1:-f:-1])) for row in c]))
        return np.stack(cols, axis=1)

    def _project(self, coefs: np.ndarray, rows: range) -> np.ndarray:
        """Sum over ``rows`` of each row filtered by its coefficients, per estimate channel."""
        from scipy.signal import fftconvolve

        f, length = self.flen, self.n + self.flen - 1
        out = np.zeros((coefs.shape[1], length))
        for k, r in enumerate(rows):
            for ch in range(coefs.shape[1]):
                out[ch] += fftconvolve(coefs[k * f:(k + 1) * f, ch], self.rows[r])[:length]
        return out

    def decompose(self, estimate: np.ndarray, j: int) -> tuple[np.ndarray, ...]:
        """Split ``estimate`` against reference ``j``.

        Parameters
        ----------
        estimate : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]
            As the references are mono or images.
        j : int
            The reference.

        Returns
        -------
        s_true, e_spat, e_interf, e_artif : np.ndarray
            [shape=(n_samples + flen - 1,) or (n_channels, n_samples + flen - 1)]
        """
        e = np.asarray(estimate, dtype=np.float64).reshape(self.n_chan, self.n)
        D = self._correlations(e)
        c = self.n_chan * self.flen
        with np.errstate(all="ignore"):
            c_own = _solve(self._own[j], D[j * c:(j + 1) * c])
            c_all = _solve(self._all, D)
        own_rows = range(j * self.n_chan, (j + 1) * self.n_chan)
        s_true = np.hstack((self.rows[own_rows.start:own_rows.stop],
                            np.zeros((self.n_chan, self.flen - 1))))
        e_spat = self._project(c_own, own_rows) - s_true
        e_interf = self._project(c_all, range(self.rows.shape[0])) - s_true - e_spat
        e_artif = -s_true - e_spat - e_interf
        e_artif[:, :self.n] += e
        parts = (s_true, e_spat, e_interf, e_artif)
        return tuple(x[0] for x in parts) if self.mono else parts

    def scores(self, estimate: np.ndarray, j: int) -> tuple[float, float, float]:
        """Return SDR, SIR and SAR of ``estimate`` against reference ``j``, in dB (sources)."""
        s_true, e_spat, e_interf, e_artif = self.decompose(estimate, j)
        s_filt = s_true + e_spat
        return (
            _db(np.sum(s_filt**2), np.sum((e_interf + e_artif) ** 2)),
            _db(np.sum(s_filt**2), np.sum(e_interf**2)),
            _db(np.sum((s_filt + e_interf) ** 2), np.sum(e_artif**2)),
        )

    def image_scores(self, estimate: np.ndarray, j: int) -> tuple[float, float, float, float]:
        """Return SDR, ISR, SIR and SAR of a source image against reference ``j``, in dB."""
        s_true, e_spat, e_interf, e_artif = self.decompose(estimate, j)
        return (
            _db(np.sum(s_true**2), np.sum((e_spat + e_interf + e_artif) ** 2)),
            _db(np.sum(s_true**2), np.sum(e_spat**2)),
            _db(np.sum((s_true + e_spat) ** 2), np.sum(e_interf**2)),
            _db(np.sum((s_true + e_spat + e_interf) ** 2), np.sum(e_artif**2)),
        )


def _factor(G: np.ndarray, singular_ok: bool = False) -> tuple:
    """Factorise a Gram matrix for :func:`_solve`, or refuse one that is singular to rounding.

    Without ``singular_ok``: LU, refused when singular. With it: a Cholesky factorisation
    with complete pivoting (LAPACK ``?pstrf``), which stops at the matrix's numerical rank
    (tolerance ``n · eps · max(diag G)``, about the cut-off of a least-squares solve):
    ``("pivoted", L, kept)``, ``L`` the factor of the rows and columns ``kept``.
    """
    import scipy.linalg
    from scipy.linalg import lapack

    if singular_ok:
        L, piv, rank, info = lapack.dpstrf(G, lower=1)
        if info < 0 or rank == 0:
            raise ParameterError(_DEPENDENT)
        return "pivoted", np.tril(L[:rank, :rank]), piv[:rank] - 1
    with np.errstate(all="ignore"):
        try:
            lu = scipy.linalg.lu_factor(G, check_finite=False)
            pivots = np.abs(np.diag(lu[0]))
            ok = pivots.min() > pivots.max() * G.shape[0] * np.finfo(np.float64).eps
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ParameterError(_DEPENDENT) from exc
    if not ok:
        raise ParameterError(_DEPENDENT)
    return lu


def _solve(factor: tuple, D: np.ndarray) -> np.ndarray:
    """Return a solution of ``G C = D`` with a factor from :func:`_factor`.

    With a pivoted factor of a singular ``G``, the solution that is zero outside the
    ``kept`` rows: ``D`` (correlations with the references) lies in the range of ``G``,
    so every solution gives the same projection ``Σ C r``, that of least squares
    (mir_eval's ``lstsq``).
    """
    import scipy.linalg

    if isinstance(factor[0], str):
        _, L, kept = factor
        C = np.zeros_like(D)
        C[kept] = scipy.linalg.cho_solve((L, True), D[kept], check_finite=False)
        return C
    return scipy.linalg.lu_solve(factor, D, check_finite=False)


def bss_eval_sources(
    references: np.ndarray, estimates: np.ndarray, filter_length: int = FILTER_LENGTH
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SDR, SIR and SAR of estimate ``j`` against reference ``j`` (no permutation).

    Parameters
    ----------
    references : np.ndarray [shape=(n_sources, n_samples)]
        Non-silent mono references.
    estimates : np.ndarray [shape=(n_sources, n_samples)]
        Mono estimates, in the order of the references.
    filter_length : int
        Taps of the distortion filters.

    Returns
    -------
    sdr, sir, sar : np.ndarray [shape=(n_sources,)]
        In dB.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> refs = rng.standard_normal((2, 4000))
    >>> sdr, sir, sar = bss_eval_sources(refs, refs + 0.1 * rng.standard_normal((2, 4000)))
    >>> bool(np.all(sdr > 15))
    True
    """
    bss = BSSEval(references, filter_length)
    out = np.array([bss.scores(e, j) for j, e in enumerate(np.asarray(estimates))])
    return out[:, 0], out[:, 1], out[:, 2]


def bss_eval_framewise(
    references: np.ndarray, estimates: np.ndarray, window: int, hop: int | None = None,
    filter_length: int = FILTER_LENGTH,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`bss_eval_sources` on successive windows (as mir_eval's ``_framewise``).

    Parameters
    ----------
    references, estimates : np.ndarray [shape=(n_sources, n_samples)]
        Mono signals, estimate ``j`` for reference ``j``.
    window : int
        Samples per window (e.g. one second).
    hop : int, optional
        Samples between window starts (default ``window``).
    filter_length : int
        Taps of the distortion filters.

    Returns
    -------
    sdr, sir, sar : np.ndarray [shape=(n_sources, n_windows)]
        In dB; NaN for a window where a reference or an estimate is all zeros.
        Fewer than two windows: the whole signals, one column.
    """
    R, E = np.atleast_2d(references), np.atleast_2d(estimates)
    hop = window if hop is None else hop
    n_win = int((R.shape[1] - window + hop) // hop)
    if n_win < 2:
        return tuple(x[:, None] for x in bss_eval_sources(R, E, filter_length))  # type: ignore[return-value]
    out = np.full((3, R.shape[0], n_win), np.nan)
    for w in range(n_win):
        r, e = R[:, w * hop:w * hop + window], E[:, w * hop:w * hop + window]
        if np.all(np.any(r != 0, axis=1)) and np.all(np.any(e != 0, axis=1)):
            out[:, :, w] = np.array(bss_eval_sources(r, e, filter_length))
    return out[0], out[1], out[2]


def bss_eval_images(
    references: np.ndarray, estimates: np.ndarray, filter_length: int = FILTER_LENGTH
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BSS Eval v3 ``bss_eval_images`` of source images (stereo stems), no permutation.

    Parameters
    ----------
    references, estimates : np.ndarray [shape=(n_sources, n_channels, n_samples)]
        Channels first (nmfsep's layout; mir_eval wants ``(n_sources, n_samples,
        n_channels)``).
    filter_length : int
        Taps of the distortion filters.

    Returns
    -------
    sdr, isr, sir, sar : np.ndarray [shape=(n_sources,)]
        In dB; ISR (source image to spatial distortion) measures how well the
        stereo image is kept.
    """
    for name, x in (("references", references), ("estimates", estimates)):
        shape = np.shape(x)
        if len(shape) == 3 and shape[1] > shape[2]:
            raise ParameterError(
                f"{name} has shape {shape}: more channels than samples; bss_eval_images "
                "takes (n_sources, n_channels, n_samples): for mir_eval's (n_sources, "
                "n_samples, n_channels) layout pass x.transpose(0, 2, 1)"
            )
    bss = BSSEval(np.asarray(references), filter_length)
    if bss.mono:
        raise ParameterError("bss_eval_images wants (n_sources, n_channels, n_samples) arrays")
    out = np.array([bss.image_scores(e, j) for j, e in enumerate(np.asarray(estimates))])
    return out[:, 0], out[:, 1], out[:, 2], out[:, 3]
