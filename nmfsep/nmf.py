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

Zeros
-----
For β > 0 zeros in V are fine. For β ≤ 0 (Itakura-Saito and below) the
divergence is undefined at ``V = 0``; nmfsep replaces every entry of V below
``eps`` by ``eps`` (default ``EPSILON * max(V)``, a floor 138 dB below the
peak), so spectrograms with digital silence work. scikit-learn raises instead.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from . import _cd
from ._checks import check_int as _check_int
from ._checks import check_real as _check_real
from ._mu import EPS64, N_PARTS, MUSettings, divergence_blocked, mu_exponent, mu_pass
from .divergence import EPSILON, beta_loss_to_float
from .exceptions import ConvergenceWarning, ParameterError
from .init import INIT_METHODS, check_random_state, initialize

__all__ = ["NMFResult", "nmf", "SOLVERS", "check_nonnegative_matrix", "blas_single_thread"]

SOLVERS = ("mu", "amu", "cd")


@dataclass(frozen=True)
class NMFResult:
    """What :func:`nmf` found.

    Attributes
    ----------
    W : np.ndarray [shape=(n_frames, k)]
        Activations.
    H : np.ndarray [shape=(k, n_bins)]
        Spectral atoms; fixed atoms are bit-identical to those given.
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
        raise ParameterError(f"{name} must have shape {shape}, got {arr.shape}")
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
    n_frames, n_bins = V.shape
    dtype = V.dtype
    beta_f = beta_loss_to_float(beta)
    if solver not in SOLVERS:
        raise ParameterError(f"solver={solver!r} is not known; use one of {SOLVERS}")
    if solver == "cd" and beta_f not in (1.0, 2.0):
        raise ParameterError(
            f"solver='cd' supports beta 2 (Frobenius) and 1 (Kullback-Leibler), got beta={beta_f}; "
            "use solver='mu' or 'amu'"
        )
    max_iter = _check_int(max_iter, "max_iter", 0)
    check_every = _check_int(check_every, "check_every", 1)
    tol = _check_real(tol, "tol")
    alpha_W = _check_real(alpha_W, "alpha_W")
    alpha_H = alpha_W if isinstance(alpha_H, str) and alpha_H == "same" else alpha_H
    alpha_H = _check_real(alpha_H, "alpha_H")
    l1_ratio = _check_real(l1_ratio, "l1_ratio")
    if l1_ratio > 1:
        raise ParameterError(f"l1_ratio must be in [0, 1], got {l1_ratio}")
    if n_threads is None:
        n_threads = default_n_threads()
    n_threads = _check_int(n_threads, "n_threads", 1)
    check_random_state(random_state)  # validate early, even when no randomness is used

    # --- which atoms are fixed ------------------------------------------------
    k_fixed = 0
    Hfix = None
    if fixed_atoms is not None:
        Hfix = check_nonnegative_matrix(fixed_atoms, "fixed_atoms")
        if Hfix.shape[1] != n_bins:
            raise ParameterError(
                f"fixed_atoms have {Hfix.shape[1]} bins but V has {n_bins}; "
                "they must come from the same STFT settings"
            )
        k_fixed = Hfix.shape[0]
    if n_components is None:
        if k_fixed:
            n_components = k_fixed
        elif H is not None:
            n_components = np.shape(H)[0]
        else:
            n_components = n_bins
    k = _check_int(n_components, "n_components", 1)
    if k < k_fixed:
        raise ParameterError(
            f"n_components={k} is smaller than the {k_fixed} fixed atoms; "
            "n_components counts fixed and free atoms"
        )

    # --- initialisation ---------------------------------------------------------
    if init is not None and init != "custom" and init not in INIT_METHODS:
        raise ParameterError(f"init={init!r} is not known; use one of {INIT_METHODS} or 'custom'")
    if not update_H:
        if H is None and Hfix is None:
            raise ParameterError("update_H=False needs the atoms H (or fixed_atoms)")
        Hm = Hfix if H is None else H
        H0 = _check_factor(Hm, (k, n_bins), "H", dtype)
        fixed = np.ones(k, dtype=bool)
        if W is not None and init == "custom":
            W0 = _check_factor(W, (n_frames, k), "W", dtype)
        else:
            W0 = np.full((n_frames, k), np.sqrt(V.mean() / k), dtype=dtype)
    elif init == "custom":
        if W is None or H is None:
            raise ParameterError("init='custom' needs both W and H")
        W0 = _check_factor(W, (n_frames, k), "W", dtype)
        H0 = _check_factor(H, (k, n_bins), "H", dtype)
        fixed = np.zeros(k, dtype=bool)
        if Hfix is not None:
            H0[:k_fixed] = Hfix.astype(dtype, copy=False)
            fixed[:k_fixed] = True
    elif k_fixed:
        rng = check_random_state(random_state)
        avg = np.sqrt(V.mean() / k)
        W0 = np.full((n_frames, k), avg, dtype=dtype)
        H0 = np.empty((k, n_bins), dtype=dtype)
        H0[:k_fixed] = Hfix.astype(dtype, copy=False)
        H0[k_fixed:] = avg * np.abs(rng.standard_normal((k - k_fixed, n_bins)))
        fixed = np.zeros(k, dtype=bool)
        fixed[:k_fixed] = True
    else:
        if W is not None or H is not None:
            raise ParameterError("W and H are only used with init='custom'")
        method = init
        if method is None:
            method = "nndsvda" if k <= min(n_frames, n_bins) else "random"
        with blas_single_thread(enabled=True):  # small QR/SVDs: threads only oversubscribe
            W0, H0 = initialize(V, k, method, random_state=random_state)
        fixed = np.zeros(k, dtype=bool)
    W0 = np.ascontiguousarray(W0)
    H0 = np.ascontiguousarray(H0)

    # --- zeros for beta <= 0 -----------------------------------------------------
    Vw = np.ascontiguousarray(V)  # no copy for C-ordered input: V is read block by block
    v_floor = 0.0
    if beta_f <= 0:
        v_floor = _check_real(eps, "eps") if eps is not None else EPSILON * float(V.max())
        v_floor = v_floor if v_floor > 0 else EPSILON
        if V.min() >= v_floor:
            v_floor = 0.0

    reg = dict(
        l1_W=alpha_W * l1_ratio * n_bins,
        l2_W=alpha_W * (1.0 - l1_ratio) * n_bins,
        l1_H=alpha_H * l1_ratio * n_frames,
        l2_H=alpha_H * (1.0 - l1_ratio) * n_frames,
    )
    if normalize_atoms:
        if alpha_H > 0 and (update_H and not fixed.all()):
            raise ParameterError(
                "alpha_H has no effect with normalize_atoms=True (atoms have unit norm); "
                "set alpha_H=0 and regularise W only"
            )
        norms = np.linalg.norm(H0[~fixed], axis=1)
        norms[norms == 0] = 1
        H0[~fixed] /= norms[:, None]
        W0[:, ~fixed] *= norms[None, :].astype(dtype)

    solver_fn = _cd.fit_cd if solver == "cd" else _fit_mu
    with ExitStack() as stack:
        pool = None
        if n_threads > 1 and n_frames >= 256:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=n_threads))
        # BLAS single-threaded always: our own threads share the rows, and on small
        # inputs BLAS threads only oversubscribe a busy machine
        stack.enter_context(blas_single_thread(enabled=True))
        W_out, H_out, n_iter, losses, its, converged, div = solver_fn(
            Vw,
            W0,
            H0,
            beta=beta_f,
            fixed=fixed,
            reg=reg,
            normalize_atoms=normalize_atoms,
            max_iter=max_iter,
            tol=tol,
            check_every=check_every,
            callback=callback,
            pool=pool,
            n_threads=n_threads,
            adaptive=solver == "amu",
            v_floor=v_floor,
        )
        if div is None:  # the solver did not evaluate the final factors
            div = divergence_blocked(
                Vw, W_out, H_out, beta_f, pool=pool, n_parts=N_PARTS, block_rows=256,
                v_floor=v_floor,
            )
    if warn and not converged and tol > 0 and max_iter > 0:
        warnings.warn(
            f"nmf reached max_iter={max_iter} before tol={tol}; increase max_iter "
            "or tol to converge",
            ConvergenceWarning,
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


def penalties(W: np.ndarray, H: np.ndarray, fixed: np.ndarray, reg: dict) -> float:
    """Regularisation terms of the objective (fixed atoms are not penalised)."""
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


def _fit_mu(V, W, H, *, beta, fixed, reg, normalize_atoms, max_iter, tol, check_every,
            callback, pool, n_threads, adaptive, v_floor):
    """Multiplicative updates (``adaptive`` = Badeau et al. over-relaxation)."""
    gamma = mu_exponent(beta)
    free = np.flatnonzero(~fixed)
    assert not free.size or not fixed[free[0]:].any(), "fixed atoms come first"
    update_H = free.size > 0
    free_idx = None if free.size == H.shape[0] else free
    block_rows = max(16, min(256, 131072 // max(V.shape[1], 1)))

    evaluated = {}  # iteration -> divergence of the factors at that iteration

    def objective(W_, H_):
        d = divergence_blocked(V, W_, H_, beta, pool=pool, n_parts=N_PARTS, block_rows=256,
                               v_floor=v_floor)
        evaluated[n_iter] = d
        return d, d + penalties(W_, H_, fixed, reg)

    def step(W_, H_, exponent):
        s = MUSettings(beta=beta, exponent=exponent, l1_W=reg["l1_W"], l2_W=reg["l2_W"],
                       block_rows=block_rows, v_floor=v_floor)
        acc = mu_pass(V, W_, H_, s, update_W=True, update_H=update_H, free=free_idx,
                      pool=pool, n_parts=N_PARTS)
        if update_H:
            _update_H(H_, free, acc[0], acc[1], beta, exponent, reg, normalize_atoms)

    n_iter = 0
    div0, obj0 = objective(W, H)
    error_at_init = np.sqrt(2 * max(div0, 0.0))
    previous_error = error_at_init
    losses, its = [obj0], [0]
    converged = False
    omega, omega_growth, omega_max = 1.0, 1.2, 4.0
    last_obj = obj0
    for n_iter in range(1, max_iter + 1):
        loss_now = None
        if adaptive:
            W_prev, H_prev = W.copy(), H.copy()
            step(W, H, gamma * omega)
            div, obj = objective(W, H)
            if obj > last_obj and omega > 1:
                W[...] = W_prev
                H[...] = H_prev
                omega = 1.0
                step(W, H, gamma)
                div, obj = objective(W, H)
            else:
                omega = min(omega * omega_growth, omega_max)
            last_obj = obj
        else:
            step(W, H, gamma)
        check = n_iter % check_every == 0 or n_iter == max_iter
        if check:
            if not adaptive:
                div, obj = objective(W, H)
            losses.append(obj)
            its.append(n_iter)
            loss_now = obj
        if callback is not None:
            callback(n_iter, loss_now)
        # scikit-learn's stopping rule, every 10 iterations
        if tol > 0 and n_iter % 10 == 0:
            if not check and not adaptive:
                div, _ = objective(W, H)
            error = np.sqrt(2 * max(div, 0.0))
            if error_at_init > 0 and (previous_error - error) / error_at_init < tol:
                converged = True
                break
            if error_at_init == 0:
                converged = True
                break
            previous_error = error
    if converged and its[-1] != n_iter:
        losses.append(objective(W, H)[1])
        its.append(n_iter)
    return W, H, n_iter, losses, its, converged, evaluated.get(n_iter)
