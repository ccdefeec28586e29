"""Multiplicative updates of the activations against fixed atoms that are mostly zeros.

A harmonic atom (:mod:`nmfsep.harmonic`) is a comb of window lobes at the partials
of one pitch: about nine entries in ten are exact zeros. When every atom is fixed
(supervised separation: only the activations W are updated), the products of an
update, ``W H`` and ``R Hᵀ``, can skip those zeros. :func:`split_atoms` splits the
atoms once per fit into a dense part (BLAS) and a sparse part (a CSR matrix of
:mod:`scipy.sparse`); :func:`mu_pass_split` then runs one multiplicative update of W
with the same arithmetic as the numpy path of :mod:`nmfsep._mu` (same floors, same
order of operations per entry), the sums over atoms and bins only rounded
differently.

Products are taken in the transposed layout, bins × frames, over blocks of
``FRAME_BLOCK`` frames: the sparse products of :mod:`scipy.sparse` then add, for
each non-zero entry of an atom, one contiguous row of ``FRAME_BLOCK`` frames (a
vectorised axpy), and the dense products are single BLAS calls of a useful size.
Blocks of frames are independent (W only), so the result does not depend on the
number of threads. Whether a fit takes this path depends on the atoms (how many
are sparse, how sparse) and β alone, so a seed still gives the same result
from run to run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._mu import MUSettings, apply_ratio, divide_and_apply, ratio_terms, split_rows
from .divergence import EPSILON, divergence_terms

if TYPE_CHECKING:  # scipy is imported when atoms are split: `nmfsep --help` stays light
    import scipy.sparse as sp

#: An atom with at most this fraction of non-zero entries is kept in sparse form.
MAX_DENSITY = 0.25
#: The split pays only with at least this many sparse atoms (else: the dense path).
MIN_SPARSE_ATOMS = 16
#: Frames per block of the transposed products.
FRAME_BLOCK = 128
#: The β this path implements (others take the dense path).
BETAS = (0.0, 1.0, 2.0)


@dataclass(frozen=True)
class SplitAtoms:
    """Fixed atoms split into a dense and a sparse part.

    Attributes
    ----------
    dense, sparse : np.ndarray of int [shape=(k_d,), (k_s,)]
        Indices of the dense and the sparse atoms in H (together ``0..k-1``).
    Hd : np.ndarray [shape=(k_d, n_bins)]
        The dense atoms.
    HdT : np.ndarray [shape=(n_bins, k_d)], C-contiguous
        Their transpose.
    Hs : scipy.sparse.csr_array [shape=(k_s, n_bins)]
        The sparse atoms.
    HsT : scipy.sparse.csr_array [shape=(n_bins, k_s)]
        Their transpose.
    row_sums : np.ndarray [shape=(k,)]
        ``H.sum(axis=1)`` in the dtype of H (the KL denominator).
    gram : np.ndarray [shape=(k, k)] or None
        β = 2: ``H Hᵀ``.
    """

    dense: np.ndarray
    sparse: np.ndarray
    Hd: np.ndarray
    HdT: np.ndarray
    Hs: sp.csr_array
    HsT: sp.csr_array
    row_sums: np.ndarray
    gram: np.ndarray | None


def split_atoms(H: np.ndarray, beta: float | None) -> SplitAtoms | None:
    """Split fixed atoms into dense and sparse parts, or None where it does not pay.

    Parameters
    ----------
    H : np.ndarray [shape=(k, n_bins)]
        The atoms, all fixed.
    beta : float or None
        The β of the fit for :func:`mu_pass_split` (only ``BETAS`` take it); None for
        the products alone (:func:`model_rows`, :func:`product_rows`: any β).

    Returns
    -------
    SplitAtoms or None
        None when β is not in ``BETAS`` or fewer than ``MIN_SPARSE_ATOMS`` atoms have at
        most ``MAX_DENSITY`` non-zero entries.
    """
    if (beta is not None and beta not in BETAS) or not _pays(H):
        return None
    return _split(H, gram=beta == 2)


def split_groups(H: np.ndarray, members: list[np.ndarray]) -> list[SplitAtoms] | None:
    """Split the atoms of every group (:func:`split_atoms`'s rule on all of H), or None.

    Parameters
    ----------
    H : np.ndarray [shape=(k, n_bins)]
        The atoms, all fixed.
    members : list of np.ndarray of int
        The atoms of each group.

    Returns
    -------
    list of SplitAtoms (one per group) or None
    """
    if not _pays(H):
        return None
    return [_split(H[idx], gram=False) for idx in members]


def _pays(H: np.ndarray) -> bool:
    """Whether at least ``MIN_SPARSE_ATOMS`` atoms of a 2-D, non-empty H are sparse."""
    return bool(H.ndim == 2 and H.shape[1] > 0
                and np.count_nonzero(_sparse_atoms(H)) >= MIN_SPARSE_ATOMS)


def _sparse_atoms(H: np.ndarray) -> np.ndarray:
    """Which atoms have at most ``MAX_DENSITY`` non-zero entries, (k,) bool."""
    return np.count_nonzero(H, axis=1) <= MAX_DENSITY * H.shape[1]


def _split(H: np.ndarray, gram: bool) -> SplitAtoms:
    """:class:`SplitAtoms` of H by :func:`_sparse_atoms` (``gram``: with ``H Hᵀ``)."""
    import scipy.sparse as sp

    is_sparse = _sparse_atoms(H)
    dense, sparse = np.flatnonzero(~is_sparse), np.flatnonzero(is_sparse)
    Hd = np.ascontiguousarray(H[dense])
    return SplitAtoms(dense=dense, sparse=sparse, Hd=Hd, HdT=np.ascontiguousarray(Hd.T),
                      Hs=sp.csr_array(H[sparse]), HsT=sp.csr_array(H[sparse].T),
                      row_sums=H.sum(axis=1), gram=H @ H.T if gram else None)


def model_t(split: SplitAtoms, WT: np.ndarray) -> np.ndarray:
    """Return ``(W H)ᵀ`` of one block of frames.

    Parameters
    ----------
    split : SplitAtoms
    WT : np.ndarray [shape=(k, n_block)], C-contiguous
        Activations of the block, transposed.

    Returns
    -------
    np.ndarray [shape=(n_bins, n_block)], C-contiguous
    """
    QT = split.HdT @ WT[split.dense]
    QT += split.HsT @ WT[split.sparse]
    return QT


def products(split: SplitAtoms, RT: np.ndarray) -> np.ndarray:
    """Return ``H Rᵀ`` (the products of every atom with each frame of ``R``).

    Parameters
    ----------
    split : SplitAtoms
    RT : np.ndarray [shape=(n_bins, n_block)], C-contiguous

    Returns
    -------
    np.ndarray [shape=(k, n_block)]
    """
    out = np.empty((split.row_sums.shape[0], RT.shape[1]), dtype=RT.dtype)
    out[split.dense] = split.Hd @ RT
    out[split.sparse] = split.Hs @ RT
    return out


def model_cols(split: SplitAtoms, WT: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write ``(W H)ᵀ`` into ``out``, in blocks of ``FRAME_BLOCK`` frames; return ``out``.

    Parameters
    ----------
    split : SplitAtoms
    WT : np.ndarray [shape=(k, n_frames)]
        Activations, transposed.
    out : np.ndarray [shape=(n_bins, n_frames)]
    """
    for b0 in range(0, WT.shape[1], FRAME_BLOCK):
        b1 = b0 + FRAME_BLOCK
        out[:, b0:b1] = model_t(split, np.ascontiguousarray(WT[:, b0:b1]))
    return out


def product_cols(split: SplitAtoms, RT: np.ndarray) -> np.ndarray:
    """Return ``H Rᵀ``, in blocks of ``FRAME_BLOCK`` frames.

    Parameters
    ----------
    split : SplitAtoms
    RT : np.ndarray [shape=(n_bins, n_frames)]

    Returns
    -------
    np.ndarray [shape=(k, n_frames)]
    """
    out = np.empty((split.row_sums.shape[0], RT.shape[1]), dtype=RT.dtype)
    for b0 in range(0, RT.shape[1], FRAME_BLOCK):
        b1 = b0 + FRAME_BLOCK
        out[:, b0:b1] = products(split, np.ascontiguousarray(RT[:, b0:b1]))
    return out


def _kl_denominator(split: SplitAtoms, s: MUSettings) -> np.ndarray:
    """KL: ``H.sum(axis=1) + l1_W (+ l1_W_atoms)``, zeros replaced by EPSILON, (k,)."""
    den_kl = split.row_sums + s.l1_W
    if s.l1_W_atoms is not None:
        den_kl = den_kl + s.l1_W_atoms
    den_kl[den_kl == 0] = EPSILON
    return den_kl


def _update_block(VbT: np.ndarray, WT: np.ndarray, split: SplitAtoms, s: MUSettings,
                  den_kl: np.ndarray | None) -> None:
    """One multiplicative update of a block's activations, in place (numpy path of _mu).

    Parameters
    ----------
    VbT : np.ndarray [shape=(n_bins, n_block)]
        The block of V, transposed (already floored at ``s.v_floor``).
    WT : np.ndarray [shape=(k, n_block)], C-contiguous
        The block's activations, transposed; updated in place.
    split : SplitAtoms
    s : MUSettings
    den_kl : np.ndarray [shape=(k,)] or None
        KL: :func:`_kl_denominator`.
    """
    if s.beta == 2:
        num = products(split, np.ascontiguousarray(VbT))
        den = split.gram @ WT
        if s.l1_W > 0:
            den += s.l1_W
    else:
        R, P = ratio_terms(VbT, model_t(split, WT), s.beta)
        num = products(split, R)
        if P is None:  # KL
            assert den_kl is not None, "KL takes its denominator"
            if s.l2_W == 0:  # one denominator per atom, shared by all frames
                num /= den_kl[:, None]
                apply_ratio(WT, num, s)
                return
            den = np.broadcast_to(den_kl[:, None], num.shape).copy()
        else:
            den = products(split, P)
            if s.l1_W > 0:
                den += s.l1_W
    divide_and_apply(WT, num, den, s)


def _blocks(V: np.ndarray, rows: tuple[int, int],
            v_floor: float) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(b0, b1, V[b0:b1]ᵀ)`` for the blocks of ``FRAME_BLOCK`` frames in ``rows``."""
    for b0 in range(rows[0], rows[1], FRAME_BLOCK):
        b1 = min(b0 + FRAME_BLOCK, rows[1])
        VbT = V[b0:b1].T
        if v_floor > 0:
            VbT = np.maximum(VbT, VbT.dtype.type(v_floor))
        yield b0, b1, VbT


def _pass_work(V, W, split, s, rows) -> None:
    den_kl = _kl_denominator(split, s) if s.beta == 1 else None
    for b0, b1, VbT in _blocks(V, rows, s.v_floor):
        WT = np.ascontiguousarray(W[b0:b1].T)
        _update_block(VbT, WT, split, s, den_kl)
        W[b0:b1] = WT.T


def _in_parts(fn: Callable[..., Any], n_frames: int, pool: Executor | None, n_parts: int,
              *args: Any) -> list:
    """Run ``fn(*args, rows)`` on ranges of whole blocks of frames (in threads with a pool)."""
    parts = split_rows(n_frames, n_parts, unit=FRAME_BLOCK)
    if pool is None or len(parts) == 1:
        return [fn(*args, p) for p in parts]
    futures = [pool.submit(fn, *args, p) for p in parts]
    return [f.result() for f in futures]


def mu_pass_split(V: np.ndarray, W: np.ndarray, split: SplitAtoms, s: MUSettings, *,
                  pool: Executor | None, n_parts: int) -> None:
    """One multiplicative update of W against fixed atoms, in place.

    The same update as :func:`nmfsep._mu.mu_pass` with ``update_H=False`` (up to the
    rounding of the sums); block boundaries are multiples of ``FRAME_BLOCK`` whatever
    ``n_parts`` and the pool, so results do not depend on the number of threads.

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, n_bins)]
    W : np.ndarray [shape=(n_frames, k)]
        Activations, updated in place.
    split : SplitAtoms
        The atoms (:func:`split_atoms`).
    s : MUSettings
        β, exponent, penalties and ``v_floor`` (``block_rows`` and ``fused`` are unused).
    pool : Executor or None
        Threads sharing the blocks.
    n_parts : int
        Number of frame ranges handed out.
    """
    _in_parts(_pass_work, V.shape[0], pool, n_parts, V, W, split, s)


def _loss_work(V, W, split, beta, v_floor, fused, rows) -> float:
    total = 0.0
    for b0, b1, VbT in _blocks(V, rows, v_floor):
        QT = model_t(split, np.ascontiguousarray(W[b0:b1].T))
        total += divergence_terms(np.ascontiguousarray(VbT), QT, beta, overwrite_wh=True,
                                  fused=fused)
    return total


def divergence_split(V: np.ndarray, W: np.ndarray, split: SplitAtoms, beta: float, *,
                     pool: Executor | None, n_parts: int, v_floor: float = 0.0,
                     fused: bool = True) -> float:
    """β-divergence ``D(max(V, v_floor) | W H)`` with H given as :class:`SplitAtoms`.

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, n_bins)]
    W : np.ndarray [shape=(n_frames, k)]
    split : SplitAtoms
    beta : float
    pool, n_parts
        As :func:`mu_pass_split`.
    v_floor : float
        Floor of V (β ≤ 0).
    fused : bool
        KL and IS sums in a compiled pass (see ``divergence_terms``).

    Returns
    -------
    float
    """
    parts = _in_parts(_loss_work, V.shape[0], pool, n_parts, V, W, split, beta, v_floor,
                      fused)
    return float(sum(parts))
