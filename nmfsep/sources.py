"""How many sources a mixture holds: a suggestion for blind ``n_sources``, and how sure it is.

Two questions, answered separately:

* **drums?** The percussive share of the spectrogram (median-filter harmonic-percussive
  separation, :func:`nmfsep.percussive.hpss_split` with a (17, 17) kernel and margin 1):
  at least :data:`DRUMS_SHARE` means a percussive source.
* **how many harmonic sources?** The harmonic part is factorized (``k`` components,
  deterministic NNDSVDa start) and the atoms' timbre features
  (:func:`nmfsep.grouping.timbre_features`) are clustered by Ward linkage into 2 ..
  ``max_harmonic`` groups; the count with the best mean silhouette wins. This is
  repeated for several k, each a vote.

``n_sources = n_harmonic + drums``. The confidence is the share of votes that agree on
the harmonic count times how far the percussive share is from the threshold (0.5 at
the threshold, 1 at half or twice it). One harmonic source is never suggested (the
silhouette needs two groups). Measured (``benchmarks/bench_blind.py --sources``): the
drums decision is right on every mixture; the harmonic count is weak (it tells 2
from 3 harmonic sources little better than chance: 73 of 136 mixtures on 8 a family,
four-source ones included), which the confidence shows when the votes split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nmfsep._checks import check_int, check_real
from nmfsep.grouping import timbre_features
from nmfsep.nmf import nmf
from nmfsep.percussive import hpss_split, percussive_share
from nmfsep.spectral import STFTConfig, max_magnitude, model_spectrogram, stft

__all__ = ["DRUMS_SHARE", "SourceSuggestion", "suggest_sources", "silhouette"]

#: Percussive share of the magnitude spectrogram from which a mixture holds drums: the
#: middle of the gap between the duos and trios (at most 0.175) and the drums + bass +
#: piano bands (at least 0.305) of ``benchmarks/bench_blind.py --sources``; chosen
#: without one family, the threshold (0.23 to 0.28) classifies every mixture of that
#: family right.
DRUMS_SHARE = 0.24
_KERNEL = (17, 17)


@dataclass
class SourceSuggestion:
    """What :func:`suggest_sources` found.

    Attributes
    ----------
    n_sources : int
        Suggested number of sources (drums included).
    drums : bool
        Whether one of them is percussive (use ``percussive=True``).
    n_harmonic : int
        Harmonic sources.
    confidence : float
        In [0, 1]: votes agreeing on ``n_harmonic`` times the drums decision's margin.
    share : float
        Percussive share of the spectrogram.
    votes : dict[int, int]
        Harmonic count -> factorizations (values of k) that chose it.
    """

    n_sources: int
    drums: bool
    n_harmonic: int
    confidence: float
    share: float
    votes: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable copy."""
        return {"n_sources": self.n_sources, "drums": self.drums,
                "n_harmonic": self.n_harmonic, "confidence": self.confidence,
                "share": self.share, "votes": {str(k): v for k, v in self.votes.items()}}


def silhouette(F: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of a clustering (Rousseeuw 1987), Euclidean; 0 for one cluster.

    Parameters
    ----------
    F : np.ndarray [shape=(n, d)]
        Points.
    labels : np.ndarray [shape=(n,)], int
        Cluster of each point.

    Returns
    -------
    float
        In [-1, 1]; points alone in their cluster count 0.
    """
    from scipy.spatial.distance import cdist

    D = cdist(F, F)
    ids = np.unique(labels)
    if ids.size < 2:
        return 0.0
    scores = np.zeros(len(labels))
    for i, lab in enumerate(labels):
        own = labels == lab
        if own.sum() < 2:
            continue
        a = D[i, own].sum() / (own.sum() - 1)
        b = min(D[i, labels == other].mean() for other in ids if other != lab)
        scores[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(scores.mean())


def _harmonic_count(H: np.ndarray, sr: float, n_fft: int, max_harmonic: int) -> int:
    from scipy.cluster.hierarchy import fcluster, linkage

    F = timbre_features(H, sr=sr, n_fft=n_fft)
    Z = linkage(F, method="ward")
    best = max(range(2, max_harmonic + 1),
               key=lambda n: silhouette(F, fcluster(Z, n, criterion="maxclust")))
    return int(best)


def suggest_sources(
    y: np.ndarray, sr: int, *, max_harmonic: int = 3,
    n_components: tuple[int, ...] = (16, 24, 32), seconds: float | None = 30.0,
    max_iter: int = 200,
) -> SourceSuggestion:
    """Suggest the number of blind sources of a mixture.

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n_samples)], float
        The mixture (checked by the caller, e.g. :func:`nmfsep.separate.check_mixture`).
    sr : int
        Its rate in Hz.
    max_harmonic : int
        Most harmonic sources considered, >= 2.
    n_components : tuple of int
        Components of the harmonic part's factorizations, each > ``max_harmonic``:
        one factorization (and vote) each.
    seconds : float or None
        Analyse at most this many seconds (the middle of the mixture).
    max_iter : int
        NMF iterations.

    Returns
    -------
    SourceSuggestion
        Digital silence: 2 harmonic sources, confidence 0, no votes.
    """
    check_int(max_harmonic, "max_harmonic", 2)
    for k in n_components:
        check_int(k, "n_components", max_harmonic + 1)
    if seconds is not None:
        check_real(seconds, "seconds", strict=True)
        keep = int(seconds * sr)
        start = max(0, (y.shape[-1] - keep) // 2)
        y = y[..., start : start + keep]
    if not np.any(y):  # digital silence: nothing to count
        return SourceSuggestion(n_sources=2, drums=False, n_harmonic=2, confidence=0.0,
                                share=0.0, votes={})
    cfg = STFTConfig.for_sample_rate(sr)
    X = stft(y, cfg)
    V = model_spectrogram(X, 1.0, scale=max(max_magnitude(X), 1e-30))
    V_h, V_p = hpss_split(V, kernel=_KERNEL, margin=1.0)
    share = percussive_share(V, V_p)
    drums = share >= DRUMS_SHARE
    votes: dict[int, int] = {}
    for k in n_components:
        fit = nmf(V_h, int(k), beta=1.0, max_iter=max_iter, random_state=0, warn=False)
        n = _harmonic_count(np.asarray(fit.H), sr, cfg.n_fft, max_harmonic)
        votes[n] = votes.get(n, 0) + 1
    n_h = max(sorted(votes), key=lambda n: votes[n])
    margin = abs(np.log(max(share, 1e-6) / DRUMS_SHARE)) / np.log(2.0)
    confidence = votes[n_h] / len(n_components) * (0.5 + 0.5 * min(1.0, margin))
    return SourceSuggestion(n_sources=n_h + int(drums), drums=bool(drums), n_harmonic=n_h,
                            confidence=float(confidence), share=float(share), votes=votes)
