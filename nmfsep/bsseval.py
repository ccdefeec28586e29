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

in dB (+inf when the denominator is 0). The Gram matrix of the delayed
references is computed and factorised once per reference set and reused for every
estimate. ``tests/test_bsseval.py`` checks the numbers against mir_eval.
"""

from __future__ import annotations

import numpy as np

from nmfsep.exceptions import ParameterError

__all__ = ["FILTER_LENGTH", "BSSEval", "bss_eval_sources", "bss_eval_framewise"]

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
    references : np.ndarray [shape=(n_sources, n_samples)]
        Non-silent mono references.
    filter_length : int
        Taps of the distortion filters (512 in BSS Eval v3).

    Raises
    ------
    ParameterError
        If the references are linearly dependent (their Gram matrix is singular).
    """

    def __init__(self, references: np.ndarray, filter_length: int = FILTER_LENGTH) -> None:
        import scipy.linalg

        R = np.asarray(references, dtype=np.float64)
        self.R, self.flen = R, int(filter_length)
        n_src, n = R.shape
        self.n_fft = int(2 ** np.ceil(np.log2(n + self.flen - 1.0)))
        self.spectra = np.fft.fft(R, n=self.n_fft, axis=1)
        f = self.flen
        G = np.zeros((n_src * f, n_src * f))
        for i in range(n_src):
            for j in range(i, n_src):
                c = np.real(np.fft.ifft(self.spectra[i] * np.conj(self.spectra[j])))
                block = scipy.linalg.toeplitz(np.hstack((c[0], c[-1:-f:-1])), r=c[:f])
                G[i * f:(i + 1) * f, j * f:(j + 1) * f] = block
                G[j * f:(j + 1) * f, i * f:(i + 1) * f] = block.T
        self.G = G
        with np.errstate(all="ignore"):
            try:
                self._all = scipy.linalg.lu_factor(G, check_finite=False)
                self._own = [scipy.linalg.lu_factor(G[j * f:(j + 1) * f, j * f:(j + 1) * f],
                                                    check_finite=False) for j in range(n_src)]
            except (np.linalg.LinAlgError, ValueError) as exc:
                raise ParameterError(_DEPENDENT) from exc
        for lu, _ in [self._all, *self._own]:  # a pivot at rounding level: singular
            pivots = np.abs(np.diag(lu))
            if not pivots.min() > pivots.max() * lu.shape[0] * np.finfo(np.float64).eps:
                raise ParameterError(_DEPENDENT)

    def _correlations(self, estimate: np.ndarray) -> np.ndarray:
        """Inner products of the estimate with every delayed reference, ``(n_src * flen,)``."""
        spec = np.fft.fft(estimate, n=self.n_fft)
        c = np.real(np.fft.ifft(self.spectra * np.conj(spec)[None], axis=1))
        f = self.flen
        return np.hstack([np.hstack((row[0], row[-1:-f:-1])) for row in c])

    def _project(self, coefs: np.ndarray, rows: list[int]) -> np.ndarray:
        from scipy.signal import fftconvolve

        n = self.R.shape[1]
        out = np.zeros(n + self.flen - 1)
        for k, j in enumerate(rows):
            out += fftconvolve(coefs[k * self.flen:(k + 1) * self.flen], self.R[j])
        return out[:n + self.flen - 1]

    def decompose(self, estimate: np.ndarray, j: int) -> tuple[np.ndarray, ...]:
        """Split ``estimate`` against reference ``j``.

        Returns
        -------
        s_true, e_spat, e_interf, e_artif : np.ndarray [shape=(n_samples + flen - 1,)]
        """
        import scipy.linalg

        f, n = self.flen, self.R.shape[1]
        e = np.asarray(estimate, dtype=np.float64)
        D = self._correlations(e)
        with np.errstate(all="ignore"):
            c_own = scipy.linalg.lu_solve(self._own[j], D[j * f:(j + 1) * f], check_finite=False)
            c_all = scipy.linalg.lu_solve(self._all, D, check_finite=False)
        s_true = np.hstack((self.R[j], np.zeros(f - 1)))
        e_spat = self._project(c_own, [j]) - s_true
        e_interf = self._project(c_all, list(range(self.R.shape[0]))) - s_true - e_spat
        e_artif = -s_true - e_spat - e_interf
        e_artif[:n] += e
        return s_true, e_spat, e_interf, e_artif

    def scores(self, estimate: np.ndarray, j: int) -> tuple[float, float, float]:
        """Return SDR, SIR and SAR of ``estimate`` against reference ``j``, in dB."""
        s_true, e_spat, e_interf, e_artif = self.decompose(estimate, j)
        s_filt = s_true + e_spat
        return (
            _db(np.sum(s_filt**2), np.sum((e_interf + e_artif) ** 2)),
            _db(np.sum(s_filt**2), np.sum(e_interf**2)),
            _db(np.sum((s_filt + e_interf) ** 2), np.sum(e_artif**2)),
        )


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
