"""β-divergences between a non-negative matrix and its low-rank model.

The β-divergence family (Févotte & Idier 2011) contains the three losses used
in audio NMF as special cases:

* β = 2: half the squared Euclidean (Frobenius) distance,
* β = 1: the generalised Kullback-Leibler divergence,
* β = 0: the Itakura-Saito divergence (scale invariant, suits power spectrograms).

For any other real β the general formula is used.

Numerics follow scikit-learn's ``_beta_divergence`` so that the two can be
compared value for value: entries of V at or below ``EPSILON`` contribute only
their model term (``0 log 0 = 0``), and the model WH is floored at ``EPSILON``
where it divides or is logged.

:func:`penalties` gives the regularisation terms that the solvers add to the
divergence to form the objective.

:func:`use_kernel` is the one rule that decides, by the size of a problem, whether
its KL / IS work runs in the compiled kernels of :mod:`nmfsep._kernels` or in numpy.
"""

from __future__ import annotations

import numpy as np

from ._checks import fail

__all__ = [
    "EPSILON", "BETA_NAMES", "KERNEL_MIN_WORK", "beta_loss_to_float", "beta_divergence",
    "divergence_terms", "penalties", "use_kernel",
]

#: Floor for the model WH, as in scikit-learn (float32 machine epsilon).
EPSILON = float(np.finfo(np.float32).eps)

#: Named β values, as accepted by scikit-learn's ``beta_loss``.
BETA_NAMES = {"frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}

#: Problems with fewer multiply-adds per product than this (``n_frames * n_bins * k``)
#: run in numpy, larger ones in the compiled kernels (KL and IS). Compiling the MU
#: kernel costs about 11 s once per machine and float type (numba caches it on disk),
#: and importing numba 0.5 s per process; below this size the kernel saves less per
#: fit than that (an 8-second mixture, 345 x 1025 x 16 = 5.7e6, spends 0.3 s in numpy
#: MU instead of 0.2 s), above it (a 60-second spectrogram, 2584 x 1025 x 8 = 2.1e7,
#: and anything bigger) the kernel is 1.5 to 2 times faster per iteration.
#: ``benchmarks/bench_first_run.py`` measures the README's first separation.
KERNEL_MIN_WORK = 1 << 24


def use_kernel(n_rows: int, n_cols: int, k: int) -> bool:
    """Whether a factorization of this size runs its KL / IS work in compiled kernels.

    The choice depends on the size alone (never on whether a kernel has been
    compiled yet), so a problem always takes the same path and a seed gives the same
    result from run to run.

    Parameters
    ----------
    n_rows, n_cols : int
        Shape of V (frames x bins).
    k : int
        Number of components.

    Returns
    -------
    bool
        ``n_rows * n_cols * k >= KERNEL_MIN_WORK``.
    """
    return n_rows * n_cols * k >= KERNEL_MIN_WORK


def beta_loss_to_float(beta: str | float, name: str = "beta_loss") -> float:
    """Convert a ``beta_loss`` name or number to a float.

    Parameters
    ----------
    beta : {"frobenius", "kullback-leibler", "itakura-saito"} or float
        The divergence, by name or as a real β.
    name : str
        The caller's name for the argument, in error messages.

    Returns
    -------
    float
        The β value (2, 1, 0 for the named losses).

    Raises
    ------
    ParameterError
        For an unknown name or a non-finite number.
    """
    if isinstance(beta, str):
        try:
            return BETA_NAMES[beta]
        except KeyError:
            names = ", ".join(repr(n) for n in BETA_NAMES)
            raise fail(name, f"one of {names} or a real number", beta) from None
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise fail(name, "a name or a real number", beta)
    value = float(beta)
    if not np.isfinite(value):
        raise fail(name, "a finite number", beta)
    return value


def divergence_terms(
    V: np.ndarray, WH: np.ndarray, beta: float, *, overwrite_wh: bool = False,
    fused: bool = True,
) -> float:
    """Sum of the β-divergence over one block of entries.

    Parameters
    ----------
    V : np.ndarray [shape=(n_rows, n_bins)], non-negative
        Data block.
    WH : np.ndarray [shape=(n_rows, n_bins)], non-negative
        Model of the same block. Not modified unless ``overwrite_wh``.
    beta : float
        The β of the divergence.
    overwrite_wh : bool
        Allow WH to be used as scratch space (saves a copy; KL and IS).
    fused : bool, default=True
        KL and IS: one compiled pass (:mod:`nmfsep._kernels`, compiled on first use)
        instead of numpy; the same sums, rounded differently. Callers pass
        :func:`use_kernel` of the whole problem.

    Returns
    -------
    float
        ``Σ d_β(V | WH)`` over the block.

    Notes
    -----
    The result equals scikit-learn's ``_beta_divergence`` restricted to the
    block, so blocks can be summed to get the divergence of a whole matrix
    without forming a V-sized temporary. Entries of V at or below ``EPSILON``
    only contribute their model term. Sums run in the data's precision per
    block (numpy's pairwise summation) and across blocks in float64.
    """
    if beta == 2:
        diff = V - WH
        return 0.5 * float(np.dot(diff.ravel(), diff.ravel()))
    if fused and beta in (0, 1) and V.dtype == WH.dtype and V.dtype in (np.float32, np.float64):
        return _divergence_terms_fused(V, WH, beta, overwrite_wh)
    all_positive = V.size == 0 or V.min() > EPSILON
    if all_positive:
        v = V
        ratio = np.maximum(WH, EPSILON) if WH.min() < EPSILON else WH.copy()
    else:
        mask = V > EPSILON
        v = V[mask]
        ratio = np.maximum(WH[mask], EPSILON)
    np.divide(v, ratio, out=ratio)  # ratio = V / WH on the kept entries
    if beta == 1:
        # sum(WH) - sum(V) + sum(V log(V / WH)); zeros of V contribute WH only.
        np.log(ratio, out=ratio)
        return float(np.dot(v.ravel(), ratio.ravel())) + float(WH.sum()) - float(v.sum())
    if beta == 0:
        # scikit-learn counts every entry in the "- 1" term, zeros of V included.
        total = float(ratio.sum()) - V.size
        np.log(ratio, out=ratio)
        return total - float(ratio.sum())
    WH64 = WH.astype(np.float64)
    wh = WH64 if all_positive else WH64[mask]
    v64 = v.astype(np.float64)
    if beta < 1:  # WH ** beta is infinite at 0 for beta < 0: floor as the updates do
        WH64 = np.maximum(WH64, EPSILON)
    wh = np.maximum(wh, EPSILON)
    sum_wh_beta = np.sum(WH64**beta)
    sum_v_wh = float(np.dot(v64.ravel(), (wh ** (beta - 1)).ravel()))
    res = np.sum(v64**beta) - beta * sum_v_wh + sum_wh_beta * (beta - 1)
    return float(res / (beta * (beta - 1)))


def _divergence_terms_fused(V: np.ndarray, WH: np.ndarray, beta: float, overwrite: bool) -> float:
    """KL and IS: the same sums as below, with one compiled pass and numpy's vector log."""
    from ._kernels import loss_terms

    V = np.ascontiguousarray(V)
    if overwrite and WH.flags.c_contiguous and WH.flags.writeable:
        ratio = WH  # scratch, overwritten with V / WH
    else:
        ratio = np.array(WH, order="C", copy=True)
    sum_wh, sum_v, sum_ratio = loss_terms(V, ratio, beta == 0)
    np.log(ratio, out=ratio)  # 0 where V <= EPSILON (the kernel wrote 1 there)
    if beta == 1:
        return float(np.dot(V.ravel(), ratio.ravel())) + sum_wh - sum_v
    return sum_ratio - V.size - float(ratio.sum(dtype=np.float64))


def beta_divergence(
    V: np.ndarray,
    W: np.ndarray,
    H: np.ndarray,
    beta: str | float = "kullback-leibler",
    *,
    square_root: bool = False,
    block_rows: int = 4096,
) -> float:
    """β-divergence between V and its NMF model W @ H.

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, n_bins)], non-negative
        The data (one row per frame).
    W : np.ndarray [shape=(n_frames, k)], non-negative
        Activations.
    H : np.ndarray [shape=(k, n_bins)], non-negative
        Spectral atoms.
    beta : {"frobenius", "kullback-leibler", "itakura-saito"} or float
        The divergence.
    square_root : bool, default=False
        Return ``sqrt(2 * D)`` instead of ``D`` (scikit-learn's
        ``reconstruction_err_``; the Frobenius norm of the residual for β = 2).
    block_rows : int, default=4096
        Rows of V processed at a time, so memory stays bounded.

    Returns
    -------
    float
        ``D_β(V | W H)`` summed over all entries (or its square-root form).

    Examples
    --------
    >>> import numpy as np
    >>> from nmfsep import beta_divergence
    >>> V = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> W, H = np.eye(2), V.copy()
    >>> beta_divergence(V, W, H, "itakura-saito")
    0.0
    """
    beta = beta_loss_to_float(beta, "beta")
    V = np.asarray(V)
    W = np.asarray(W)
    H = np.asarray(H)
    fused = V.ndim == W.ndim == 2 and use_kernel(V.shape[0], V.shape[1], W.shape[1])
    total = 0.0
    for start in range(0, V.shape[0], block_rows):
        stop = min(start + block_rows, V.shape[0])
        total += divergence_terms(V[start:stop], W[start:stop] @ H, beta, fused=fused)
    if square_root:
        return float(np.sqrt(2 * max(total, 0.0)))
    return total


def penalties(W: np.ndarray, H: np.ndarray, fixed: np.ndarray, reg: dict) -> float:
    """Return the regularisation terms of the objective (fixed atoms are not penalised).

    Parameters
    ----------
    W : np.ndarray [shape=(n_frames, k)]
        Activations.
    H : np.ndarray [shape=(k, n_bins)]
        Atoms.
    fixed : np.ndarray of bool [shape=(k,)]
        Which atoms are fixed.
    reg : dict
        ``l1_W``, ``l2_W``, ``l1_H``, ``l2_H``: the scaled penalty weights.

    Returns
    -------
    float
        ``l1_W |W|_1 + l2_W |W|_F^2 / 2 + l1_H |H_free|_1 + l2_H |H_free|_F^2 / 2``.
    """
    Hf = H[~fixed]
    total = 0.0
    if reg["l1_W"]:
        total += reg["l1_W"] * float(W.sum(dtype=np.float64))
    if reg["l2_W"]:
        total += 0.5 * reg["l2_W"] * float(np.sum(W.astype(np.float64) ** 2))
    if reg["l1_H"]:
        total += reg["l1_H"] * float(Hf.sum(dtype=np.float64))
    if reg["l2_H"]:
        total += 0.5 * reg["l2_H"] * float(np.sum(Hf.astype(np.float64) ** 2))
    return total
