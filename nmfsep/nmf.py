r"""β-NMF: the numerical core of nmfsep.

``V ≈ W @ H`` with V ``(n_frames, n_bins)`` non-negative, W ``(n_frames, k)`` the
activations and H ``(k, n_bins)`` the spectral atoms (scikit-learn's
``components_``). The objective is

.. math::

    D_β(V \mid W H) + a_W \|W\|_1 + \tfrac{1}{2} b_W \|W\|_F^2
                    + a_H \|H\|_1 + \tfrac{1}{2} b_H \|H\|_F^2

with ``a_W = alpha_W * l1_ratio * n_bins``, ``b_W = alpha_W * (1 - l1_ratio) *
n_bins``, ``a_H = alpha_H * l1_ratio * n_frames``, ``b_H = alpha_H * (1 - l1_ratio)
* n_frames`` — exactly scikit-learn's scaling, so the same ``alpha`` means the
same thing in both. With ``normalize_atoms=True`` the model is ``W Ĥ`` with
``Ĥ`` the unit-L2-norm rows of H (Le Roux, Weninger & Hershey 2015), so an L1
penalty on W makes the activations sparse instead of merely shrinking them
while H grows.

Solvers
-------
``"mu"``
    Multiplicative updates with the Févotte & Idier (2011) exponent; the
    objective never increases, for any β. The default.
``"amu"``
    Adaptive over-relaxed multiplicative updates (Badeau, Bertin & Vincent
    2010): the MU exponent is multiplied by a factor that grows while the
    objective keeps decreasing and falls back to 1 (with the step undone) when
    it does not, so the objective still never increases. Usually reaches a
    given loss in fewer iterations and less time than ``"mu"``; use it when
    you care about time to a loss, ``"mu"`` when you want scikit-learn's
    iterates.
``"cd"``
    Coordinate descent: exact HALS for β = 2 (Cichocki & Phan 2009) and
    per-component projected Newton steps with a backtracking safeguard for
    β = 1 (Hsieh & Dhillon 2011). Few, expensive iterations; monotone.

For KL and IS, ``"mu"`` and ``"amu"`` run a compiled kernel (numba,
:mod:`nmfsep._kernels`) when ``n_frames * n_bins * k >= 2**24``
(:func:`nmfsep.divergence.use_kernel`, e.g. a 60-second spectrogram), numpy
otherwise (e.g. an 8-second one: nothing to compile on a fresh install). The
rule depends on the size alone, so a seed gives the same result in every run.
When every atom is fixed (``"mu"``/``"amu"``, β in {0, 1, 2}) and at least 16
atoms are mostly zeros (harmonic atoms, :mod:`nmfsep.harmonic`), the update of W
skips their zeros (:mod:`nmfsep._sparse`); that rule depends on the atoms alone.

Zeros
-----
For β > 0 zeros in V are fine. For β ≤ 0 (Itakura-Saito and below) the
divergence is undefined at ``V = 0``; nmfsep replaces every entry of V below
``eps`` by ``eps`` (default ``EPSILON * max(V)``, a floor 138 dB below the
peak), so spectrograms with digital silence work. scikit-learn raises instead.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from . import _cd
from ._adapt import Adaptation, adapt_penalty, adapt_rows, check_adapt, w_penalty
from ._checks import check_choice, check_int, check_real, fail
from ._mu import EPS64, N_PARTS, MUSettings, divergence_blocked, mu_exponent, mu_pass
from ._sparse import SplitAtoms, divergence_split, mu_pass_split, split_atoms
from .divergence import EPSILON, beta_loss_to_float, penalties, use_kernel
from .exceptions import ParameterError, convergence_warning_category
from .init import INIT_METHODS, check_random_state, initialize

__all__ = ["NMFResult", "nmf", "starting_factors", "SOLVERS", "check_nonnegative_matrix",
           "blas_single_thread"]

SOLVERS = ("mu", "amu", "cd")


@dataclass(frozen=True)
class NMFResult:
    """What :func:`nmf` found.

    Attributes
    ----------
    W : np.ndarray [shape=(n_frames, k)]
        Activations.
    H : np.ndarray [shape=(k, n_bins)]
        Spectral atoms; fixed atoms are bit-identical to those given (unless
        ``adapt`` let them move).
    n_iter : int
        Iterations run.
    loss_history : np.ndarray [shape=(n_checks,)]
        The objective (divergence plus penalties) at iteration 0 and at every
        check.
    loss_iterations : np.ndarray [shape=(n_checks,)]
        The iteration number of each entry of ``loss_history``.
    reconstruction_err : float
        ``sqrt(2 * D_β(V | WH))``, scikit-learn's ``reconstruction_err_``.
    converged : bool
        Whether ``tol`` was reached before ``max_iter``.
    beta : float
        The β of the divergence.
    solver : str
        The solver used.
    """

    W: np.ndarray
    H: np.ndarray
    n_iter: int
    loss_history: np.ndarray
    loss_iterations: np.ndarray
    reconstruction_err: float
    converged: bool
    beta: float
    solver: str
    fixed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def loss(self) -> float:
        """The last value of the objective."""
        return float(self.loss_history[-1])


def check_nonnegative_matrix(V, name: str = "V") -> np.ndarray:
    """Validate a data matrix: 2-D, real, finite, non-negative, not empty.

    Parameters
    ----------
    V : array-like [shape=(n_rows, n_cols)]
    name : str
        Name used in error messages.

    Returns
    -------
    np.ndarray
        float32 and float64 arrays unchanged (no copy); anything else as float64.
    """
    if hasattr(V, "toarray") and hasattr(V, "nnz"):
        raise ParameterError(
            f"A sparse matrix was passed as {name}, but dense data is required; "
            "use .toarray() to convert it to a dense numpy array"
        )
    try:
        arr = np.asarray(V)
        if arr.dtype == object:
            arr = arr.astype(np.float64)
    except Exception as exc:  # ragged lists, strings in object arrays and the like
        raise ParameterError(f"{name} must be a 2-D array of numbers: {exc}") from None
    if arr.dtype.kind == "c":
        raise ParameterError(
            f"Complex data not supported: {name} is complex; pass a magnitude (np.abs) "
            "or power spectrogram"
        )
    if arr.dtype.kind not in "fiub":
        raise ParameterError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise ParameterError(
            f"{name} must be 2-D (n_frames, n_bins), got shape {arr.shape}. "
            "Reshape your data, e.g. with X.reshape(1, -1) for a single row"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ParameterError(
            f"{name} is empty: {arr.shape[0]} sample(s), {arr.shape[1]} feature(s) "
            f"(shape={arr.shape}) while a minimum of 1 is required."
        )
    # min propagates NaN, and an infinity is the min or the max: two vectorised
    # reductions, no V-sized temporary
    lo, hi = arr.min(), arr.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ParameterError(f"{name} contains NaN or infinite values; clean the input first")
    if lo < 0:
        raise ParameterError(
            f"Negative values in data passed to {name} (min {lo:.3g}); NMF needs "
            "non-negative data "
            "such as a magnitude or power spectrogram"
        )
    return arr


def _check_factor(M, shape, name: str, dtype) -> np.ndarray:
    arr = check_nonnegative_matrix(M, name)
    if arr.shape != shape:
        raise fail(name, f"an array of shape {shape}", arr.shape)
    return np.array(arr, dtype=dtype, order="C", copy=True)


def default_n_threads() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def nmf(
    V,
    n_components: int | None = None,
    *,
    beta: str | float = "kullback-leibler",
    solver: str = "mu",
    init: str | None = None,
    W=None,
    H=None,
    fixed_atoms=None,
    adapt=None,
    update_H: bool = True,
    max_iter: int = 200,
    tol: float = 1e-4,
    alpha_W: float = 0.0,
    alpha_H: float | str = "same",
    l1_ratio: float = 0.0,
    normalize_atoms: bool = False,
    random_state=None,
    callback: Callable[[int, float | None], None] | None = None,
    check_every: int = 10,
    eps: float | None = None,
    n_threads: int | None = None,
    warn: bool = True,
) -> NMFResult:
    """Factorize ``V ≈ W @ H`` under a β-divergence.

    Parameters
    ----------
    V : array-like [shape=(n_frames, n_bins)], non-negative
        Data, e.g. a magnitude (KL) or power (IS) spectrogram with one row per
        frame. Never modified. float32 stays float32.
    n_components : int, optional
        Total number of atoms k (fixed ones included). Default: the number of
        fixed atoms if ``fixed_atoms`` is given, else ``n_bins``.
    beta : {"kullback-leibler", "itakura-saito", "frobenius"} or float
        The β-divergence.
    solver : {"mu", "amu", "cd"}, default="mu"
        See the module documentation.
    init : {"random", "nndsvd", "nndsvda", "nndsvdar", "custom"}, optional
        Initialisation of the free factors. Default as scikit-learn:
        ``"nndsvda"`` if ``k <= min(V.shape)``, else ``"random"``. With
        ``"custom"``, W and H are used as given (copied).
    W : array-like [shape=(n_frames, k)], optional
        Initial activations (``init="custom"``).
    H : array-like [shape=(k, n_bins)], optional
        Initial atoms (``init="custom"``), or the fixed atoms when
        ``update_H=False``.
    fixed_atoms : array-like [shape=(k_fixed, n_bins)], optional
        Atoms held fixed (a dictionary). They become the first ``k_fixed`` rows
        of H and stay bit-identical; the remaining ``k - k_fixed`` atoms are
        learned (semi-supervised NMF). ``n_components == k_fixed`` is fully
        supervised.
    adapt : None, float or array-like [shape=(k_fixed,)], optional
        Let the fixed atoms move towards the data under the penalty
        ``mu_k * sum_t W_tk * D_KL(H0_k || H_k)`` that keeps each near its learned
        value H0_k (:mod:`nmfsep._adapt`; Kullback-Leibler, solver ``"mu"`` or
        ``"amu"``). One μ for every fixed atom or one per atom; None or ``inf``
        keeps an atom fixed (bit for bit), 0 makes it a free atom that starts
        from its learned value.
    update_H : bool, default=True
        False holds all of H fixed and solves for W only (scikit-learn's
        ``transform``).
    max_iter : int, default=200
        Maximum number of iterations.
    tol : float, default=1e-4
        Stop when ``(e_prev - e) / e_init < tol`` at a check, with
        ``e = sqrt(2 D)`` (scikit-learn's rule). 0 runs ``max_iter`` iterations.
    alpha_W, alpha_H, l1_ratio : float
        Regularisation, scaled as in scikit-learn (``alpha_H="same"`` copies
        ``alpha_W``).
    normalize_atoms : bool, default=False
        Use unit-norm atoms inside the objective (sparse NMF done right). The
        returned learned atoms have unit L2 norm.
    random_state : None, int or generator
        Seed for the initialisation; the same seed gives bit-identical results.
    callback : callable(iteration, loss or None), optional
        Called after every iteration; ``loss`` is the objective at check
        iterations and None otherwise. Use it for progress bars.
    check_every : int, default=10
        Iterations between loss checks (1 records the loss every iteration).
    eps : float, optional
        Floor for V when β ≤ 0. Default ``EPSILON * max(V)``.
    n_threads : int, optional
        Worker threads for the blocked updates (default: usable cores).
    warn : bool, default=True
        Emit a :class:`ConvergenceWarning` when ``max_iter`` is reached.

    Returns
    -------
    NMFResult
        W, H, iterations, loss history and diagnostics.

    Raises
    ------
    ParameterError
        For invalid data or parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from nmfsep import nmf
    >>> rng = np.random.default_rng(0)
    >>> V = rng.random((100, 2)) @ rng.random((2, 30))
    >>> res = nmf(V, 2, beta="kullback-leibler", random_state=0, max_iter=500)
    >>> res.W.shape, res.H.shape
    ((100, 2), (2, 30))
    >>> bool(res.reconstruction_err < 1e-2 * np.linalg.norm(V))
    True
    """
    V = check_nonnegative_matrix(V, "V")
    _check_scale(V)
    n_frames, n_bins = V.shape
    beta_f = beta_loss_to_float(beta, "beta")
    _check_solver(solver, beta_f)
    max_iter = check_int(max_iter, "max_iter", 0)
    check_every = check_int(check_every, "check_every", 1)
    tol = check_real(tol, "tol")
    alpha_W, alpha_H, l1_ratio = _check_penalties(alpha_W, alpha_H, l1_ratio)
    if n_threads is None:
        n_threads = default_n_threads()
    n_threads = check_int(n_threads, "n_threads", 1)
    check_random_state(random_state)  # validate early, even when no randomness is used
    Hfix = _check_fixed_atoms(fixed_atoms, n_bins)
    adaptation = check_adapt(adapt, Hfix, beta=beta_f, solver=solver, update_H=update_H)
    k = _n_components(n_components, Hfix, H, n_bins)
    W0, H0, fixed = _initial_factors(V, k, init, W, H, Hfix, update_H, random_state)
    v_floor = _v_floor(V, beta_f, eps)
    reg = _scaled_penalties(alpha_W, alpha_H, l1_ratio, n_frames, n_bins)
    if normalize_atoms:
        if alpha_H > 0 and (update_H and not fixed.all()):
            raise ParameterError(
                "alpha_H has no effect with normalize_atoms=True (atoms have unit norm); "
                "set alpha_H=0 and regularise W only"
            )
        _normalize_start(W0, H0, fixed)
    solver_fn = _cd.fit_cd if solver == "cd" else functools.partial(_fit_mu, adapt=adaptation)
    Vw = np.ascontiguousarray(V)  # no copy for C-ordered input: V is read block by block
    with warnings.catch_warnings():
        # overflow is reported once, below, as one ParameterError (the filters are
        # process-wide, so they also cover the pool's threads)
        warnings.filterwarnings("ignore", "overflow|invalid value", RuntimeWarning)
        W_out, H_out, n_iter, losses, its, converged, div = _solve(
            solver_fn, Vw, W0, H0, n_threads=n_threads, beta=beta_f, fixed=fixed, reg=reg,
            normalize_atoms=normalize_atoms, max_iter=max_iter, tol=tol,
            check_every=check_every, callback=callback, adaptive=solver == "amu",
            v_floor=v_floor,
        )
    _check_finite_result(W_out, H_out, beta_f, V)
    if warn and not converged and tol > 0 and max_iter > 0:
        warnings.warn(
            f"Maximum number of iterations {max_iter} reached. Increase it to improve "
            f"convergence (max_iter={max_iter}, tol={tol})",
            convergence_warning_category(),
            stacklevel=2,
        )
    return NMFResult(
        W=W_out,
        H=H_out,
        n_iter=n_iter,
        loss_history=np.asarray(losses, dtype=np.float64),
        loss_iterations=np.asarray(its, dtype=np.int64),
        reconstruction_err=float(np.sqrt(2 * max(div, 0.0))),
        converged=converged,
        beta=beta_f,
        solver=solver,
        fixed=fixed,
    )


def starting_factors(
    V,
    n_components: int | None = None,
    *,
    init: str | None = None,
    W=None,
    H=None,
    fixed_atoms=None,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the factors :func:`nmf` starts from, without evaluating their divergence.

    The same ``W`` and ``H`` as ``nmf(V, n_components, ..., max_iter=0)`` (which also
    evaluates the starting loss: a pass over V that a caller wanting only a starting
    point, e.g. :func:`nmfsep.ntf.ntf`'s, does not need).

    Parameters
    ----------
    V : array-like [shape=(n_frames, n_bins)], non-negative
    n_components, init, W, H, fixed_atoms, random_state
        As for :func:`nmf`.

    Returns
    -------
    W : np.ndarray [shape=(n_frames, k)], dtype of V (float32 or float64)
    H : np.ndarray [shape=(k, n_bins)]; fixed atoms first

    Raises
    ------
    ParameterError
        As :func:`nmf`, for the arguments it takes.
    """
    V = check_nonnegative_matrix(V, "V")
    _check_scale(V)
    check_random_state(random_state)
    Hfix = _check_fixed_atoms(fixed_atoms, V.shape[1])
    k = _n_components(n_components, Hfix, H, V.shape[1])
    W0, H0, _ = _initial_factors(V, k, init, W, H, Hfix, True, random_state)
    return W0, H0


#: Largest value of V accepted: beyond it float32 products (W H, its powers) overflow.
V_MAX = 1e18


def _check_scale(V: np.ndarray) -> None:
    """Refuse V so large that float32 arithmetic overflows (before any work)."""
    top = float(V.max()) if V.size else 0.0
    if top > V_MAX:
        raise ParameterError(
            f"V's largest value {top:.3g} is more than {V_MAX:.0e}: float32 products would "
            "overflow; scale V down first (nmf(V / V.max(), ...)); the factorization "
            "scales with it"
        )


def _check_finite_result(W: np.ndarray, H: np.ndarray, beta: float, V: np.ndarray) -> None:
    """Raise one clear error when the iterations overflowed (extreme beta or values)."""
    if np.isfinite(W).all() and np.isfinite(H).all():
        return
    raise ParameterError(
        f"the factorization overflowed {W.dtype} arithmetic with beta={beta:g} (values "
        f"of V up to {float(V.max()):.3g}); use a beta between -1 and 3 or scale V "
        "towards 1"
    )


def _check_solver(solver: str, beta: float) -> None:
    """Refuse an unknown solver, and ``"cd"`` for a β other than 1 or 2."""
    check_choice(solver, "solver", SOLVERS)
    if solver == "cd" and beta not in (1.0, 2.0):
        raise ParameterError(
            f"solver='cd' supports beta 2 (Frobenius) and 1 (Kullback-Leibler), got beta={beta}; "
            "use solver='mu' or 'amu'"
        )


def _check_penalties(alpha_W, alpha_H, l1_ratio) -> tuple[float, float, float]:
    """Return ``alpha_W``, ``alpha_H`` (``"same"`` resolved) and ``l1_ratio``, checked.

    Returns
    -------
    alpha_W, alpha_H, l1_ratio : float
        Non-negative; ``l1_ratio`` in [0, 1].
    """
    alpha_W = check_real(alpha_W, "alpha_W")
    alpha_H = alpha_W if isinstance(alpha_H, str) and alpha_H == "same" else alpha_H
    alpha_H = check_real(alpha_H, "alpha_H")
    l1_ratio = check_real(l1_ratio, "l1_ratio", 0.0, 1.0)
    return alpha_W, alpha_H, l1_ratio


def _scaled_penalties(alpha_W: float, alpha_H: float, l1_ratio: float, n_frames: int,
                      n_bins: int) -> dict[str, float]:
    """Return the penalty weights ``l1_W, l2_W, l1_H, l2_H`` scaled as in scikit-learn."""
    return dict(
        l1_W=alpha_W * l1_ratio * n_bins,
        l2_W=alpha_W * (1.0 - l1_ratio) * n_bins,
        l1_H=alpha_H * l1_ratio * n_frames,
        l2_H=alpha_H * (1.0 - l1_ratio) * n_frames,
    )


def _check_fixed_atoms(fixed_atoms, n_bins: int) -> np.ndarray | None:
    """Return the fixed atoms ``(k_fixed, n_bins)`` checked against V's bins, or None."""
    if fixed_atoms is None:
        return None
    Hfix = check_nonnegative_matrix(fixed_atoms, "fixed_atoms")
    if Hfix.shape[1] != n_bins:
        raise ParameterError(
            f"fixed_atoms have {Hfix.shape[1]} bins but V has {n_bins}; "
            "they must come from the same STFT settings"
        )
    return Hfix


def _n_components(n_components, Hfix: np.ndarray | None, H, n_bins: int) -> int:
    """Return the total number of atoms k (fixed ones included), checked.

    The default is the number of fixed atoms, else the rows of ``H``, else ``n_bins``.
    """
    k_fixed = 0 if Hfix is None else Hfix.shape[0]
    if n_components is None:
        if k_fixed:
            n_components = k_fixed
        elif H is not None:
            n_components = np.shape(H)[0]
        else:
            n_components = n_bins
    k = check_int(n_components, "n_components", 1)
    if k < k_fixed:
        raise ParameterError(
            f"n_components={k} is smaller than the {k_fixed} fixed atoms; "
            "n_components counts fixed and free atoms"
        )
    return k


def _initial_factors(
    V: np.ndarray, k: int, init, W, H, Hfix: np.ndarray | None, update_H: bool, random_state,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the starting factors and which atoms are fixed.

    Returns
    -------
    W0 : np.ndarray [shape=(n_frames, k)], C-contiguous, dtype of V
    H0 : np.ndarray [shape=(k, n_bins)], C-contiguous, dtype of V; fixed atoms first
    fixed : np.ndarray of bool [shape=(k,)]
    """
    if init is not None:
        check_choice(init, "init", (*INIT_METHODS, "custom"))
    (n_frames, n_bins), dtype = V.shape, V.dtype
    k_fixed = 0 if Hfix is None else Hfix.shape[0]
    fixed = np.zeros(k, dtype=bool)
    if not update_H:
        if H is None and Hfix is None:
            raise ParameterError("update_H=False needs the atoms H (or fixed_atoms)")
        H0 = _check_factor(Hfix if H is None else H, (k, n_bins), "H", dtype)
        fixed[:] = True
        if W is not None and init == "custom":
            W0 = _check_factor(W, (n_frames, k), "W", dtype)
        else:
            W0 = np.full((n_frames, k), np.sqrt(V.mean() / k), dtype=dtype)
    elif init == "custom":
        if W is None or H is None:
            raise ParameterError("init='custom' needs both W and H")
        W0 = _check_factor(W, (n_frames, k), "W", dtype)
        H0 = _check_factor(H, (k, n_bins), "H", dtype)
        if Hfix is not None:
            H0[:k_fixed] = Hfix.astype(dtype, copy=False)
            fixed[:k_fixed] = True
    elif Hfix is not None and k_fixed:
        rng = check_random_state(random_state)
        avg = np.sqrt(V.mean() / k)
        W0 = np.full((n_frames, k), avg, dtype=dtype)
        H0 = np.empty((k, n_bins), dtype=dtype)
        H0[:k_fixed] = Hfix.astype(dtype, copy=False)
        H0[k_fixed:] = avg * np.abs(rng.standard_normal((k - k_fixed, n_bins)))
        fixed[:k_fixed] = True
    else:
        if W is not None or H is not None:
            raise ParameterError("W and H are only used with init='custom'")
        method = init
        if method is None:
            method = "nndsvda" if k <= min(n_frames, n_bins) else "random"
        with blas_single_thread(enabled=True):  # small QR/SVDs: threads only oversubscribe
            W0, H0 = initialize(V, k, method, random_state=random_state)
    return np.ascontiguousarray(W0), np.ascontiguousarray(H0), fixed


def _v_floor(V: np.ndarray, beta: float, eps: float | None) -> float:
    """Return the floor of V for β ≤ 0 (0.0: none needed, for β > 0 or no entry below it)."""
    if beta > 0:
        return 0.0
    v_floor = check_real(eps, "eps") if eps is not None else EPSILON * float(V.max())
    v_floor = v_floor if v_floor > 0 else EPSILON
    return 0.0 if V.min() >= v_floor else v_floor


def _normalize_start(W0: np.ndarray, H0: np.ndarray, fixed: np.ndarray) -> None:
    """Scale the free atoms of ``H0`` to unit L2 norm and ``W0`` to match (in place)."""
    norms = np.linalg.norm(H0[~fixed], axis=1)
    norms[norms == 0] = 1
    H0[~fixed] /= norms[:, None]
    W0[:, ~fixed] *= norms[None, :].astype(W0.dtype)


def _solve(solver_fn: Callable, V: np.ndarray, W0: np.ndarray, H0: np.ndarray, *,
           n_threads: int, **options) -> tuple:
    """Run ``solver_fn`` with single-threaded BLAS and, for long V, a pool of threads.

    Returns
    -------
    tuple
        ``(W, H, n_iter, losses, iterations, converged, divergence)``, the divergence
        of the final factors evaluated here when the solver did not.
    """
    with ExitStack() as stack:
        pool = None
        if n_threads > 1 and V.shape[0] >= 256:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=n_threads))
        # BLAS single-threaded always: our own threads share the rows, and on small
        # inputs BLAS threads only oversubscribe a busy machine
        stack.enter_context(blas_single_thread(enabled=True))
        W, H, n_iter, losses, its, converged, div = solver_fn(
            V, W0, H0, pool=pool, n_threads=n_threads, **options
        )
        if div is None:  # the solver did not evaluate the final factors
            div = divergence_blocked(
                V, W, H, options["beta"], pool=pool, n_parts=N_PARTS, block_rows=256,
                v_floor=options["v_floor"], fused=use_kernel(V.shape[0], V.shape[1], H.shape[0]),
            )
    return W, H, n_iter, losses, its, converged, div


_BLAS_CONTROLLER: tuple[int, object] | None = None


def _blas_controller():
    """Return the loaded BLAS libraries as threadpoolctl sees them, cached per process.

    Looking the libraries up costs about 2 ms (a scan of every loaded shared object),
    more than a whole short fit spends elsewhere; it is done again only when modules
    have been imported since (the only way a new BLAS gets loaded in practice).
    """
    global _BLAS_CONTROLLER
    from threadpoolctl import ThreadpoolController

    n_modules = len(sys.modules)
    cached = _BLAS_CONTROLLER
    if cached is None or cached[0] != n_modules:
        cached = (n_modules, ThreadpoolController())
        _BLAS_CONTROLLER = cached
    return cached[1]


class blas_single_thread:
    """Limit BLAS to one thread while our own threads share the work (a context manager).

    Parameters
    ----------
    enabled : bool
        False makes it do nothing.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._ctl = None

    def __enter__(self):
        if self.enabled:
            self._ctl = _blas_controller().limit(limits=1, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self._ctl is not None:
            self._ctl.restore_original_limits()
        return False


def _update_H(H, free, num, den, beta, exponent, reg, normalize_atoms) -> None:
    """Apply the accumulated multiplicative update to the free atoms, in place.

    ``num`` (float64, the solver's scratch) is overwritten. ``free`` lists the free
    atoms, which follow the fixed ones (a slice of H, no fancy-index copies).
    """
    rows = slice(int(free[0]), int(free[-1]) + 1)
    Hf = H[rows].astype(np.float64)
    if beta == 2:
        den = den @ H.astype(np.float64)
    elif beta == 1:  # one denominator per atom: (k_free, 1), broadcast below
        den = np.where(den == 0, 1.0, den)
    if normalize_atoms:
        # Le Roux, Weninger & Hershey (2015), eq. for the dictionary with unit-norm atoms.
        num_c = num + Hf * np.sum(Hf * den, axis=1, keepdims=True)
        den_c = den + Hf * np.sum(Hf * num, axis=1, keepdims=True)
        num, den = num_c, den_c
    else:
        if reg["l1_H"] > 0:
            den = den + reg["l1_H"]
        if reg["l2_H"] > 0:
            den = den + reg["l2_H"] * Hf
    den[den == 0] = EPSILON
    ratio = np.divide(num, den, out=num)
    if exponent != 1:
        ratio **= exponent
    Hf *= ratio
    if normalize_atoms:
        norms = np.linalg.norm(Hf, axis=1, keepdims=True)
        norms[norms == 0] = 1
        Hf /= norms
    if beta <= 1:
        Hf[Hf < EPS64] = 0.0
    H[rows] = Hf


#: Over-relaxation of ``solver="amu"``: growth of the factor per accepted step, its cap.
_OMEGA_GROWTH, _OMEGA_MAX = 1.2, 4.0


class _MUSteps:
    """One fit's multiplicative updates and objective, with the divergences evaluated.

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, n_bins)]
        Data, C-contiguous.
    beta : float
        The β of the divergence.
    fixed : np.ndarray of bool [shape=(k,)]
        Fixed atoms, which come first.
    reg : dict
        Scaled penalty weights ``l1_W, l2_W, l1_H, l2_H``.
    normalize_atoms : bool
        Unit-norm atoms inside the objective.
    pool : Executor or None
        Threads sharing the blocks of rows.
    v_floor : float
        Floor of V for β ≤ 0 (0: none).
    adapt : Adaptation or None
        Fixed atoms that move under a penalty (:mod:`nmfsep._adapt`).
    """

    def __init__(self, V, beta, fixed, reg, normalize_atoms, pool, v_floor,
                 adapt: Adaptation | None = None):
        self.V, self.beta, self.fixed, self.reg = V, beta, fixed, reg
        self.normalize_atoms, self.pool, self.v_floor = normalize_atoms, pool, v_floor
        self.free = np.flatnonzero(~fixed)
        assert not self.free.size or not fixed[self.free[0]:].any(), "fixed atoms come first"
        self.adapt = adapt
        # atoms whose update terms are accumulated: the adapted ones, then the free ones
        moving = self.free if adapt is None else np.concatenate([adapt.rows, self.free])
        self.n_adapt = 0 if adapt is None else adapt.rows.size
        self.update_H = moving.size > 0
        self.free_idx = None if moving.size == fixed.shape[0] else moving
        self.block_rows = max(16, min(256, 131072 // max(V.shape[1], 1)))
        # compiled kernels or numpy, by the problem's size alone (reproducible results)
        self.fused = use_kernel(V.shape[0], V.shape[1], fixed.shape[0])
        self.evaluated: dict[int, float] = {}  # iteration -> divergence of its factors
        self.split: SplitAtoms | None = None  # all atoms fixed: H split once (_sparse)
        self.split_checked = self.update_H

    def split_of(self, H: np.ndarray) -> SplitAtoms | None:
        """Return the fixed atoms split into dense and sparse parts, or None (dense path)."""
        if not self.split_checked:  # H never changes when no atom moves
            self.split = split_atoms(H, self.beta)
            self.split_checked = True
        return self.split

    def objective(self, W: np.ndarray, H: np.ndarray, n_iter: int) -> tuple[float, float]:
        """Return the divergence and the objective of ``W @ H`` (recorded for ``n_iter``)."""
        split = self.split_of(H)
        if split is not None:
            d = divergence_split(self.V, W, split, self.beta, pool=self.pool,
                                 n_parts=N_PARTS, v_floor=self.v_floor, fused=self.fused)
        else:
            d = divergence_blocked(self.V, W, H, self.beta, pool=self.pool, n_parts=N_PARTS,
                                   block_rows=256, v_floor=self.v_floor, fused=self.fused)
        self.evaluated[n_iter] = d
        obj = d + penalties(W, H, self.fixed, self.reg)
        if self.adapt is not None:
            obj += adapt_penalty(self.adapt, W, H)
        return d, obj

    def step(self, W: np.ndarray, H: np.ndarray, exponent: float) -> None:
        """Update W, then the free atoms of H, in place, with MU exponent ``exponent``."""
        reg = self.reg
        extra = None if self.adapt is None else w_penalty(self.adapt, H)
        s = MUSettings(beta=self.beta, exponent=exponent, l1_W=reg["l1_W"], l2_W=reg["l2_W"],
                       block_rows=self.block_rows, v_floor=self.v_floor, fused=self.fused,
                       l1_W_atoms=extra)
        split = self.split_of(H)
        if split is not None:
            mu_pass_split(self.V, W, split, s, pool=self.pool, n_parts=N_PARTS)
            return
        acc = mu_pass(self.V, W, H, s, update_W=True, update_H=self.update_H,
                      free=self.free_idx, pool=self.pool, n_parts=N_PARTS)
        if acc is None:  # update_H is False: only W was updated
            return
        num, den, na = acc[0], acc[1], self.n_adapt
        if self.adapt is not None:
            adapt_rows(self.adapt, H, num[:na], den[:na], exponent)
        if self.free.size:
            _update_H(H, self.free, num[na:], den[na:], self.beta, exponent, reg,
                      self.normalize_atoms)


def _adaptive_step(mu: _MUSteps, W: np.ndarray, H: np.ndarray, n_iter: int, gamma: float,
                   omega: float, last_obj: float) -> tuple[float, float, float]:
    """One over-relaxed step (Badeau et al.), undone for a plain one if the objective grows.

    Returns
    -------
    div, obj : float
        Divergence and objective after the step.
    omega : float
        The over-relaxation factor for the next step.
    """
    W_prev, H_prev = W.copy(), H.copy()
    mu.step(W, H, gamma * omega)
    div, obj = mu.objective(W, H, n_iter)
    if obj > last_obj and omega > 1:
        W[...] = W_prev
        H[...] = H_prev
        mu.step(W, H, gamma)
        div, obj = mu.objective(W, H, n_iter)
        return div, obj, 1.0
    return div, obj, min(omega * _OMEGA_GROWTH, _OMEGA_MAX)


def _fit_mu(V, W, H, *, beta, fixed, reg, normalize_atoms, max_iter, tol, check_every,
            callback, pool, n_threads, adaptive, v_floor, adapt=None):
    """Multiplicative updates (``adaptive`` = Badeau et al. over-relaxation)."""
    gamma = mu_exponent(beta)
    mu = _MUSteps(V, beta, fixed, reg, normalize_atoms, pool, v_floor, adapt)
    n_iter = 0
    div0, obj0 = mu.objective(W, H, n_iter)
    error_at_init = np.sqrt(2 * max(div0, 0.0))
    previous_error = error_at_init
    losses, its = [obj0], [0]
    converged = False
    omega = 1.0
    last_obj = obj0
    for n_iter in range(1, max_iter + 1):
        loss_now = None
        if adaptive:
            div, obj, omega = _adaptive_step(mu, W, H, n_iter, gamma, omega, last_obj)
            last_obj = obj
        else:
            mu.step(W, H, gamma)
        check = n_iter % check_every == 0 or n_iter == max_iter
        if check:
            if not adaptive:
                div, obj = mu.objective(W, H, n_iter)
            losses.append(obj)
            its.append(n_iter)
            loss_now = obj
        if callback is not None:
            callback(n_iter, loss_now)
        # scikit-learn's stopping rule, every 10 iterations
        if tol > 0 and n_iter % 10 == 0:
            if not check and not adaptive:
                div, _ = mu.objective(W, H, n_iter)
            error = np.sqrt(2 * max(div, 0.0))
            if error_at_init == 0 or (previous_error - error) / error_at_init < tol:
                converged = True
                break
            previous_error = error
    if converged and its[-1] != n_iter:
        losses.append(mu.objective(W, H, n_iter)[1])
        its.append(n_iter)
    return W, H, n_iter, losses, its, converged, mu.evaluated.get(n_iter)
