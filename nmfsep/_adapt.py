r"""Dictionary atoms adapted to the data under a penalty that keeps them near the learned ones.

Supervised NMF holds the dictionary's atoms :math:`H_0` fixed. Here they may move
(Smaragdis, Raj & Shashanka 2007 adapt them freely; the penalty keeps them close), for
Kullback-Leibler only, with the objective

.. math::

    D_{KL}(V \mid W H) + \sum_k \mu_k \, s_k \, D_{KL}(H_{0,k} \,\|\, H_k),
    \qquad s_k = \sum_t W_{tk},

where :math:`D_{KL}(a \| b) = \sum_f a_f \log(a_f / b_f) - a_f + b_f`. KL is
1-homogeneous, so the penalty equals :math:`\sum_k \mu_k D_{KL}(W_k H_{0,k} \| W_k H_k)`:
the divergence between component k's spectrogram made with its learned atom and with
its adapted one. It is in the units of the data term, so :math:`\mu` is a ratio that
does not depend on the level or the length of the recording (an unweighted
:math:`\mu D(H_0 \| H)` would anchor the atoms of a quiet recording harder than those of
a loud one).

Updates (majorisation-minimisation, the objective never increases):

* W, with H fixed: the penalty is linear in W, :math:`\sum_k c_k s_k` with
  :math:`c_k = \mu_k D_{KL}(H_{0,k} \| H_k) \ge 0`, an L1 weight per atom that joins the
  KL denominator: :math:`W \leftarrow W \odot (V/\Lambda) H^T / (1 H^T + c)`.
* H, with W fixed: Jensen's bound on the data term plus the exact (convex, separable)
  penalty, minimised in closed form:

  .. math::

      H_k \leftarrow \frac{H_k \odot W_k^T (V/\Lambda) + \mu_k s_k H_{0,k}}{s_k (1 + \mu_k)}
      = \frac{1}{1 + \mu_k} \, \mathrm{MU}(H_k) + \frac{\mu_k}{1 + \mu_k} \, H_{0,k},

  a blend of the plain multiplicative update and the learned atom.

:math:`\mu = \infty` keeps an atom fixed (the code path of fixed atoms, bit for bit);
:math:`\mu = 0` makes it a free atom that starts from the learned one. The learned atoms'
scale (unit L2 norm in nmfsep's dictionaries) is kept, as :math:`D_{KL}(H_0 \| c H_0)`
is smallest at :math:`c = 1`; W absorbs the level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import fail
from .exceptions import ParameterError

__all__ = ["Adaptation", "check_adapt", "adapt_rows", "adapt_penalty", "w_penalty"]


@dataclass(frozen=True)
class Adaptation:
    """Which fixed atoms adapt, their learned values and their penalty weights.

    Attributes
    ----------
    rows : np.ndarray of int [shape=(k_adapt,)]
        Indices (among the fixed atoms, which come first in H) of the atoms that move.
    H0 : np.ndarray [shape=(k_adapt, n_bins)], float64
        Their learned values.
    mu : np.ndarray [shape=(k_adapt,)], float64
        Their penalty weights, finite and >= 0.
    """

    rows: np.ndarray
    H0: np.ndarray
    mu: np.ndarray


def check_adapt(adapt, Hfix: np.ndarray | None, *, beta: float, solver: str,
                update_H: bool) -> Adaptation | None:
    """Validate ``adapt`` of :func:`nmfsep.nmf`; return the adaptation or None (all fixed).

    Parameters
    ----------
    adapt : None, float or array-like [shape=(k_fixed,)]
        Penalty weight μ of every fixed atom, or one per atom; None or ``inf``: fixed.
    Hfix : np.ndarray [shape=(k_fixed, n_bins)] or None
        The fixed atoms.
    beta : float
        The β of the divergence (adaptation needs 1).
    solver : str
        The solver (adaptation needs ``"mu"`` or ``"amu"``).
    update_H : bool
        False refuses adaptation (it moves atoms).

    Returns
    -------
    Adaptation or None

    Raises
    ------
    ParameterError
        For a μ that is not a number >= 0 (or one per fixed atom), or an unsupported
        β, solver, ``update_H=False`` or missing ``fixed_atoms``.
    """
    if adapt is None:
        return None
    if Hfix is None:
        raise ParameterError("adapt needs fixed_atoms (the atoms it lets move)")
    what = f"a number >= 0, inf or None, or {Hfix.shape[0]} of them (one per fixed atom)"
    shown = adapt if np.isscalar(adapt) else f"a {type(adapt).__name__} of other values"
    try:
        if isinstance(adapt, str | bytes | bool):
            raise TypeError
        mu = np.asarray(adapt, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail("adapt", what, shown) from None
    if mu.ndim > 1 or (mu.ndim == 1 and mu.shape[0] != Hfix.shape[0]) or np.isnan(mu).any() \
            or (mu < 0).any():
        raise fail("adapt", what, shown)
    mu = np.broadcast_to(mu, (Hfix.shape[0],))
    rows = np.flatnonzero(np.isfinite(mu))
    if rows.size == 0:
        return None
    if beta != 1.0:
        raise ParameterError(
            f"adapt supports beta 1 (Kullback-Leibler), got beta={beta:g}; use "
            "adapt=None (fixed atoms) or the Kullback-Leibler divergence"
        )
    if solver not in ("mu", "amu"):
        raise ParameterError(f"adapt needs solver='mu' or 'amu', got solver={solver!r}")
    if not update_H:
        raise ParameterError("adapt moves atoms, so it cannot be combined with update_H=False")
    return Adaptation(rows=rows, H0=Hfix[rows].astype(np.float64), mu=mu[rows].copy())


def _divergences(H0: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Return ``D_KL(H0_k || H_k)`` per row, float64 ``(k_adapt,)``."""
    from scipy.special import kl_div  # lazily: scipy stays out of ``nmfsep --help``

    return kl_div(H0, H.astype(np.float64)).sum(axis=1)


def w_penalty(ad: Adaptation, H: np.ndarray) -> np.ndarray:
    """Return the L1 weight per atom that the penalty adds to the W update.

    Parameters
    ----------
    ad : Adaptation
    H : np.ndarray [shape=(k, n_bins)]
        The current atoms.

    Returns
    -------
    np.ndarray [shape=(k,)], float64
        ``mu_k * D_KL(H0_k || H_k)`` for adapted atoms, 0 for the others.
    """
    out = np.zeros(H.shape[0])
    pos = ad.mu > 0
    out[ad.rows[pos]] = ad.mu[pos] * _divergences(ad.H0[pos], H[ad.rows[pos]])
    return out


def adapt_penalty(ad: Adaptation, W: np.ndarray, H: np.ndarray) -> float:
    """Return the penalty ``sum_k mu_k s_k D_KL(H0_k || H_k)`` of the objective.

    Parameters
    ----------
    ad : Adaptation
    W : np.ndarray [shape=(n_frames, k)]
    H : np.ndarray [shape=(k, n_bins)]

    Returns
    -------
    float
    """
    s = W[:, ad.rows].sum(axis=0, dtype=np.float64)
    pos = (ad.mu > 0) & (s > 0)
    if not pos.any():
        return 0.0
    d = _divergences(ad.H0[pos], H[ad.rows[pos]])
    return float(np.sum(ad.mu[pos] * s[pos] * d))


def adapt_rows(ad: Adaptation, H: np.ndarray, num: np.ndarray, den: np.ndarray,
               exponent: float) -> None:
    """Apply the penalised update to the adapted atoms of H, in place.

    Parameters
    ----------
    ad : Adaptation
    H : np.ndarray [shape=(k, n_bins)]
        The atoms; rows ``ad.rows`` are updated.
    num : np.ndarray [shape=(k_adapt, n_bins)], float64
        ``W_k^T (V / WH)`` of the adapted atoms.
    den : np.ndarray [shape=(k_adapt, 1)], float64
        ``s_k = sum_t W_tk``.
    exponent : float
        Exponent of the multiplicative ratio (1, or an over-relaxation of ``"amu"``).
    """
    Ha = H[ad.rows].astype(np.float64)
    ratio = num / np.where(den == 0, 1.0, den)
    if exponent != 1:
        ratio **= exponent
    t = 1.0 / (1.0 + ad.mu[:, None])
    Ha = Ha * ratio * t + ad.H0 * (ad.mu[:, None] * t)
    anchored = ad.mu[:, None] * ad.H0 > 0
    Ha[(Ha < np.finfo(np.float64).eps) & ~anchored] = 0.0  # as the plain updates (β <= 1)
    # a learned value > 0 keeps its adapted value > 0 in H's dtype (a finite penalty)
    tiny = float(np.finfo(H.dtype).tiny)
    np.maximum(Ha, tiny, out=Ha, where=anchored & (Ha < tiny))
    H[ad.rows] = Ha
