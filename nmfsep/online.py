"""Online (mini-batch) β-NMF: learn atoms from a stream of spectrogram blocks.

The atoms H ``(k, n_bins)`` are learned from blocks ``V_b`` ``(n_frames_b, n_bins)``
that arrive one at a time (a generator reading a long recording in chunks), in
memory that does not grow with the length of the stream. The scheme is that of
Lefèvre, Bach & Févotte (2011, "Online algorithms for nonnegative matrix
factorization with the Itakura-Saito divergence", WASPAA), written for any β as
in scikit-learn's ``MiniBatchNMF``:

1. solve the activations ``W_b`` of the block with H fixed (``n_inner``
   multiplicative updates, see "Start of the activations" below);
2. add the block's share of the multiplicative update of H to two accumulated
   statistics, after fading the old ones by ``ρ_b``::

       A <- ρ_b A + H^(1/γ) ⊙ N_b,    B <- ρ_b B + D_b,    H <- (A / B)^γ

   where ``N_b / D_b`` is the ratio of the batch MU update of H on block b
   (``N_b = W_bᵀ (V_b ⊙ (W_b H)^{β-2})``, ``D_b = W_bᵀ (W_b H)^{β-1}``) and
   ``γ = γ(β)`` the Févotte-Idier exponent. On a single block this is exactly one
   multiplicative update of H; over a stream, H is the MU ratio of the
   (exponentially weighted) sums of all blocks' numerators and denominators.

``N_b`` and ``D_b`` come from the engine's blocked kernel
(:func:`nmfsep._mu.mu_pass` with ``update_H=True``), which also performs the last
activation update of the block in the same pass over V_b.

Forgetting
----------
``forget`` is the weight that the statistics keep per ``forget_frames`` frames:
before block b of ``n_b`` frames is added, A and B are multiplied by
``ρ_b = forget ** (n_b / forget_frames)``. Tying ρ to frames rather than to
blocks makes the memory of the algorithm (about ``forget_frames / (1 - forget)``
frames) independent of how the stream is cut into blocks. ``forget=1`` keeps
everything (the running sums of Lefèvre et al. with ρ = 1); values below 1 let
later, better-informed blocks replace the statistics gathered while H was still
poor, which matters when several passes are made.

Convergence, and when to use it
-------------------------------
Each block moves H by about a ``1 - ρ`` fraction of one multiplicative update,
so a pass over ``n`` frames is worth roughly ``n (1 - forget) / forget_frames``
batch iterations: the scheme needs a stream that is long compared with its
variety (an hour of one ensemble), or several passes. When the spectrogram fits
in memory :func:`nmfsep.nmf` reaches a lower loss in the same time; use this
module when it does not. ``benchmarks/bench_online.py`` measures both.

Start of the activations
------------------------
A block's frames have never been seen (or, in a later pass, their activations
were not kept: that would grow with the stream), so ``W_b`` starts from
scikit-learn's constant ``sqrt(mean(V_b) / k)`` (the first block from the
initialisation of H when that gives activations). Warmer starts were measured
and rejected: the previous block's mean activations, scaled frame by frame to
the frame's energy, gave the same dictionaries for KL and worse ones for IS.

Memory
------
The state is ``H`` (``k × n_bins``) and the statistics ``A`` and ``B``
(``k_free × n_bins`` float64 each): about ``20 k n_bins`` bytes, 330 KiB for
k = 16 and n_fft = 2048. Processing a block allocates its activations ``W_b``
(``n_frames_b × k``), a copy of the block only when it is not C-contiguous or
not of the first block's dtype, and the kernels' scratch (at most 8 row ranges ×
``(block_rows × n_bins + 2 k n_bins)``, ``block_rows <= 256``). Nothing depends on
the number of blocks already seen, so peak memory is
``O(k × n_bins + n_frames_b × (n_bins + k))`` however long the stream (the block
itself belongs to the caller; a generator can drop it once the next one is asked for).

Differences from scikit-learn's MiniBatchNMF
--------------------------------------------
* The statistics start empty (scikit-learn starts from ``A = H_0``, ``B = 1``, a
  prior whose weight depends on the scale of the data).
* An atom that a block does not use at all (a zero denominator) is left out of
  that block's statistics instead of having 1 (KL) or ``EPSILON`` added to its
  denominator, so a stretch of digital silence does not fade the dictionary.
* ρ is tied to frames (see above) since the length of a stream is not known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from ._checks import check_callable, check_int, check_real, fail
from ._mu import EPS64, N_PARTS, MUSettings, divergence_blocked, mu_exponent, mu_pass
from .divergence import EPSILON, beta_loss_to_float
from .exceptions import ParameterError
from .init import check_random_state, initialize
from .nmf import (
    blas_single_thread,
    check_nonnegative_matrix,
    default_n_threads,
    nmf,
)

__all__ = ["OnlineNMF", "OnlineNMFResult", "online_nmf", "transform_blocks"]


def _block_rows(n_bins: int) -> int:
    """Rows of V handed to the kernel at a time (as in ``nmf``: ~512 KiB of scratch)."""
    return max(16, min(256, 131072 // max(n_bins, 1)))


#: Use worker threads only for blocks at least this long (as ``nmf`` does).
_MIN_ROWS_FOR_THREADS = 256


@dataclass(frozen=True)
class OnlineNMFResult:
    """What :func:`online_nmf` learned.

    Attributes
    ----------
    H : np.ndarray [shape=(k, n_bins)]
        Spectral atoms; fixed atoms are bit-identical to those given, then the
        learned ones. dtype of the first block.
    n_frames_seen : int
        Frames processed, summed over all passes.
    n_batches : int
        Blocks processed (each one updates H once), summed over all passes.
    loss_history : np.ndarray [shape=(n_batches,)]
        For each block, ``D_β(V_b | W_b H) / (n_frames_b * n_bins)`` with the
        block's activations solved and H as it was before the block updated it
        (scikit-learn's mini-batch cost, normalised per entry so that blocks of
        different lengths compare).
    n_passes : int
        Passes made over the data.
    beta : float
        The β of the divergence.
    fixed : np.ndarray of bool [shape=(k,)]
        Which atoms were held fixed.
    """

    H: np.ndarray
    n_frames_seen: int
    n_batches: int
    loss_history: np.ndarray
    n_passes: int
    beta: float
    fixed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def _check_block(block, n_bins: int | None, dtype, index: int) -> np.ndarray:
    """Validate one block; returns a C-contiguous array of ``dtype`` (copies only if needed)."""
    name = f"block {index}"
    arr = np.asarray(block) if not hasattr(block, "nnz") else block
    if getattr(arr, "ndim", 2) == 1:
        raise ParameterError(
            f"{name} is 1-D (shape {arr.shape}); each block must be a 2-D (n_frames, n_bins) "
            "array. To feed one matrix V in blocks pass a list of blocks, e.g. "
            "np.array_split(V, n_blocks)"
        )
    arr = check_nonnegative_matrix(arr, name)
    if n_bins is not None and arr.shape[1] != n_bins:
        raise ParameterError(
            f"{name} has {arr.shape[1]} bins but the earlier blocks (or the atoms) have "
            f"{n_bins}; every block must come from the same STFT settings"
        )
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return np.ascontiguousarray(arr)


def _check_atoms(
    n_components, fixed_atoms, H_init
) -> tuple[np.ndarray | None, np.ndarray | None, int, int | None]:
    """Check the atoms given to :class:`OnlineNMF` and settle the number of atoms.

    Parameters
    ----------
    n_components : int or None
        Total number of atoms k; default the fixed atoms', else the rows of ``H_init``.
    fixed_atoms : array-like [shape=(k_fixed, n_bins)] or None
    H_init : array-like [shape=(k, n_bins)] or None

    Returns
    -------
    Hfix : np.ndarray [shape=(k_fixed, n_bins)] or None
    H_init : np.ndarray [shape=(k, n_bins)] or None
    k : int
    n_bins : int or None
        The bins of the atoms given (None: known from the first block).
    """
    Hfix = None if fixed_atoms is None else check_nonnegative_matrix(fixed_atoms, "fixed_atoms")
    k_fixed = 0 if Hfix is None else Hfix.shape[0]
    H0 = None if H_init is None else check_nonnegative_matrix(H_init, "H_init")
    if n_components is None:
        if k_fixed:
            n_components = k_fixed
        elif H0 is not None:
            n_components = H0.shape[0]
        else:
            raise ParameterError("n_components is required without fixed_atoms or H_init")
    k = check_int(n_components, "n_components", 1)
    if k < k_fixed:
        raise ParameterError(
            f"n_components={k} is smaller than the {k_fixed} fixed atoms; "
            "n_components counts fixed and free atoms"
        )
    n_bins = None
    for M, name in ((Hfix, "fixed_atoms"), (H0, "H_init")):
        if M is not None:
            if n_bins is not None and M.shape[1] != n_bins:
                raise ParameterError(f"{name} has {M.shape[1]} bins but fixed_atoms have {n_bins}")
            n_bins = M.shape[1]
    if H0 is not None and H0.shape[0] != k:
        raise fail("H_init", f"an array of shape ({k}, n_bins)", H0.shape)
    return Hfix, H0, k, n_bins


class OnlineNMF:
    """State of an online β-NMF: atoms and accumulated statistics.

    Feed blocks with :meth:`partial_fit` (push style); :func:`online_nmf` does the
    loop over an iterable (pull style). See the module documentation for the
    algorithm, the forgetting factor and the memory used.

    Parameters
    ----------
    n_components : int, optional
        Total number of atoms k (fixed ones included). Default: the number of
        fixed atoms if ``fixed_atoms`` is given, else the rows of ``H_init``.
    beta : {"kullback-leibler", "itakura-saito", "frobenius"} or float
        The β-divergence.
    H_init : array-like [shape=(k, n_bins)], optional
        Initial atoms (copied; with ``fixed_atoms``, its first ``k_fixed`` rows
        are replaced by them). Default: from the first block, ``"nndsvda"`` if
        ``k <= min(block shape)`` else scaled random (as :func:`nmfsep.nmf`); with
        ``fixed_atoms``, the free atoms are scaled random.
    fixed_atoms : array-like [shape=(k_fixed, n_bins)], optional
        Atoms held fixed; they become the first ``k_fixed`` rows of H and stay
        bit-identical (semi-supervised NMF).
    n_inner : int, default=10
        Multiplicative updates of each block's activations before H is updated.
    forget : float in (0, 1], default=0.9
        Weight the statistics keep per ``forget_frames`` frames.
    forget_frames : int, default=256
        See ``forget``.
    normalize_atoms : bool, default=False
        Rescale every learned atom to unit L2 norm after each update (the
        statistics are rescaled to match, so only the gauge changes: the model
        ``W H`` is the same). Returned learned atoms have unit norm.
    eps : float, optional
        For β ≤ 0, entries of V below ``eps`` are read as ``eps``. Default:
        ``EPSILON`` times the largest value seen so far in the stream.
    random_state : None, int or generator
        Seed for the initialisation of H.
    n_threads : int, optional
        Worker threads for blocks of 256 frames or more (default: usable cores).
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        beta: str | float = "kullback-leibler",
        H_init=None,
        fixed_atoms=None,
        n_inner: int = 10,
        forget: float = 0.9,
        forget_frames: int = 256,
        normalize_atoms: bool = False,
        eps: float | None = None,
        random_state=None,
        n_threads: int | None = None,
    ):
        self.beta = beta_loss_to_float(beta, "beta")
        self.n_inner = check_int(n_inner, "n_inner", 1)
        self.forget = check_real(forget, "forget", 0.0, 1.0, strict=True)
        self.forget_frames = check_int(forget_frames, "forget_frames", 1)
        if not isinstance(normalize_atoms, (bool, np.bool_)):
            raise fail("normalize_atoms", "True or False", normalize_atoms)
        self.normalize_atoms = bool(normalize_atoms)
        self.eps = None if eps is None else check_real(eps, "eps")
        if n_threads is None:
            n_threads = default_n_threads()
        self.n_threads = check_int(n_threads, "n_threads", 1)
        self._rng = check_random_state(random_state)
        self.gamma = mu_exponent(self.beta)
        self._Hfix, self._H_init, self.n_components, n_bins = _check_atoms(
            n_components, fixed_atoms, H_init
        )
        k_fixed = 0 if self._Hfix is None else self._Hfix.shape[0]
        self.fixed = np.zeros(self.n_components, dtype=bool)
        self.fixed[:k_fixed] = True
        self._free = np.flatnonzero(~self.fixed)
        self.n_bins = n_bins
        self.H: np.ndarray | None = None  # (k, n_bins), dtype of the first block
        self._A: np.ndarray | None = None
        self._B: np.ndarray | None = None
        self._vmax = 0.0
        self.n_frames_seen = 0
        self.n_batches = 0
        self.losses: list[float] = []
        #: Activations ``(n_frames_b, k)`` of the last block fitted (solved with the
        #: atoms as they were before that block updated them); None before the first.
        self.last_W: np.ndarray | None = None

    # --- set-up on the first block ---------------------------------------------
    def _start(self, V: np.ndarray) -> np.ndarray | None:
        """Initialise H (and return W for the first block when the init gives one)."""
        k, dtype = self.n_components, V.dtype
        k_fixed = int(self.fixed.sum())
        W0 = None
        if self._H_init is not None:
            H = np.array(self._H_init, dtype=dtype, order="C", copy=True)
        elif k_fixed:
            avg = np.sqrt(V.mean() / k)
            H = np.empty((k, V.shape[1]), dtype=dtype)
            H[k_fixed:] = avg * np.abs(self._rng.standard_normal((k - k_fixed, V.shape[1])))
        else:
            method = "nndsvda" if k <= min(V.shape) else "random"
            W0, H = initialize(V, k, method, random_state=self._rng)
            H = np.ascontiguousarray(H, dtype=dtype)
            W0 = np.ascontiguousarray(W0, dtype=dtype)
        if self._Hfix is not None:
            H[:k_fixed] = self._Hfix.astype(dtype, copy=False)
        if self.normalize_atoms:
            norms = np.linalg.norm(H[self._free], axis=1)
            norms[norms == 0] = 1
            H[self._free] /= norms[:, None].astype(dtype)
            if W0 is not None:
                W0[:, self._free] *= norms[None, :].astype(dtype)
        self.H = H
        self.n_bins = V.shape[1]
        k_free = self._free.size
        self._A = np.zeros((k_free, self.n_bins))
        self._B = np.zeros((k_free, self.n_bins))
        return W0

    def _v_floor(self, V: np.ndarray) -> float:
        if self.beta > 0:
            return 0.0
        if self.eps is not None:
            floor = self.eps
        else:
            self._vmax = max(self._vmax, float(V.max()))
            floor = EPSILON * self._vmax
        floor = floor if floor > 0 else EPSILON
        return 0.0 if V.min() >= floor else floor

    def _init_W(self, V: np.ndarray, v_floor: float) -> np.ndarray:
        """scikit-learn's start for the activations: the constant ``sqrt(mean(V_b) / k)``."""
        k = self.n_components
        mean = float(V.mean(dtype=np.float64))
        if v_floor:
            mean = max(mean, v_floor)
        return np.full((V.shape[0], k), np.sqrt(mean / k), dtype=V.dtype)

    # --- one block ----------------------------------------------------------------
    def partial_fit(self, block) -> float:
        """Update the atoms with one block.

        Parameters
        ----------
        block : array-like [shape=(n_frames_b, n_bins)], non-negative
            One block of the spectrogram (never modified).

        Returns
        -------
        float
            The block's loss per entry, ``D_β(V_b | W_b H) / V_b.size``, with its
            activations solved and H as it was before this block updated it;
            NaN for a block that was skipped: an empty block, or digital silence
            before the atoms exist (they are initialised from the first block
            that is not all zeros; silent frames count in ``n_frames_seen``).
        """
        with ExitStack() as stack:
            pool = None
            if self.n_threads > 1 and np.shape(block)[0] >= _MIN_ROWS_FOR_THREADS:
                pool = stack.enter_context(ThreadPoolExecutor(max_workers=self.n_threads))
                stack.enter_context(blas_single_thread(enabled=True))
            return self._fit_block(block, pool)

    def _fit_block(self, block, pool) -> float:
        """One block; ``pool`` (or None) is used for blocks of 256 frames or more.

        Digital silence before the atoms exist (no ``H_init``) is skipped: the
        atoms are initialised from the first block that is not all zeros (a
        recording that starts with silence would otherwise start from empty
        atoms, which multiplicative updates never revive). Skipped frames count
        in ``n_frames_seen`` only.
        """
        if np.ndim(block) == 2 and np.shape(block)[0] == 0:
            return float("nan")  # an empty block, e.g. the tail of a chunked reader
        V = _check_block(block, self.n_bins, None if self.H is None else self.H.dtype,
                         self.n_batches)
        if self.H is None and self._H_init is None and not V.max() > 0:
            self.n_frames_seen += V.shape[0]
            return float("nan")
        W = self._start(V) if self.H is None else None
        v_floor = self._v_floor(V)
        if W is None:
            W = self._init_W(V, v_floor)
        H, beta = self.H, self.beta
        assert H is not None  # set by _start
        free_idx = None if self._free.size == H.shape[0] else self._free
        update_H = self._free.size > 0
        s = MUSettings(beta=beta, exponent=self.gamma, block_rows=_block_rows(V.shape[1]),
                       v_floor=v_floor)
        if V.shape[0] < _MIN_ROWS_FOR_THREADS:
            pool = None
        for _ in range(self.n_inner - 1):
            mu_pass(V, W, H, s, update_W=True, update_H=False, free=free_idx, pool=pool,
                    n_parts=N_PARTS)
        # the last activation update and the block's H statistics share one pass over V
        acc = mu_pass(V, W, H, s, update_W=True, update_H=update_H, free=free_idx, pool=pool,
                      n_parts=N_PARTS)
        loss = divergence_blocked(V, W, H, beta, pool=pool, n_parts=N_PARTS,
                                  block_rows=s.block_rows, v_floor=v_floor) / V.size
        if update_H and acc is not None:
            self._update_H(acc[0], acc[1], self.forget ** (V.shape[0] / self.forget_frames))
        self.n_frames_seen += V.shape[0]
        self.n_batches += 1
        self.losses.append(loss)
        self.last_W = W
        return loss

    def _update_H(self, num: np.ndarray, den: np.ndarray, rho: float) -> None:
        """Online MU step of the free atoms from one block's numerator and denominator."""
        H, free, beta, gamma = self.H, self._free, self.beta, self.gamma
        A, B = self._A, self._B
        assert H is not None and A is not None and B is not None  # set by _start
        Hf = H[free].astype(np.float64)
        if beta == 2:
            den = den @ H.astype(np.float64)
        elif beta == 1:
            den = np.broadcast_to(den, num.shape)
        used = den > 0  # an atom a block does not use leaves no trace in the statistics
        contrib = num * (Hf ** (1.0 / gamma) if gamma != 1 else Hf)
        if rho != 1:
            A *= rho
            B *= rho
        A += np.where(used, contrib, 0.0)
        B += np.where(used, den, 0.0)
        known = B > 0  # B == 0: the atom was never used; it keeps its value
        ratio = A / np.where(known, B, 1.0)
        if gamma != 1:
            ratio **= gamma
        Hnew = np.where(known, ratio, Hf)
        if beta <= 1:
            Hnew[Hnew < EPS64] = 0.0
        if self.normalize_atoms:
            norms = np.linalg.norm(Hnew, axis=1, keepdims=True)
            norms[norms == 0] = 1
            Hnew /= norms
            # the same gauge change on the statistics: W scales by c, H by 1/c, so
            # N and D scale by c and H^(1/γ) by c^(-1/γ); A/B then gives (H/c)^(1/γ)
            A *= norms ** (1.0 - 1.0 / gamma)
            B *= norms
        H[free] = Hnew.astype(H.dtype)

    def result(self, n_passes: int = 1) -> OnlineNMFResult:
        """Return the atoms learned so far (a copy) and the bookkeeping."""
        if self.H is None:
            raise ParameterError("no block has been seen yet; call partial_fit first")
        return OnlineNMFResult(
            H=self.H.copy(),
            n_frames_seen=self.n_frames_seen,
            n_batches=self.n_batches,
            loss_history=np.asarray(self.losses, dtype=np.float64),
            n_passes=n_passes,
            beta=self.beta,
            fixed=self.fixed.copy(),
        )


def _pass_iterator(blocks, passes: int) -> Callable[[], Iterator]:
    """Return a function that gives a fresh iterator over the blocks for every pass."""
    if callable(blocks) and not hasattr(blocks, "__iter__"):
        def from_callable() -> Iterator:
            it = blocks()
            try:
                return iter(it)
            except TypeError:
                raise ParameterError(
                    f"blocks() must return an iterable of blocks, got {type(it).__name__}"
                ) from None
        return from_callable
    if isinstance(blocks, np.ndarray) and blocks.ndim == 2:
        raise ParameterError(
            "blocks is a single 2-D array; pass an iterable of 2-D blocks, e.g. "
            "np.array_split(V, n_blocks), or use nmfsep.nmf for an in-memory matrix"
        )
    try:
        first = iter(blocks)
    except TypeError:
        raise fail(
            "blocks", "an iterable of 2-D arrays (a list, a generator) or a callable "
            "returning one", type(blocks).__name__,
        ) from None
    if first is blocks and passes > 1:  # an iterator (e.g. a generator): one pass only
        raise ParameterError(
            f"passes={passes} needs to iterate over the blocks {passes} times, but blocks is a "
            "one-shot iterator (e.g. a generator); pass a list, or a callable returning a "
            "fresh iterator for every pass (e.g. lambda: read_blocks(path))"
        )
    state = {"first": first}

    def fresh():
        it, state["first"] = state["first"], None
        return it if it is not None else iter(blocks)
    return fresh


def online_nmf(
    blocks,
    n_components: int | None = None,
    *,
    beta: str | float = "kullback-leibler",
    H_init=None,
    fixed_atoms=None,
    n_inner: int = 10,
    forget: float = 0.9,
    forget_frames: int = 256,
    passes: int = 1,
    normalize_atoms: bool = False,
    eps: float | None = None,
    random_state=None,
    callback: Callable[[int, float], bool | None] | None = None,
    n_threads: int | None = None,
) -> OnlineNMFResult:
    """Learn atoms ``H`` from a stream of spectrogram blocks (online β-NMF).

    Parameters
    ----------
    blocks : iterable of array-like [shape=(n_frames_b, n_bins)], or callable
        The spectrogram, one block at a time (one row per frame, as for
        :func:`nmfsep.nmf`; block lengths may differ). Never modified. With
        ``passes=1`` any iterable works, a generator included (consumed once).
        With ``passes > 1`` pass a list/tuple (or any object whose ``iter()``
        starts afresh), or a callable taking no argument that returns a fresh
        iterator for each pass (e.g. ``lambda: read_blocks(path)``); a one-shot
        iterator is refused.
    n_components : int, optional
        Total number of atoms k (fixed ones included); see :class:`OnlineNMF`.
    beta : {"kullback-leibler", "itakura-saito", "frobenius"} or float
        The β-divergence.
    H_init : array-like [shape=(k, n_bins)], optional
        Initial atoms; default from the first block (see :class:`OnlineNMF`).
    fixed_atoms : array-like [shape=(k_fixed, n_bins)], optional
        Atoms held fixed (the first ``k_fixed`` rows of H, bit-identical).
    n_inner : int, default=10
        Multiplicative updates of each block's activations per H update.
    forget : float in (0, 1], default=0.9
        Weight the accumulated statistics keep per ``forget_frames`` frames
        (memory of about ``forget_frames / (1 - forget)`` frames); 1 keeps all.
    forget_frames : int, default=256
        See ``forget``.
    passes : int, default=1
        Passes over the blocks.
    normalize_atoms : bool, default=False
        Return (and keep) unit-L2-norm learned atoms.
    eps : float, optional
        Floor of V for β ≤ 0 (default ``EPSILON`` times the running maximum).
    random_state : None, int or generator
        Seed for the initialisation of H; the same seed and blocks give
        bit-identical atoms.
    callback : callable(n_batches, loss) -> bool or None, optional
        Called after every block with the number of blocks processed so far and
        the block's loss per entry; returning True stops the fit.
    n_threads : int, optional
        Worker threads for blocks of 256 frames or more.

    Returns
    -------
    OnlineNMFResult
        The atoms, frames and blocks processed and the per-block losses.

    Raises
    ------
    ParameterError
        For invalid blocks or parameters, or blocks that yield nothing.

    Notes
    -----
    Memory is ``O(k × n_bins)`` for the state plus ``O(n_frames_b × n_bins)`` for
    one block, independent of the number of blocks; see the module documentation.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> V = rng.random((600, 3)) @ rng.random((3, 40))
    >>> res = online_nmf(np.array_split(V, 6), 3, passes=5, random_state=0)
    >>> res.H.shape, res.n_batches, res.n_frames_seen
    ((3, 40), 30, 3000)
    """
    passes = check_int(passes, "passes", 1)
    check_callable(callback, "callback", "callable(n_batches, loss)")
    state = OnlineNMF(
        n_components, beta=beta, H_init=H_init, fixed_atoms=fixed_atoms, n_inner=n_inner,
        forget=forget, forget_frames=forget_frames, normalize_atoms=normalize_atoms, eps=eps,
        random_state=random_state, n_threads=n_threads,
    )
    fresh = _pass_iterator(blocks, passes)
    n_done = 0
    with ExitStack() as stack:
        pool = None
        stop = False
        for p in range(passes):
            n_before = state.n_frames_seen
            for block in fresh():
                if pool is None and state.n_threads > 1 and \
                        np.shape(block)[0] >= _MIN_ROWS_FOR_THREADS:
                    pool = stack.enter_context(ThreadPoolExecutor(max_workers=state.n_threads))
                    stack.enter_context(blas_single_thread(enabled=True))
                loss = state._fit_block(block, pool)
                if callback is not None and not np.isnan(loss) and \
                        callback(state.n_batches, loss):
                    stop = True
                    break
            if state.n_frames_seen == n_before and not stop:
                raise ParameterError(
                    f"blocks yielded no frames in pass {p + 1}; a generator can only be "
                    "consumed once: pass a list or a callable returning a fresh iterator"
                )
            n_done = p + 1
            if stop:
                break
    if state.H is None:
        raise ParameterError(
            "every block is digital silence (all zeros); there is nothing to learn atoms from"
        )
    return state.result(n_passes=n_done)


def transform_blocks(
    blocks: Iterable,
    H,
    *,
    beta: str | float = "kullback-leibler",
    max_iter: int = 200,
    tol: float = 1e-4,
    eps: float | None = None,
    n_threads: int | None = None,
) -> Iterator[np.ndarray]:
    """Activations of each block with the atoms fixed (streaming ``transform``).

    Parameters
    ----------
    blocks : iterable of array-like [shape=(n_frames_b, n_bins)]
        The spectrogram, one block at a time (any iterable, consumed once).
        Never modified.
    H : array-like [shape=(k, n_bins)]
        The atoms (e.g. ``online_nmf(...).H`` or a dictionary's atoms).
    beta : {"kullback-leibler", "itakura-saito", "frobenius"} or float
        The β-divergence.
    max_iter, tol : int, float
        Per block, as for :func:`nmfsep.nmf` with ``update_H=False``.
    eps : float, optional
        Floor of V for β ≤ 0. Default: ``EPSILON`` times the running maximum of
        the stream (so that a quiet block is floored like the loud ones).
    n_threads : int, optional
        Worker threads for blocks of 256 frames or more.

    Yields
    ------
    W_b : np.ndarray [shape=(n_frames_b, k)]
        Activations of block b (dtype of the block), in the order of the blocks.

    Notes
    -----
    Each block is solved independently by :func:`nmfsep.nmf` from the constant
    start ``sqrt(mean(V_b) / k)`` (scikit-learn's ``transform``), so the result
    for a block does not depend on the blocks before it (except for the default
    β ≤ 0 floor). Memory: one block and its activations at a time.
    """
    beta_f = beta_loss_to_float(beta, "beta")
    H = check_nonnegative_matrix(H, "H")
    max_iter = check_int(max_iter, "max_iter", 1)
    tol = check_real(tol, "tol")
    if eps is not None:
        eps = check_real(eps, "eps")
    if n_threads is not None:
        n_threads = check_int(n_threads, "n_threads", 1)
    if isinstance(blocks, np.ndarray) and blocks.ndim == 2:
        raise ParameterError(
            "blocks is a single 2-D array; pass an iterable of 2-D blocks, e.g. "
            "np.array_split(V, n_blocks), or use nmfsep.nmf(V, H=H, update_H=False)"
        )
    return _transform_gen(blocks, H, beta_f, max_iter, tol, eps, n_threads)


def _transform_gen(blocks, H, beta, max_iter, tol, eps, n_threads):
    vmax = 0.0
    for i, block in enumerate(blocks):
        V = _check_block(block, H.shape[1], None, i)
        floor = eps
        if beta <= 0 and eps is None:
            vmax = max(vmax, float(V.max()))
            floor = EPSILON * vmax if vmax > 0 else EPSILON
        res = nmf(V, H.shape[0], beta=beta, H=H.astype(V.dtype, copy=False), update_H=False,
                  max_iter=max_iter, tol=tol, eps=floor, n_threads=n_threads, warn=False)
        yield res.W
