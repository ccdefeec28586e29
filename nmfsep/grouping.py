"""Turning the k components of a blind factorization into S sources.

``V ≈ W @ H`` with the activations ``W (n_frames, k)`` and the spectral atoms
``H (k, n_bins)``. Blind NMF finds components (notes, drum hits, noise) rather
than instruments; grouping clusters them into sources:

``"timbre"``
    Hierarchical (Ward) clustering of the spectral envelopes of the atoms: the
    MFCCs of each atom's log-mel spectrum, without the 0th coefficient, so that
    loudness and, largely, pitch matter less than timbre.
``"activations"``
    Average-linkage clustering of the activations' correlation: components that
    play together belong together.
``"combined"``
    Average-linkage clustering of the mean of both distances (each scaled to [0, 1]).
``"kmeans"``
    k-means (scikit-learn, seeded, best of :data:`KMEANS_STARTS` starts) of the same
    MFCCs taken of each atom's power spectrum (``H ** 2``, as librosa computes MFCCs
    from a power spectrogram), the clustering of the librosa + scikit-learn pipeline.
    Power MFCCs keep more of the partials of low notes, so pitch weighs more than in
    "timbre". With 12 components per source it separated held-out three-source mixtures better
    than "timbre" with 8 on every sound family, two-source ones not
    (:data:`nmfsep.plan.MANY_SOURCES`).
``"register"``
    Exact k-means (:func:`kmeans_1d`) of the share of each atom's magnitude below
    :data:`REGISTER_SPLIT_HZ` (:func:`register_features`; with ``positions``, Ward
    clustering of both, as for "timbre"): bass notes and kick-drum
    bodies apart from the instruments above them, whatever their timbre. For three
    sources or more (without ``positions``), the low group found that way is one source
    and the atoms above it are divided among the others by "kmeans". The harmonic
    part of a percussion-aware run (:mod:`nmfsep.percussive`) is grouped this way: on
    held-out band mixtures it beat "timbre" on every sound family, the bass stem most
    (``benchmarks/bench_blind.py``); on four-source mixtures (piano, flute, bass, drums)
    the timbre split above the low group gained +1.0 to +3.9 dB median SDR over
    dividing all by register, on every sound family.

With ``positions`` (multichannel factorizations, :func:`nmfsep.ntf.gain_positions`),
each component's position joins its timbre: the Ward and k-means features get the
position vectors, scaled so that hard left to hard right weighs ``position_weight`` times the
spread of the timbre features; the distances of the other methods get
``position_weight`` times the distance of the positions (scaled to [0, 1]).
Components at one position are grouped by timbre alone.

Everything is deterministic ("kmeans" starts from a fixed seed), so a given
factorization always gives the same groups, named ``source_1`` ... ``source_S``
in ascending order of the spectral centroid of their energy (low sources first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from nmfsep._checks import check_int
from nmfsep._checks import is_int as _is_int
from nmfsep.exceptions import ParameterError

__all__ = [
    "GROUPING_METHODS", "group_components", "group_components_stats", "ActivationStats",
    "components_groups", "source_names", "GroupingMethod", "register_features",
    "REGISTER_SPLIT_HZ", "kmeans_1d",
]

#: The type of a grouping method (one of :data:`GROUPING_METHODS`).
GroupingMethod = Literal["timbre", "kmeans", "activations", "combined", "register"]
#: Methods accepted by :func:`group_components`.
GROUPING_METHODS: tuple[GroupingMethod, ...] = (
    "timbre", "kmeans", "activations", "combined", "register")
#: Frequency (Hz) below which an atom's magnitude counts as low register: about the
#: top of a bass line's fundamentals (G3, 196 Hz). Fixed beforehand, not tuned; 150 and
#: 300 Hz were measured too, and leave-one-family-out kept 200 on every fold.
REGISTER_SPLIT_HZ = 200.0
#: Weight of the components' positions against their timbre (see the module docstring).
POSITION_WEIGHT = 2.0
#: Starts of the "kmeans" grouping (scikit-learn's ``n_init``; the best is kept).
KMEANS_STARTS = 10

_N_MELS = 40
_N_MFCC = 13  # c1 .. c12 are used
_TOP_DB = 80.0


def components_groups(k: int) -> dict[str, list[int]]:
    """One group per component, named with zero-padded numbers.

    Parameters
    ----------
    k : int
        Number of components, >= 1.

    Returns
    -------
    dict[str, list[int]]
        ``{"component_01": [0], "component_02": [1], ...}``; the numbers have at least
        two digits and as many as ``k`` has (``component_001`` for ``k >= 100``).

    Raises
    ------
    ParameterError
        If ``k`` is not an int >= 1.

    Examples
    --------
    >>> components_groups(3)
    {'component_01': [0], 'component_02': [1], 'component_03': [2]}
    """
    check_int(k, "k", 1)
    width = max(2, len(str(int(k))))
    return {f"component_{i + 1:0{width}d}": [i] for i in range(int(k))}


def source_names(n_sources: int) -> list[str]:
    """Names of the groups made by :func:`group_components`.

    Parameters
    ----------
    n_sources : int
        Number of sources S >= 1.

    Returns
    -------
    list of str
        ``["source_1", ..., "source_S"]``.
    """
    check_int(n_sources, "n_sources", 1)
    return [f"source_{i + 1}" for i in range(int(n_sources))]


def _check_factors(W: object, H: object) -> tuple[np.ndarray, np.ndarray]:
    W = np.asarray(W)
    H = np.asarray(H)
    if W.ndim != 2 or H.ndim != 2:
        raise ParameterError(
            f"W must be (n_frames, k) and H (k, n_bins), got shapes {W.shape} and {H.shape}"
        )
    if W.shape[1] != H.shape[0] or H.shape[0] < 1:
        raise ParameterError(
            f"W has {W.shape[1]} components (columns) but H has {H.shape[0]} (rows); "
            "W must be (n_frames, k) and H (k, n_bins)"
        )
    for name, arr in (("W", W), ("H", H)):
        if arr.dtype.kind not in "fiu":
            raise ParameterError(f"{name} must be a real array, got dtype {arr.dtype}")
        if not np.isfinite(arr).all():
            raise ParameterError(f"{name} contains NaN or Inf values")
        if (arr < 0).any():
            raise ParameterError(f"{name} must be non-negative")
    return W.astype(np.float64), H.astype(np.float64)


def timbre_features(H: np.ndarray, *, sr: float, n_fft: int, power: float = 1.0) -> np.ndarray:
    """MFCC-like spectral-envelope features of every atom.

    Parameters
    ----------
    H : np.ndarray [shape=(k, n_bins)], non-negative
        Spectral atoms; ``n_bins == n_fft // 2 + 1``.
    sr : float
        Sample rate in Hz.
    n_fft : int
        FFT size the atoms were computed with.
    power : float
        The features are those of ``H ** power`` (2: of the atoms' power spectra),
        each atom scaled to peak 1 first, so that they do not depend on its scale.

    Returns
    -------
    F : np.ndarray [shape=(k, 12)], float64
        Coefficients c1 .. c12 of the DCT of each atom's log-mel spectrum (40 mel
        bands, each atom relative to its own peak, floored 80 dB below it), i.e.
        ``librosa.feature.mfcc(S=librosa.power_to_db(mel @ atom, ref=max))`` without c0.
    """
    import librosa
    import scipy.fft

    mel = librosa.filters.mel(sr=float(sr), n_fft=int(n_fft), n_mels=_N_MELS)  # (n_mels, n_bins)
    A = np.asarray(H, dtype=np.float64)
    A = A / np.maximum(A.max(axis=1, keepdims=True), np.finfo(np.float64).tiny)  # peak 1
    S = A**power @ mel.T.astype(np.float64)  # (k, n_mels)
    amin = 1e-10
    peak = np.maximum(S.max(axis=1, keepdims=True), amin)
    log_s = 10.0 * np.log10(np.maximum(S, amin)) - 10.0 * np.log10(peak)
    log_s = np.maximum(log_s, -_TOP_DB)
    cepstrum = scipy.fft.dct(log_s, type=2, norm="ortho", axis=1)
    return cepstrum[:, 1:_N_MFCC]


def register_features(H: np.ndarray, *, sr: float, n_fft: int) -> np.ndarray:
    """Share of every atom's magnitude below :data:`REGISTER_SPLIT_HZ`.

    Parameters
    ----------
    H, sr, n_fft
        Spectral atoms ``(k, n_bins)``, sample rate and FFT size, as for
        :func:`timbre_features`.

    Returns
    -------
    F : np.ndarray [shape=(k, 1)], float64
        ``sum(H[i, f < 200 Hz]) / sum(H[i])`` in [0, 1] (0 for an all-zero atom).
    """
    H = np.asarray(H, dtype=np.float64)
    low = np.arange(H.shape[1]) * (float(sr) / int(n_fft)) < REGISTER_SPLIT_HZ
    total = H.sum(axis=1)
    share = np.divide(H[:, low].sum(axis=1), total, out=np.zeros_like(total),
                      where=total > 0)
    return share[:, None]


def kmeans_1d(x: np.ndarray, n_clusters: int) -> np.ndarray:
    """Exact k-means of one feature, by dynamic programming.

    The split of ``x`` into ``n_clusters`` intervals with the least within-cluster sum
    of squares (as in Ckmeans.1d.dp, Wang & Song 2011; deterministic, no random start).

    Parameters
    ----------
    x : np.ndarray [shape=(k,)]
        Values.
    n_clusters : int
        Clusters, ``1 <= n_clusters <= k``.

    Returns
    -------
    labels : np.ndarray [shape=(k,)], intp
        Cluster of every value, 0 for the lowest values; of equally good splits, the
        one whose last clusters begin earliest.
    """
    x = np.asarray(x, dtype=np.float64)
    k = x.size
    order = np.argsort(x, kind="stable")
    xs = x[order]
    s1 = np.concatenate([[0.0], np.cumsum(xs)])
    s2 = np.concatenate([[0.0], np.cumsum(xs * xs)])

    def sse(i: np.ndarray, j: int) -> np.ndarray:  # of the values xs[i:j], each i
        total = s1[j] - s1[i]
        return s2[j] - s2[i] - total * total / (j - i)

    # cost[m, j]: best split of xs[:j] into m + 1 clusters; start[m, j]: where the last begins
    cost = np.full((n_clusters, k + 1), np.inf)
    start = np.zeros((n_clusters, k + 1), dtype=np.intp)
    cost[0, 1:] = s2[1:] - (s1[1:] ** 2) / np.arange(1, k + 1)  # xs[:j], one cluster
    for m in range(1, n_clusters):
        for j in range(m + 1, k + 1):
            starts = np.arange(m, j)
            c = cost[m - 1, starts] + sse(starts, j)
            best = int(np.argmin(c))  # the first of equal costs
            cost[m, j], start[m, j] = c[best], starts[best]
    labels_sorted = np.zeros(k, dtype=np.intp)
    j = k
    for m in range(n_clusters - 1, -1, -1):
        i = int(start[m, j]) if m > 0 else 0
        labels_sorted[i:j] = m
        j = i
    labels = np.empty(k, dtype=np.intp)
    labels[order] = labels_sorted
    return labels


def _activation_distance(W: np.ndarray) -> np.ndarray:
    """``1 - correlation`` of the activations' columns, in [0, 2]; (k, k)."""
    Wc = W - W.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(Wc, axis=0)
    norms[norms == 0] = 1.0
    corr = (Wc.T @ Wc) / np.outer(norms, norms)
    corr = np.clip(corr, -1.0, 1.0)
    D = 1.0 - corr
    np.fill_diagonal(D, 0.0)
    return (D + D.T) / 2.0


def _timbre_distance(H: np.ndarray, sr: float, n_fft: int) -> np.ndarray:
    F = timbre_features(H, sr=sr, n_fft=n_fft)
    diff = F[:, None, :] - F[None, :, :]
    return np.sqrt((diff**2).sum(axis=-1))


def _cut(Z: np.ndarray, k: int, n_clusters: int) -> np.ndarray:
    """Cluster labels after the first ``k - n_clusters`` merges of a linkage (exactly S)."""
    parent = list(range(2 * k - 1))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for step in range(k - n_clusters):
        a, b = int(Z[step, 0]), int(Z[step, 1])
        new = k + step
        parent[find(a)] = new
        parent[find(b)] = new
    roots = [find(i) for i in range(k)]
    relabel: dict[int, int] = {}
    return np.array([relabel.setdefault(r, len(relabel)) for r in roots], dtype=np.intp)


def group_components(
    W: np.ndarray,
    H: np.ndarray,
    n_sources: int,
    *,
    method: GroupingMethod = "timbre",
    sr: float,
    n_fft: int,
    positions: np.ndarray | None = None,
    position_weight: float | None = None,
) -> dict[str, list[int]]:
    """Cluster the components of a blind factorization into sources.

    Parameters
    ----------
    W : np.ndarray [shape=(n_frames, k)], non-negative
        Activations.
    H : np.ndarray [shape=(k, n_bins)], non-negative
        Spectral atoms, ``n_bins == n_fft // 2 + 1``.
    n_sources : int
        Number of sources S, ``1 <= S <= k``.
    method : {"timbre", "kmeans", "activations", "combined", "register"}
        Clustering criterion; see the module documentation.
    sr : float
        Sample rate in Hz of the analysis (for the mel scale and centroids).
    n_fft : int
        FFT size of the analysis.
    positions : np.ndarray [shape=(k, n_channels)] or None
        Unit vectors of the components' channel gains
        (:func:`nmfsep.ntf.gain_positions`), clustered with the timbre; None: timbre
        (or activations) alone.
    position_weight : float or None
        Weight of the positions (see the module documentation), >= 0; None:
        :data:`POSITION_WEIGHT`.

    Returns
    -------
    groups : dict[str, list[int]]
        ``{"source_1": [...], ..., "source_S": [...]}``: every component in exactly
        one group, each group non-empty with ascending indices; the groups are
        ordered by ascending spectral centroid of their energy (``sum_t W[t, i] *
        H[i]`` summed over the group), ties by their smallest index.

    Raises
    ------
    ParameterError
        If the shapes disagree, ``n_sources`` is not in ``[1, k]``, ``method`` is
        unknown, or ``n_fft`` does not match ``n_bins``.

    See Also
    --------
    components_groups : one group per component.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> W, H = rng.random((50, 4)), rng.random((4, 513))
    >>> sorted(group_components(W, H, 2, sr=22050, n_fft=1024))
    ['source_1', 'source_2']
    """
    W, H = _check_factors(W, H)
    positions = _check_positions(positions, H.shape[0])
    return _group(H, n_sources, method, sr, n_fft, lambda: _activation_distance(W),
                  W.sum(axis=0), positions,
                  POSITION_WEIGHT if position_weight is None else float(position_weight))


def _check_positions(positions: np.ndarray | None, k: int) -> np.ndarray | None:
    """Return ``positions`` as float64 ``(k, n_channels)``, or None; refuse other shapes."""
    if positions is None:
        return None
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[0] != k:
        raise ParameterError(
            f"positions must have shape (k={k}, n_channels), got {positions.shape}"
        )
    return positions


class ActivationStats:
    """Sums of the activations over blocks: enough to group without keeping W.

    Blind streaming (:mod:`nmfsep.stream`) never holds the whole ``W (n_frames, k)``;
    the correlation of its columns (the ``"activations"`` and ``"combined"``
    criteria) and the energy of each component (the order of the groups) only need
    the number of frames, the column sums and the Gram matrix ``W.T @ W``, added up
    block by block in float64.

    Parameters
    ----------
    k : int
        Number of components, >= 1.
    """

    def __init__(self, k: int):
        check_int(k, "k", 1)
        self.n = 0
        self.sum = np.zeros(int(k), dtype=np.float64)
        self.gram = np.zeros((int(k), int(k)), dtype=np.float64)

    def update(self, W: np.ndarray) -> None:
        """Add a block of activations, shape ``(n_frames_b, k)``."""
        W64 = np.asarray(W, dtype=np.float64)
        self.n += W64.shape[0]
        self.sum += W64.sum(axis=0)
        self.gram += W64.T @ W64

    def distance(self) -> np.ndarray:
        """``1 - correlation`` of the activations' columns, as for a whole ``W``; (k, k)."""
        n = max(self.n, 1)
        cov = self.gram - np.outer(self.sum, self.sum) / n  # = Wc.T @ Wc
        norms = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        norms[norms == 0] = 1.0
        corr = np.clip(cov / np.outer(norms, norms), -1.0, 1.0)
        D = 1.0 - corr
        np.fill_diagonal(D, 0.0)
        return (D + D.T) / 2.0


def group_components_stats(
    stats: ActivationStats,
    H: np.ndarray,
    n_sources: int,
    *,
    method: GroupingMethod = "timbre",
    sr: float,
    n_fft: int,
    positions: np.ndarray | None = None,
) -> dict[str, list[int]]:
    """:func:`group_components` from activation statistics instead of the whole ``W``.

    ``"timbre"`` clusters the atoms ``H`` alone, so it gives the groups
    :func:`group_components` gives; the activation statistics order the groups
    (their energy) and give the correlation of ``"activations"`` and
    ``"combined"`` (equal to the whole-``W`` one up to rounding).

    Parameters
    ----------
    stats : ActivationStats
        The activations' statistics over every frame.
    H : np.ndarray [shape=(k, n_bins)], non-negative
        Spectral atoms.
    n_sources, method, sr, n_fft, positions
        As for :func:`group_components`.

    Returns
    -------
    groups : dict[str, list[int]]
        As :func:`group_components`.

    Raises
    ------
    ParameterError
        As :func:`group_components`, or if ``stats`` is not for ``k`` components.
    """
    if not isinstance(stats, ActivationStats) or stats.sum.shape[0] != np.shape(H)[0]:
        raise ParameterError(
            f"stats must be the ActivationStats of the {np.shape(H)[0]} components of H, "
            f"got {type(stats).__name__}"
        )
    _, H = _check_factors(stats.sum[None].astype(np.float32), H)
    positions = _check_positions(positions, H.shape[0])
    return _group(H, n_sources, method, sr, n_fft, stats.distance, stats.sum, positions)


def _register_then_timbre(H: np.ndarray, low_share: np.ndarray, n_sources: int, sr: float,
                          n_fft: int) -> np.ndarray:
    """Labels of "register" for three sources or more: the low group, then "kmeans" above it.

    The atoms are split in two by their share below :data:`REGISTER_SPLIT_HZ`
    (:func:`kmeans_1d`); the low ones are the last source, the others are divided into
    ``n_sources - 1`` by "kmeans". With fewer atoms above than that, the split of
    :func:`kmeans_1d` into ``n_sources`` is used.
    """
    high = np.flatnonzero(kmeans_1d(low_share, 2) == 0)
    if high.size < n_sources - 1:
        return kmeans_1d(low_share, n_sources)
    labels = np.full(H.shape[0], n_sources - 1, dtype=np.intp)
    labels[high] = _labels(H[high], n_sources - 1, "kmeans", sr, n_fft, _no_distance, None, 0.0)
    return labels


def _no_distance() -> np.ndarray:
    raise AssertionError("k-means of the timbre uses no activation distance")


def _labels(H: np.ndarray, n_sources: int, method: str, sr: float, n_fft: int,
            activation_distance: Callable[[], np.ndarray], positions: np.ndarray | None,
            position_weight: float) -> np.ndarray:
    """Cluster label of every component, in ``range(n_sources)`` (arguments checked)."""
    k = H.shape[0]
    if n_sources == 1:
        return np.zeros(k, dtype=np.intp)
    if n_sources == k:
        return np.arange(k, dtype=np.intp)
    if method == "register" and positions is None:
        low_share = register_features(H, sr=sr, n_fft=n_fft)[:, 0]
        if n_sources == 2:
            return kmeans_1d(low_share, 2)
        return _register_then_timbre(H, low_share, n_sources, sr, n_fft)
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    if method in ("timbre", "kmeans", "register"):
        if method == "register":
            F = register_features(H, sr=sr, n_fft=n_fft)
        else:
            F = timbre_features(H, sr=sr, n_fft=n_fft, power=2.0 if method == "kmeans" else 1.0)
        if positions is not None:
            spread = float(np.sqrt(((F - F.mean(axis=0)) ** 2).sum(axis=1).mean()))
            F = np.hstack([F, positions * (position_weight * spread / np.sqrt(2.0))])
        if method == "kmeans":
            labels = _kmeans(F, n_sources)
            if labels is not None:
                return labels
        Z = linkage(F, method="ward")  # "kmeans" that left a cluster empty: Ward
    else:
        D = activation_distance()
        if method == "combined":
            T = _timbre_distance(H, sr, n_fft)
            scale = T.max()
            D = D / 2.0 + (T / scale if scale > 0 else T)
        if positions is not None:
            diff = positions[:, None, :] - positions[None, :, :]
            D = D + position_weight * np.sqrt((diff**2).sum(axis=-1)) / np.sqrt(2.0)
        Z = linkage(squareform(D, checks=False), method="average")
    return _cut(Z, k, n_sources)


def _kmeans(F: np.ndarray, n_clusters: int) -> np.ndarray | None:
    """k-means labels of the rows of ``F`` (seeded), or None if a cluster came out empty.

    A cluster is empty only when ``F`` has fewer distinct rows than ``n_clusters``
    (identical atoms).
    """
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # "fewer distinct points than clusters": handled below
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = KMeans(n_clusters=n_clusters, n_init=KMEANS_STARTS,
                        random_state=0).fit_predict(F)
    labels = labels.astype(np.intp)
    return labels if np.unique(labels).size == n_clusters else None


def _group(H: np.ndarray, n_sources: int, method: str, sr: float, n_fft: int,
           activation_distance: Callable[[], np.ndarray], weights: np.ndarray,
           positions: np.ndarray | None = None, position_weight: float = POSITION_WEIGHT,
           ) -> dict[str, list[int]]:
    """Cluster and order the groups (``weights``: each component's total activation)."""
    k = H.shape[0]
    if not _is_int(n_sources) or not 1 <= n_sources <= k:
        raise ParameterError(
            f"n_sources must be an int in [1, k={k}], got {n_sources!r}; "
            "use more components (k) or fewer sources"
        )
    if method not in GROUPING_METHODS:
        raise ParameterError(f"grouping method must be one of {GROUPING_METHODS}, got {method!r}")
    if not _is_int(n_fft) or n_fft // 2 + 1 != H.shape[1]:
        raise ParameterError(
            f"n_fft={n_fft!r} gives {int(n_fft) // 2 + 1 if _is_int(n_fft) else '?'} bins but "
            f"the atoms have {H.shape[1]}; pass the n_fft of the analysis"
        )
    if not np.isfinite(float(sr)) or float(sr) <= 0:
        raise ParameterError(f"sr must be a positive sample rate in Hz, got {sr!r}")
    n_sources = int(n_sources)

    labels = _labels(H, n_sources, method, sr, n_fft, activation_distance, positions,
                     position_weight)

    # Order the groups by the spectral centroid of their energy.
    freqs = np.linspace(0.0, float(sr) / 2.0, H.shape[1])
    members = [np.flatnonzero(labels == c) for c in range(n_sources)]
    keys = []
    for idx in members:
        spectrum = weights[idx] @ H[idx]  # (n_bins,)
        total = spectrum.sum()
        centroid = float(spectrum @ freqs / total) if total > 0 else np.inf
        keys.append((centroid, int(idx.min())))
    order = sorted(range(n_sources), key=lambda c: keys[c])
    return {
        name: [int(i) for i in members[c]]
        for name, c in zip(source_names(n_sources), order, strict=True)
    }
