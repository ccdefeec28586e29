"""Initial activations and atoms for NMF.

The methods are scikit-learn's (``_initialize_nmf``): scaled absolute Gaussians
(``"random"``, identical to scikit-learn's for the same integer seed) and the
NNDSVD family of Boutsidis & Gallopoulos (2008). NNDSVD starts use an exact SVD
for matrices up to 1e6 entries and a randomized SVD above, whereas scikit-learn
always uses its randomized SVD, so NNDSVD starts can differ slightly from
scikit-learn's; pass ``init="custom"`` matrices to compare the two exactly.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_choice, check_int, fail, is_int
from .exceptions import ParameterError

__all__ = ["INIT_METHODS", "check_random_state", "initialize", "randomized_svd"]

INIT_METHODS = ("random", "nndsvd", "nndsvda", "nndsvdar")


def check_random_state(seed: None | int | np.random.Generator | np.random.RandomState):
    """Turn a seed into a random generator.

    Parameters
    ----------
    seed : None, int, np.random.RandomState or np.random.Generator
        ``None`` draws fresh entropy; an int gives a reproducible
        ``RandomState`` (the generator scikit-learn uses, so the same seed gives
        the same random initialisation as scikit-learn).

    Returns
    -------
    np.random.RandomState or np.random.Generator
    """
    if seed is None:
        return np.random.RandomState()
    if isinstance(seed, (np.random.RandomState, np.random.Generator)):
        return seed
    if is_int(seed):
        return np.random.RandomState(check_int(seed, "random_state", 0, 2**32 - 1))
    raise fail("random_state", "None, an int or a numpy generator", seed)


def _standard_normal(rng, size: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(size=size)


def randomized_svd(
    M: np.ndarray, k: int, *, n_oversamples: int = 10, n_iter: int = 4, random_state=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute a truncated SVD by randomized range finding (Halko, Martinsson & Tropp 2011).

    Parameters
    ----------
    M : np.ndarray [shape=(m, n)]
        Matrix to decompose.
    k : int
        Number of singular triplets.
    n_oversamples, n_iter : int
        Extra random directions and power iterations (scikit-learn's defaults).
    random_state : seed, optional
        See :func:`check_random_state`.

    Returns
    -------
    U : np.ndarray [shape=(m, k)]
    S : np.ndarray [shape=(k,)]
    Vt : np.ndarray [shape=(k, n)]
        With signs fixed so that the largest entry of each column of U is positive.
    """
    m, n = M.shape
    if min(m, n) <= 2 * (k + n_oversamples) or m * n <= 1_000_000:
        U, S, Vt = np.linalg.svd(M, full_matrices=False)
        U, S, Vt = U[:, :k], S[:k], Vt[:k]
    else:
        rng = check_random_state(random_state)
        Q = _standard_normal(rng, (n, k + n_oversamples)).astype(M.dtype, copy=False)
        Q, _ = np.linalg.qr(M @ Q)
        for _ in range(n_iter):
            Q, _ = np.linalg.qr(M.T @ Q)
            Q, _ = np.linalg.qr(M @ Q)
        Ub, S, Vt = np.linalg.svd(Q.T @ M, full_matrices=False)
        U = (Q @ Ub)[:, :k]
        S, Vt = S[:k], Vt[:k]
    # deterministic signs
    signs = np.sign(U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])])
    signs[signs == 0] = 1
    return U * signs, S, Vt * signs[:, None]


def initialize(
    V: np.ndarray,
    n_components: int,
    init: str = "nndsvda",
    *,
    random_state=None,
    eps: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """Return initial activations W and atoms H for ``V ≈ W @ H``.

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, n_bins)], non-negative
        The data.
    n_components : int
        Number of atoms k.
    init : {"random", "nndsvd", "nndsvda", "nndsvdar"}, default="nndsvda"
        ``"random"``: ``|N(0,1)| * sqrt(mean(V) / k)``. ``"nndsvd"``: the
        non-negative parts of the leading singular vectors (sparse, keeps exact
        zeros — a poor start for multiplicative updates); ``"nndsvda"``: zeros
        filled with the mean of V; ``"nndsvdar"``: zeros filled with small
        random values.
    random_state : seed, optional
        Makes ``"random"``, ``"nndsvdar"`` and large SVDs reproducible.
    eps : float, default=1e-6
        NNDSVD values below ``eps`` are set to zero.

    Returns
    -------
    W : np.ndarray [shape=(n_frames, k)], dtype of V
    H : np.ndarray [shape=(k, n_bins)], dtype of V
    """
    check_choice(init, "init", INIT_METHODS)
    n_samples, n_features = V.shape
    dtype = V.dtype
    if init == "random":
        rng = check_random_state(random_state)
        avg = np.sqrt(V.mean() / n_components)
        H = avg * _standard_normal(rng, (n_components, n_features)).astype(dtype, copy=False)
        W = avg * _standard_normal(rng, (n_samples, n_components)).astype(dtype, copy=False)
        return np.abs(W).astype(dtype, copy=False), np.abs(H).astype(dtype, copy=False)

    if n_components > min(n_samples, n_features):
        raise ParameterError(
            f"init={init!r} needs n_components <= min(n_frames, n_bins) = "
            f"{min(n_samples, n_features)}, got {n_components}; use init='random'"
        )
    U, S, Vt = randomized_svd(V, n_components, random_state=random_state)
    W = np.zeros_like(U)
    H = np.zeros_like(Vt)
    W[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    H[0, :] = np.sqrt(S[0]) * np.abs(Vt[0, :])
    for j in range(1, n_components):
        x, y = U[:, j], Vt[j, :]
        x_p, y_p = np.maximum(x, 0), np.maximum(y, 0)
        x_n, y_n = np.abs(np.minimum(x, 0)), np.abs(np.minimum(y, 0))
        x_p_nrm, y_p_nrm = np.linalg.norm(x_p), np.linalg.norm(y_p)
        x_n_nrm, y_n_nrm = np.linalg.norm(x_n), np.linalg.norm(y_n)
        m_p, m_n = x_p_nrm * y_p_nrm, x_n_nrm * y_n_nrm
        if m_p > m_n:
            u, v, sigma = x_p / x_p_nrm, y_p / y_p_nrm, m_p
        elif m_n > 0:
            u, v, sigma = x_n / x_n_nrm, y_n / y_n_nrm, m_n
        else:  # a zero singular vector (rank-deficient V): leave the component empty
            continue
        lbd = np.sqrt(S[j] * sigma)
        W[:, j] = lbd * u
        H[j, :] = lbd * v
    W[W < eps] = 0
    H[H < eps] = 0
    if init == "nndsvda":
        avg = V.mean()
        W[W == 0] = avg
        H[H == 0] = avg
    elif init == "nndsvdar":
        rng = check_random_state(random_state)
        avg = V.mean()
        W[W == 0] = np.abs(avg * _standard_normal(rng, (int(np.sum(W == 0)),)) / 100)
        H[H == 0] = np.abs(avg * _standard_normal(rng, (int(np.sum(H == 0)),)) / 100)
    return W.astype(dtype, copy=False), H.astype(dtype, copy=False)
