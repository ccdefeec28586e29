"""Percussion-aware blind factorization: drums apart first, then the harmonic sources.

Blind NMF of a band (drums + bass + keys) puts the kick drum and the bass in the same
components, and no grouping of components can pull them apart afterwards (Spiertz &
Gnann 2009). Here the spectrogram is split first, by median-filter harmonic-percussive
separation with a margin (FitzGerald 2010; Driedger, Müller & Disch 2014; the
percussive mask of :func:`librosa.decompose.hpss`, computed in :func:`hpss_split`)::

    V (n_frames, n_bins) ──hpss──▶ V_p = M_p · V      (percussive, margin-strict)
                                   V_h = V - V_p      (harmonic and residual)
    V_p ──nmf──▶ W_p, H_p   (k_p components, the drums')
    V_h ──nmf──▶ W_h, H_h   (k - k_p components, the S - 1 harmonic sources')
    V   ──nmf──▶ W, H       (from W = [W_h, W_p], H = [H_h; H_p], a few joint iterations)
    W, H ──group──▶ "drums": the percussive components but tonal attacks, plus flat
                    harmonic ones; the other harmonic ones by register into S - 1 sources
                    (from S = 4: the low group, then k-means of the timbre above it)

The two factorizations are concatenated, ``W = [W_h, W_p]``, ``H = [H_h; H_p]``
(``W_h H_h + W_p H_p ≈ V_h + V_p = V``), and refined together on ``V`` for
:data:`DEFAULT_REFINE_ITER` iterations: the split is hard and a drum's tonal body or a
note's attack lands on the wrong side of it; the joint iterations let each component
take back its share of the mixture. The components are then grouped on their final
atoms: a percussive component whose atom is tonal and not low (a note's attack, which
the median filter calls percussive) goes with the harmonic ones, a flat (noise-like)
harmonic one with the drums. Everything downstream
(α-Wiener masks of the groups, stems adding up to the mixture) is the blind pipeline's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from nmfsep._checks import check_int, check_real
from nmfsep.exceptions import ParameterError
from nmfsep.grouping import (
    GroupingMethod,
    group_components,
    register_features,
    source_names,
)
from nmfsep.nmf import nmf

__all__ = [
    "DRUMS", "DEFAULT_MARGIN", "DEFAULT_KERNEL", "DEFAULT_FLATNESS", "DEFAULT_GROUPING",
    "DEFAULT_REFINE_ITER", "DEFAULT_TONAL", "TONAL_MAX_LOW_SHARE",
    "atom_flatness",
    "hpss_split", "percussive_share", "percussive_names",
    "PercussiveFit", "factorize_percussive",
]

#: Name of the percussive stem.
DRUMS = "drums"
#: Margin of the percussive mask (Driedger et al. 2014): a bin is percussive when its
#: percussive enhancement exceeds ``margin`` times its harmonic one.
DEFAULT_MARGIN = 1.0
#: Grouping of the harmonic components: by register (the share of each atom below
#: 200 Hz, :func:`nmfsep.grouping.register_features`), so that the bass is a stem of its
#: own. On held-out bands it beat "timbre" on all four sound families (+0.4 to +0.9 dB
#: median SDR, the bass stem +0.4 to +9.7 dB; ``benchmarks/bench_blind.py --tasks band
#: --select``, whose leave-one-family-out choice it was on every fold). With three
#: harmonic sources or more, the atoms above the low group are divided by k-means of
#: their timbre: on four-source mixtures (``--tasks quartet``) +1.0 to +3.9 dB on every
#: family over dividing all by register.
DEFAULT_GROUPING: GroupingMethod = "register"
#: Median-filter lengths ``(harmonic: frames, percussive: bins)``.
DEFAULT_KERNEL = (17, 17)
#: Harmonic components whose atom is flatter than this (spectral flatness, Wiener
#: entropy) join the drums, as noise-like drum sounds the median filter left in the
#: harmonic part; None: none do (the default). At stop 30 leave-one-family-out chose 0.1
#: on four families (it avoided bass stems that collapsed without it); since the
#: components are grouped after the joint iterations, with the tonal rule, and with
#: the OPL3 family, it chooses none on every fold: held out on 9 bands a family
#: 6.25 / 9.25 / 5.96 / 2.58 / 4.88 dB (FluidR3, MuseScore, TimGM6mb, AVL, OPL3) against
#: 6.05 / 9.08 / 6.02 / 2.58 / 4.22 with 0.1, bass stems equal or better
#: (``benchmarks/render.py --what families`` with the five, then ``bench_blind.py --tasks
#: band --cross --no-pipeline --methods "" --candidates "$B,$N" --select``; B, N:
#: bench_blind's ``PRODUCT`` with and without ``:f0.1``).
DEFAULT_FLATNESS: float | None = None
#: Joint iterations on the whole spectrogram after the split's two factorizations (0:
#: none). Chosen on held-out bands (``benchmarks/bench_blind.py --tasks band --cross
#: --select`` over 0, 10, 20, 30, 50 and 100): leave-one-family-out picked 20 when
#: FluidR3 or MuseScore was held out and 50 when TimGM6mb or AVL was (+0.05 to +0.38 dB
#: on the held-out family); 30 is best on all four together. 100 drifts (AVL -0.04,
#: TimGM6mb -0.30 against none): the atoms leave the side of the split they were
#: grouped on.
DEFAULT_REFINE_ITER = 30
#: Percussive components whose atom is more tonal than this (spectral flatness below
#: it) and has less than :data:`TONAL_MAX_LOW_SHARE` of its magnitude below 200 Hz are
#: notes' attacks the median filter called percussive: they are grouped with the
#: harmonic components (kick drums, tonal but low, stay drums). Chosen on held-out
#: bands (``benchmarks/bench_blind.py --tasks band --cross --select`` over none, 0.005,
#: 0.01, 0.02, 0.03 and 0.05): FluidR3 and MuseScore chose 0.02 for TimGM6mb and AVL
#: (held out +0.77 and +0.33 dB median SDR), TimGM6mb and AVL tie from 0.005 to 0.03
#: (held-out FluidR3 and MuseScore at 0.005: +0.51 and +1.82 dB); 0.02 is best on all
#: four together. Moving every tonal component, kicks too, did not carry over.
DEFAULT_TONAL = 0.02
#: See :data:`DEFAULT_TONAL`.
TONAL_MAX_LOW_SHARE = 0.5


def hpss_split(
    V: np.ndarray, *, kernel: tuple[int, int] = DEFAULT_KERNEL, margin: float = DEFAULT_MARGIN,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a spectrogram into its harmonic and percussive parts.

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, n_bins)], non-negative
        Spectrogram, one row per frame. Not modified.
    kernel : (int, int)
        Median-filter lengths: harmonic (along time, frames) and percussive (along
        frequency, bins), each >= 1.
    margin : float
        Margin of the percussive mask, >= 1 (1: plain soft masks).

    Returns
    -------
    V_h, V_p : np.ndarray [shape=(n_frames, n_bins)]
        Harmonic (with the residual of the margin) and percussive parts, of ``V``'s
        dtype, non-negative, ``V_h + V_p == V`` up to rounding.
    """
    from scipy.ndimage import median_filter  # not at import: `nmfsep --help` stays light

    check_real(margin, "margin", 1.0)
    for value, name in zip(kernel, ("harmonic kernel", "percussive kernel"), strict=True):
        check_int(value, name, 1)
    V = np.asarray(V)
    S = np.ascontiguousarray(V.T, dtype=np.float32)  # (n_bins, n_frames): faster filters
    # librosa.decompose.hpss(S.T, kernel, power=2, mask=True, margin=(1, margin))'s
    # percussive mask, written out: its two median filters run side by side (scipy
    # releases the GIL), and the harmonic mask it also computes is not needed (on a
    # 3-minute 44.1 kHz song 21-24 s became about 6 s; equal to float32 rounding, tested)
    with ThreadPoolExecutor(2) as pool:
        along_time = pool.submit(median_filter, S, size=(1, int(kernel[0])), mode="reflect")
        along_freq = pool.submit(median_filter, S, size=(int(kernel[1]), 1), mode="reflect")
        harm, perc = along_time.result(), along_freq.result()
    harm *= np.float32(margin)
    Z = np.maximum(perc, harm, out=S)  # fresh memory is slow to touch: S is reused
    silent = Z < np.finfo(np.float32).tiny
    Z[silent] = 1.0
    perc /= Z
    perc *= perc
    harm /= Z
    harm *= harm
    harm += perc
    harm[silent] = 1.0
    mask_p = np.divide(perc, harm, out=perc)
    mask_p[silent] = 0.5 if margin == 1 else 0.0  # librosa's split_zeros
    V_p = np.multiply(V, mask_p.T, dtype=V.dtype)
    V_h = np.subtract(V, V_p)
    np.maximum(V_h, 0, out=V_h)
    return V_h, V_p


def percussive_share(V: np.ndarray, V_p: np.ndarray) -> float:
    """Return the share of ``V``'s total held by ``V_p`` (0 for a silent ``V``)."""
    total = float(np.sum(V, dtype=np.float64))
    return float(np.sum(V_p, dtype=np.float64)) / total if total > 0 else 0.0


def percussive_names(n_sources: int) -> list[str]:
    """Stem names of a percussion-aware run: the harmonic sources, then ``drums``.

    >>> percussive_names(3)
    ['source_1', 'source_2', 'drums']
    """
    check_int(n_sources, "n_sources", 2)
    return [*source_names(int(n_sources) - 1), DRUMS]


@dataclass
class PercussiveFit:
    """A percussion-aware factorization (what :func:`factorize_percussive` returns).

    Attributes
    ----------
    W : np.ndarray [shape=(n_frames, k)], float32
        Activations: the harmonic components first, then the percussive ones.
    H : np.ndarray [shape=(k, n_bins)], float32
        Atoms, in the same order.
    groups : dict[str, list[int]]
        ``source_1 .. source_{S-1}`` (harmonic, ascending centroid) and ``drums``.
    n_iter : int
        Iterations of the longer of the two factorizations, plus the joint ones.
    loss_history : np.ndarray [shape=(n_checks,)], float64
        Objective of the two-part model (sum of both) at every check, then that of the
        joint model of ``V`` (for β = 1 it continues to decrease: the log-sum inequality
        puts ``D(V_h + V_p | W_h H_h + W_p H_p)`` below the sum).
    converged : bool
        Whether both factorizations of the split converged.
    share : float
        Percussive share of ``V``.
    """

    W: np.ndarray
    H: np.ndarray
    groups: dict[str, list[int]]
    n_iter: int
    loss_history: np.ndarray
    converged: bool
    share: float


def _split_k(k: int, n_sources: int) -> int:
    """Return the number of percussive components: one source's share of k, at least 1."""
    return max(1, min(k - (n_sources - 1), round(k / n_sources)))


def _sum_histories(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = max(a.size, b.size)
    pad = [np.pad(h, (0, n - h.size), mode="edge") if h.size else np.zeros(n) for h in (a, b)]
    return (pad[0] + pad[1]).astype(np.float64)


def atom_flatness(H: np.ndarray) -> np.ndarray:
    """Spectral flatness of every atom, as :func:`librosa.feature.spectral_flatness`.

    Parameters
    ----------
    H : np.ndarray [shape=(k, n_bins)], non-negative
        Atoms.

    Returns
    -------
    np.ndarray [shape=(k,)]
        Geometric over arithmetic mean of each atom scaled to a peak of 1 (floored at
        1e-12): near 1 for white noise, near 0 for a few harmonic peaks. Equal to
        ``librosa.feature.spectral_flatness(S=scaled.T, power=1, amin=1e-12)[0]``,
        written out because importing ``librosa.feature`` takes 1-2 s (tested).
    """
    H = np.asarray(H, dtype=np.float64)
    peak = H.max(axis=1, keepdims=True)
    scaled = np.maximum(H / np.where(peak > 0, peak, 1.0), 1e-12)
    return np.exp(np.mean(np.log(scaled), axis=1)) / np.mean(scaled, axis=1)


def _harmonic_groups(W: np.ndarray, H: np.ndarray, k_h: int, n_sources: int, *, sr: float,
                     n_fft: int, grouping: GroupingMethod, extra: bool,
                     flatness: float | None, tonal: float | None) -> dict[str, list[int]]:
    """Group the components: the ``k_h`` harmonic ones by ``grouping``, the rest are drums.

    Harmonic atoms flatter than ``flatness`` join the drums (unless fewer than
    ``n_sources`` harmonic components would remain); percussive atoms more tonal than
    ``tonal`` with less than :data:`TONAL_MAX_LOW_SHARE` of their magnitude below 200 Hz
    join the harmonic ones (unless no drum component would remain).
    """
    k = H.shape[0]
    drums = list(range(k_h, k))
    keep = np.arange(k_h)
    if flatness is not None:
        noisy = atom_flatness(H[:k_h]) > flatness
        if k_h - noisy.sum() >= n_sources:
            keep = np.flatnonzero(~noisy)
            drums = sorted([int(i) for i in np.flatnonzero(noisy)] + drums)
    if tonal is not None:
        low = register_features(H[k_h:], sr=sr, n_fft=n_fft)[:, 0]
        pitched = (atom_flatness(H[k_h:]) < tonal) & (low < TONAL_MAX_LOW_SHARE)
        if pitched.sum() < k - k_h:
            moved = [k_h + int(i) for i in np.flatnonzero(pitched)]
            keep = np.array(sorted([*keep.tolist(), *moved]), dtype=int)
            drums = [c for c in drums if c not in moved]
    n_groups = min(len(keep), n_sources if extra else n_sources - 1)
    found = group_components(W[:, keep], H[keep], n_groups, method=grouping,
                             sr=sr, n_fft=n_fft)
    parts = [[int(keep[i]) for i in idx] for idx in found.values()]
    if n_groups == n_sources:
        drum_act = W[:, k_h:].astype(np.float64) @ H[k_h:].sum(axis=1, dtype=np.float64)

        def follows(idx: list[int]) -> float:
            act = W[:, idx].astype(np.float64) @ H[idx].sum(axis=1, dtype=np.float64)
            c = np.corrcoef(act, drum_act)[0, 1]
            return float(c) if np.isfinite(c) else -1.0

        extra_part = max(range(len(parts)), key=lambda i: follows(parts[i]))
        drums = sorted(parts.pop(extra_part) + drums)
    groups = dict(zip(source_names(n_sources - 1), parts, strict=True))
    groups[DRUMS] = drums
    return groups


def factorize_percussive(
    V: np.ndarray, k: int, n_sources: int, *, sr: float, n_fft: int,
    grouping: GroupingMethod = DEFAULT_GROUPING, kernel: tuple[int, int] = DEFAULT_KERNEL,
    margin: float = DEFAULT_MARGIN, extra_cluster: bool = False,
    flatness: float | None = DEFAULT_FLATNESS, refine_iter: int = DEFAULT_REFINE_ITER,
    tonal: float | None = DEFAULT_TONAL, **nmf_kwargs: Any,
) -> PercussiveFit:
    """Factorize ``V`` as drums (percussive part) plus ``n_sources - 1`` harmonic sources.

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, n_bins)], non-negative
        Spectrogram (single frames, ``n_bins == n_fft // 2 + 1``). Not modified.
    k : int
        Total components, ``k >= n_sources``; ``round(k / n_sources)`` model the drums.
    n_sources : int
        Sources S >= 2, the drums included.
    sr, n_fft
        Analysis rate (Hz) and FFT size, for the timbre grouping.
    grouping : {"register", "timbre", "activations", "combined"}
        How the harmonic components are grouped (:func:`nmfsep.grouping.group_components`);
        :data:`DEFAULT_GROUPING` by default.
    kernel, margin
        As for :func:`hpss_split`.
    extra_cluster : bool
        Cluster the harmonic components into ``n_sources`` groups and give the drums
        the group whose activations follow the drums' most (kick-drum bodies and
        other drum sounds the median filter left in the harmonic part); False:
        ``n_sources - 1`` groups, all harmonic.
    flatness : float or None
        Harmonic components whose atoms are flatter than this (:func:`atom_flatness`)
        join the drums (kept when fewer than ``n_sources`` would remain); None: none.
    refine_iter : int
        Iterations of the joint factorization of ``V`` started from the two parts'
        factors (:data:`DEFAULT_REFINE_ITER`; 0: none). The components are grouped
        after them, on the final atoms.
    tonal : float or None
        Percussive components whose atoms are more tonal than this (flatness below it)
        and mostly above 200 Hz join the harmonic ones (:data:`DEFAULT_TONAL`, in
        [0, 1]); None: none.
    **nmf_kwargs
        Passed to the :func:`nmfsep.nmf.nmf` calls (beta, solver, max_iter, tol,
        random_state, ...); the joint stage runs ``refine_iter`` iterations whatever
        ``max_iter`` and ``tol`` say.

    Returns
    -------
    PercussiveFit

    Raises
    ------
    ParameterError
        If ``n_sources < 2``, ``k < n_sources``, ``refine_iter < 0`` or ``tonal`` is
        outside [0, 1].
    """
    check_int(n_sources, "n_sources", 2)
    refine_iter = check_int(refine_iter, "refine_iter", 0)
    tonal = check_real(tonal, "tonal", 0.0, 1.0, none_ok=True)
    if not k >= n_sources:
        raise ParameterError(f"n_components={k} must be >= n_sources={n_sources}")
    V_h, V_p = hpss_split(V, kernel=kernel, margin=margin)
    k_p = _split_k(k, n_sources)
    k_h = k - k_p
    fits = [nmf(part, n, **nmf_kwargs) for part, n in ((V_h, k_h), (V_p, k_p))]
    W = np.concatenate([np.asarray(f.W, dtype=np.float32) for f in fits], axis=1)
    H = np.concatenate([np.asarray(f.H, dtype=np.float32) for f in fits], axis=0)
    history = _sum_histories(*(np.asarray(f.loss_history) for f in fits))
    n_iter = max(f.n_iter for f in fits)
    if refine_iter:
        joint_kwargs = {**nmf_kwargs, "max_iter": refine_iter, "tol": 0.0, "init": "custom"}
        joint = nmf(V, k, W=W, H=H, **joint_kwargs)
        W = np.asarray(joint.W, dtype=np.float32)
        H = np.asarray(joint.H, dtype=np.float32)
        history = np.concatenate([history, np.asarray(joint.loss_history, dtype=np.float64)])
        n_iter += joint.n_iter
    groups = _harmonic_groups(W, H, k_h, n_sources, sr=sr, n_fft=n_fft, grouping=grouping,
                              extra=extra_cluster, flatness=flatness, tonal=tonal)
    return PercussiveFit(
        W=W, H=H, groups=groups, n_iter=n_iter, loss_history=history,
        converged=all(f.converged for f in fits), share=percussive_share(V, V_p),
    )
