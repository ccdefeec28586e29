r"""Multichannel β-NMF coarse to fine: most iterations on frames averaged in groups.

:func:`nmfsep.ntf.ntf` costs about three times :func:`nmfsep.nmf.nmf`'s products per
channel and iteration. Neighbouring STFT frames are nearly alike (a hop of 12 ms at
44.1 kHz), so the atoms ``H`` and the gains ``Q`` can be learned first on a spectrogram
whose frames are averaged ``pool`` at a time (:func:`pool_frames`: ``pool`` times fewer
rows, and, for every β, the model of the averaged frames is exactly the averaged model
``mean(W) diag(Q_c) H``), then every frame is fitted for a few iterations from the
activations repeated back (:func:`unpool_frames`), the atoms and the gains found:

1. coarse: :func:`~nmfsep.ntf.ntf` of ``pool_frames(V)`` from ``pool_frames(W)``, ``H``
   and ``Q``, at most ``coarse_iter`` iterations (``tol`` applies);
2. fine: :func:`~nmfsep.ntf.ntf` of ``V`` from ``unpool_frames(W)`` and the coarse
   ``H`` and ``Q``, at most ``fine_iter`` iterations (``tol`` applies): its loss never
   increases (multiplicative updates).

Used by blind ``spatial="gains"`` separation (:data:`nmfsep.plan.BLIND_POOL_FRAMES`) and by
dictionaries with free atoms (:data:`nmfsep.plan.SEMI_POOL_FRAMES`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ._checks import check_int
from .exceptions import ParameterError
from .nmf import starting_factors
from .ntf import NTFResult, check_channels, ntf

__all__ = ["ntf_coarse_to_fine", "pool_frames", "unpool_frames"]


def pool_frames(X: np.ndarray, pool: int) -> np.ndarray:
    """Average every ``pool`` consecutive frames (rows, the second-to-last axis).

    Parameters
    ----------
    X : np.ndarray [shape=(..., n_frames, n_cols)]
        Spectrograms (one row per frame) or activations.
    pool : int
        Frames per group, at least 1; the last group may be shorter.

    Returns
    -------
    np.ndarray [shape=(..., ceil(n_frames / pool), n_cols)], C-contiguous
        The mean of each group, in X's floating dtype.

    Examples
    --------
    >>> pool_frames(np.arange(10.0).reshape(5, 2), 2)
    array([[1., 2.],
           [5., 6.],
           [8., 9.]])
    """
    pool = check_int(pool, "pool", 1)
    n = X.shape[-2]
    n_full, n_groups = n // pool, -(-n // pool)
    dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
    out = np.empty((*X.shape[:-2], n_groups, X.shape[-1]), dtype=dtype)
    # full groups: strided rows added in place (10x np.add.reduceat's time on 2 frames)
    body = out[..., :n_full, :]
    np.copyto(body, X[..., 0 : n_full * pool : pool, :])
    for i in range(1, pool):
        body += X[..., i : n_full * pool : pool, :]
    body /= dtype.type(pool)
    if n_groups > n_full:  # the last, shorter group
        rest = X[..., n_full * pool :, :]
        out[..., n_full, :] = np.add.reduce(rest, axis=-2, dtype=dtype) / dtype.type(
            rest.shape[-2])
    return out


def unpool_frames(X: np.ndarray, pool: int, n_frames: int) -> np.ndarray:
    """Repeat every row ``pool`` times and keep the first ``n_frames``: undo :func:`pool_frames`.

    Parameters
    ----------
    X : np.ndarray [shape=(n_groups, n_cols)]
        Rows of groups of ``pool`` frames.
    pool : int
        Frames per group.
    n_frames : int
        Frames wanted, at most ``n_groups * pool``.

    Returns
    -------
    np.ndarray [shape=(n_frames, n_cols)], C-contiguous
    """
    return np.ascontiguousarray(np.repeat(X, pool, axis=0)[:n_frames])


def _group_gains(Q: np.ndarray, gain_groups: Sequence[Sequence[int]] | None) -> np.ndarray:
    """Gains per component ``(C, k)`` -> per gain group ``(C, n_groups)``."""
    if gain_groups is None:
        return Q
    return np.stack([Q[:, min(g)] for g in gain_groups], axis=1)


def _shifted(
    callback: Callable[[int, float | None], None] | None, offset: int, *, with_loss: bool,
) -> Callable[[int, float | None], None] | None:
    """Return ``callback`` with iterations counted from ``offset`` (the loss, or None)."""
    if callback is None:
        return None
    cb = callback

    def shifted(iteration: int, loss: float | None) -> None:
        cb(offset + iteration, loss if with_loss else None)

    return shifted


def ntf_coarse_to_fine(
    V: np.ndarray,
    n_components: int,
    *,
    pool: int = 2,
    coarse_iter: int = 100,
    fine_iter: int = 30,
    joint_coarse: bool | None = None,
    joint_fine: bool | None = None,
    beta: str | float = "kullback-leibler",
    W: np.ndarray | None = None,
    H: np.ndarray | None = None,
    Q: np.ndarray | None = None,
    fixed_atoms: np.ndarray | None = None,
    gain_groups: Sequence[Sequence[int]] | None = None,
    max_iter: int = 200,
    tol: float = 1e-4,
    random_state: int | np.random.Generator | None = None,
    check_every: int = 10,
    callback: Callable[[int, float | None], None] | None = None,
) -> NTFResult:
    """Factorise ``V_c ≈ W diag(Q[c]) H`` on averaged frames first, then on every frame.

    Parameters
    ----------
    V : np.ndarray [shape=(n_channels, n_frames, n_bins)], non-negative
        One spectrogram per channel (one row per frame). Never modified.
    n_components : int
        Number of atoms k (fixed ones included).
    pool : int
        Frames averaged in the coarse stage (:func:`pool_frames`); 1, or a mixture of
        fewer than ``2 * pool`` frames: :func:`nmfsep.ntf.ntf` alone.
    coarse_iter, fine_iter : int
        Most iterations of each stage; together at most ``max_iter`` (the fine stage
        first: ``max_iter <= fine_iter`` runs the fine stage alone).
    joint_coarse, joint_fine : bool or None
        Each stage's ``joint_gains`` (:func:`nmfsep.ntf.ntf`): the gains updated with
        the activations, two passes per iteration instead of three.
    beta, W, H, Q, fixed_atoms, gain_groups, max_iter, tol, random_state, check_every
        As for :func:`nmfsep.ntf.ntf` (W, H: a start on every frame; default
        :func:`nmfsep.nmf.nmf`'s initialisation of ``Σ_c V_c`` with ``random_state``;
        ``fixed_atoms``: held fixed in both stages).
    callback : callable(iteration, loss or None), optional
        Called after every iteration of both stages, numbered on; the loss (every
        ``check_every`` iterations) only in the fine stage.

    Returns
    -------
    NTFResult
        The fine stage's factors; ``n_iter`` counts both stages; ``loss_history`` is
        the loss on every frame from the start of the fine stage
        (``loss_iterations[0]`` is the coarse stage's iterations); ``converged``:
        whether the fine stage reached ``tol``.

    Raises
    ------
    ParameterError
        For invalid data or parameters.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> W, H = rng.random((60, 2)), rng.random((2, 20))
    >>> V = np.stack([W * [0.9, 0.2] @ H, W * [0.1, 0.8] @ H])
    >>> res = ntf_coarse_to_fine(V, 2, coarse_iter=50, fine_iter=20, random_state=0)
    >>> res.Q.shape, res.n_iter <= 70
    ((2, 2), True)
    """
    V = check_channels(V)
    pool = check_int(pool, "pool", 1)
    max_iter = check_int(max_iter, "max_iter", 0)
    n_fine = min(check_int(fine_iter, "fine_iter", 0), max_iter)
    n_coarse = min(check_int(coarse_iter, "coarse_iter", 0), max_iter - n_fine)
    if W is None and H is None:
        W, H = starting_factors(V.sum(axis=0), n_components, fixed_atoms=fixed_atoms,
                                random_state=random_state)
    elif W is None or H is None:
        raise ParameterError("W and H are given together (a custom start) or not at all")
    if pool == 1 or V.shape[1] < 2 * pool or n_coarse == 0:
        return ntf(V, n_components, beta=beta, fixed_atoms=fixed_atoms, W=W, H=H, Q=Q,
                   gain_groups=gain_groups, joint_gains=joint_fine, max_iter=max_iter, tol=tol,
                   check_every=check_every, callback=callback)
    coarse = ntf(pool_frames(V, pool), n_components, beta=beta, fixed_atoms=fixed_atoms,
                 W=pool_frames(np.asarray(W), pool), H=H, Q=Q, gain_groups=gain_groups,
                 joint_gains=joint_coarse,
                 max_iter=n_coarse, tol=tol, check_every=check_every,
                 callback=_shifted(callback, 0, with_loss=False))
    fine = ntf(V, n_components, beta=beta, fixed_atoms=fixed_atoms,
               W=unpool_frames(coarse.W, pool, V.shape[1]),
               H=coarse.H, Q=_group_gains(coarse.Q, gain_groups), gain_groups=gain_groups,
               joint_gains=joint_fine,
               max_iter=n_fine, tol=tol, check_every=check_every,
               callback=_shifted(callback, coarse.n_iter, with_loss=True))
    return NTFResult(W=fine.W, H=fine.H, Q=fine.Q, n_iter=coarse.n_iter + fine.n_iter,
                     loss_history=fine.loss_history,
                     loss_iterations=fine.loss_iterations + coarse.n_iter,
                     converged=fine.converged, beta=fine.beta)
