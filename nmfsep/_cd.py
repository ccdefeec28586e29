"""Coordinate-descent solvers: HALS for β = 2, projected Newton for β = 1.

Each sweep updates one component (a column of W, then a row of H) at a time
with the others held fixed. The objective is separable over the entries of
that column (row), so all its entries are updated at once:

* β = 2: the exact minimiser of a quadratic (HALS; Cichocki & Phan 2009,
  scikit-learn's ``solver="cd"``), monotone by construction;
* β = 1: projected Newton steps on the convex one-dimensional KL problems
  (Hsieh & Dhillon 2011), with step halving for the entries whose objective
  would increase, so the objective never increases.

These are reference-quality solvers: few iterations, each more expensive than a
multiplicative update. They keep V-sized state (the model WH for KL).
"""

from __future__ import annotations

import numpy as np

from .divergence import EPSILON, divergence_terms, penalties
from .exceptions import ParameterError

_NEWTON_STEPS = 2
_MAX_HALVINGS = 12


def fit_cd(V, W, H, *, beta, fixed, reg, normalize_atoms, max_iter, tol, check_every,
           callback, pool, n_threads, adaptive, v_floor):
    """Run coordinate descent; same contract as the MU driver in :mod:`nmfsep.nmf`."""
    if normalize_atoms:
        raise ParameterError("solver='cd' does not support normalize_atoms=True; use solver='mu'")
    free = np.flatnonzero(~fixed)
    Wd = W.astype(np.float64)
    Hd = H.astype(np.float64)
    Vd = V.astype(np.float64)
    if beta == 1:
        Vm = np.where(Vd > EPSILON, Vd, 0.0)
        WH = Wd @ Hd

    def objective():
        model = Wd @ Hd if beta == 2 else WH
        d = divergence_terms(Vd, model, beta)
        return d, d + penalties(Wd, Hd, fixed, reg)

    div, obj = objective()
    error_at_init = previous_error = np.sqrt(2 * max(div, 0.0))
    losses, its = [obj], [0]
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        if beta == 2:
            _hals_sweep(Vd, Wd, Hd, free, reg)
        else:
            for r in range(Wd.shape[1]):
                _kl_newton(Vm, WH, Wd[:, r], Hd[r], reg["l1_W"], reg["l2_W"])
            for r in free:
                _kl_newton(Vm.T, WH.T, Hd[r], Wd[:, r], reg["l1_H"], reg["l2_H"])
        loss_now = None
        if n_iter % check_every == 0 or n_iter == max_iter or (tol > 0 and n_iter % 10 == 0):
            div, obj = objective()
            if n_iter % check_every == 0 or n_iter == max_iter:
                losses.append(obj)
                its.append(n_iter)
                loss_now = obj
        if callback is not None:
            callback(n_iter, loss_now)
        if tol > 0 and n_iter % 10 == 0:
            error = np.sqrt(2 * max(div, 0.0))
            if error_at_init == 0 or (previous_error - error) / error_at_init < tol:
                converged = True
                break
            previous_error = error
    if converged and its[-1] != n_iter:
        losses.append(objective()[1])
        its.append(n_iter)
    H_out = H.copy()
    H_out[free] = Hd[free].astype(H.dtype)
    return Wd.astype(W.dtype), H_out, n_iter, losses, its, converged, None


def _hals_sweep(V, W, H, free, reg) -> None:
    """One HALS sweep over the columns of W, then the free rows of H (in place)."""
    VHt = V @ H.T
    HHt = H @ H.T
    for r in range(W.shape[1]):
        hrr = HHt[r, r] + reg["l2_W"]
        if hrr <= 0:
            continue
        grad = W @ HHt[:, r] - VHt[:, r] + reg["l1_W"] + reg["l2_W"] * W[:, r]
        W[:, r] = np.maximum(W[:, r] - grad / hrr, 0.0)
    WtV = W.T @ V
    WtW = W.T @ W
    for r in free:
        wrr = WtW[r, r] + reg["l2_H"]
        if wrr <= 0:
            continue
        grad = WtW[r] @ H - WtV[r] + reg["l1_H"] + reg["l2_H"] * H[r]
        H[r] = np.maximum(H[r] - grad / wrr, 0.0)


def _row_objective(Vm, WH, x, l1, l2):
    """Per-row KL objective (up to constants) plus the penalties on x."""
    return (
        WH.sum(axis=1)
        - np.einsum("ij,ij->i", Vm, np.log(np.maximum(WH, EPSILON)))
        + l1 * x
        + 0.5 * l2 * x * x
    )


def _kl_newton(Vm, WH, x, h, l1, l2) -> None:
    """Projected Newton steps on one component for KL, rows independent (in place).

    Vm, WH : (n, m) data (entries <= EPSILON zeroed) and current model.
    x : (n,) the component being updated (a column of W or a row of H).
    h : (m,) the matching row of the other factor, fixed.
    """
    if not np.any(h > 0):
        return
    hsum = h.sum()
    for _ in range(_NEWTON_STEPS):
        WHs = np.maximum(WH, EPSILON)
        ratio = Vm / WHs
        grad = hsum - ratio @ h + l1 + l2 * x
        hess = (ratio / WHs) @ (h * h) + l2
        with np.errstate(divide="ignore", invalid="ignore"):
            target = np.where(hess > 0, np.maximum(x - grad / hess, 0.0), x)
        delta = target - x
        rows = np.flatnonzero(delta != 0)
        if rows.size == 0:
            return
        f_old = _row_objective(Vm[rows], WH[rows], x[rows], l1, l2)
        d = delta[rows]
        for _ in range(_MAX_HALVINGS):
            WH_new = WH[rows] + np.outer(d, h)
            f_new = _row_objective(Vm[rows], WH_new, x[rows] + d, l1, l2)
            bad = f_new > f_old
            if not bad.any():
                break
            d = np.where(bad, 0.5 * d, d)
        else:
            d = np.where(bad, 0.0, d)
            WH_new = WH[rows] + np.outer(d, h)
        x[rows] += d
        WH[rows] = WH_new
