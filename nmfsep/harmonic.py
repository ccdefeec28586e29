r"""Harmonic atoms: one spectral atom per pitch, with an instrument's partial amplitudes.

Atoms learned as plain NMF from training clips know the notes the clips play and little
else: on other melodies, keys and registers they lose 4-6 dB (issue 13). Harmonic atoms
are built from pitches instead: atom ``p`` is a sum of the window's spectral lobes at
the partials ``h · f0(p)`` (``h = 1..n_harmonics``), weighted by amplitudes
``A[p, h]`` the training clips teach. The amplitudes vary smoothly with pitch,
``A = S @ B``, with ``S`` (pitches x anchors) linear interpolation between anchor
pitches a few semitones apart and ``B`` (anchors x harmonics) learned; anchors the
clips do not reach take the amplitudes of the nearest one they do. So every note of a
range is covered, with the timbre of the nearest notes played (Vincent, Bertin &
Badeau 2010; Carabias-Orti, Virtanen et al. 2011). A few noise atoms, smooth across
frequency (sums of mel bands), are learned with them for attacks and breath. With
temporal context (atoms spanning ``T`` frames) the amplitudes are learned per frame of
the context, so an atom may swell or decay.

:func:`nmfsep.dictionary.learn_dictionary` adds these atoms to the plain ones for a
pitched source with ``harmonic="auto"`` (the default, :func:`played_pitches`) or a given
range, and a separation uses them when every source has them
(:func:`nmfsep.plan.harmonic_in_use`). The held-out measurement (issue 13), on the set of
``benchmarks/render.py --what families``, reusing the plain-atom rows of an earlier run
(``hr``: learned with "auto", used by the rule; ``hon``: used whenever present)::

    python benchmarks/bench_heldout.py --select --reuse benchmarks/results/sel1.json \
      --reuse-ceiling --learn '{"pitch_shifts": [-2, -1, 1, 2]}' \
      --candidate hr='{"learn": {"pitch_shifts": [-2, -1, 1, 2], "harmonic": "auto",
                                 "harmonic_margin": 12}}' \
      --candidate hon='{"learn": {"pitch_shifts": [-2, -1, 1, 2], "harmonic": "auto",
                                  "harmonic_margin": 12}, "separate": {"harmonic": "on"}}' \
      --json benchmarks/results/harm3.json

(``sel1.json``'s rows were learned before harmonic atoms existed, so they are plain
atoms; to recompute them instead, add ``"harmonic": "off"`` to ``--learn`` and drop the
``--reuse``), and, for one atom per half semitone, ``--reuse benchmarks/results/harm3.json --tasks
duo,trio --candidate hr=... --candidate hs2='{"learn": {..., "harmonic_steps": 2}}'``.

Pure functions on arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nmfsep.divergence import beta_divergence
from nmfsep.exceptions import ParameterError

__all__ = [
    "HarmonicFit",
    "fit_harmonic",
    "partial_lobes",
    "pitch_grid",
    "played_pitches",
    "parse_pitch_range",
    "HARMONIC_ITER",
]

#: Half-width, in FFT bins, of the window lobe drawn around every partial.
LOBE_HALF_WIDTH = 3
#: Oversampling of the window's spectrum the lobe shape is read from.
_OVERSAMPLE = 32
#: Lowest and highest MIDI pitch an atom may have (C1 to C8).
PITCH_LIMITS = (24.0, 108.0)
#: Smooth noise atoms learned along with the harmonic ones.
DEFAULT_NOISE_ATOMS = 4
#: Iterations of :func:`fit_harmonic` (``learn``'s ``max_iter`` caps them too).
HARMONIC_ITER = 100
#: Mel bands a noise atom is a non-negative sum of.
NOISE_BANDS = 32
#: Mean voiced probability (:func:`played_pitches`) from which a source counts as pitched
#: and gets harmonic atoms: the training clips of the held-out benchmark's pitched
#: instruments (piano, flute, bass of four sound families) had 0.40-0.93, its drum kits
#: 0.01-0.05, its LibriVox speech 0.05 (its pitch moves faster than the 186 ms frames),
#: white noise 0.01.
PITCHED = 0.2
#: librosa.pyin's pitch grid (semitones) and largest pitch change (semitones per
#: second, librosa's default), given explicitly so that :func:`_pyin_range` checks
#: the same numbers pyin uses.
_PYIN_RESOLUTION = 0.5
_PYIN_MAX_TRANSITION_RATE = 35.92
_EPS = 1e-12


@dataclass(frozen=True)
class HarmonicFit:
    """Harmonic atoms fitted to a training spectrogram.

    Attributes
    ----------
    atoms : np.ndarray [shape=(n_pitches + n_free, context_frames * n_bins)]
        The harmonic atoms (one per pitch of ``pitches``, lowest first), then the noise
        atoms; not normalised.
    pitches : np.ndarray [shape=(n_pitches,)]
        MIDI pitch of every harmonic atom.
    loss : float
        Final KL divergence per entry of the training spectrogram.
    energy : np.ndarray [shape=(n_pitches + n_free,)]
        Magnitude every atom carries in the fit (activations times atom sums).
    """

    atoms: np.ndarray
    pitches: np.ndarray
    loss: float
    energy: np.ndarray

    @property
    def harmonic_share(self) -> float:
        """Share of the model's total magnitude the harmonic atoms carry (0..1)."""
        total = float(self.energy.sum())
        return float(self.energy[: self.pitches.size].sum()) / total if total > 0 else 0.0


def pitch_grid(low: float, high: float, steps_per_semitone: int) -> np.ndarray:
    """MIDI pitches from ``low`` to ``high`` (clipped to :data:`PITCH_LIMITS`).

    Parameters
    ----------
    low, high : float
        Lowest and highest MIDI pitch.
    steps_per_semitone : int
        Atoms per semitone (2: a quarter tone apart, so no partial of a note that is
        a little out of tune lies far from an atom's).

    Returns
    -------
    np.ndarray [shape=(n_pitches,)], float64
    """
    lo = max(float(low), PITCH_LIMITS[0])
    hi = min(float(high), PITCH_LIMITS[1])
    n = int(np.floor((hi - lo) * steps_per_semitone + 1e-9)) + 1
    return lo + np.arange(max(n, 1)) / steps_per_semitone


def _lobe_table(window: np.ndarray, n_fft: int) -> np.ndarray:
    """Magnitude of the window's spectrum at offsets of 1/_OVERSAMPLE bin, peak 1."""
    padded = np.zeros(n_fft * _OVERSAMPLE)
    padded[: window.size] = window
    mag = np.abs(np.fft.rfft(padded))
    return mag / mag[0]


def partial_lobes(
    pitches: np.ndarray,
    *,
    sr: int,
    n_fft: int,
    window: np.ndarray,
    n_harmonics: int,
    inharmonicity: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Where every partial of every pitch falls in the spectrum, and with what weights.

    Parameters
    ----------
    pitches : np.ndarray [shape=(P,)]
        MIDI pitches.
    sr, n_fft : int
        Sample rate and FFT size of the spectrogram.
    window : np.ndarray [shape=(win_length,)]
        The analysis window (its spectrum gives the lobe shape).
    n_harmonics : int
        Partials per pitch, H.
    inharmonicity : float
        ``b`` in ``f_h = h f0 sqrt(1 + b h²)``.

    Returns
    -------
    bins : np.ndarray [shape=(P, H, J)], int64
        FFT bins of each partial's lobe (``J = 2 LOBE_HALF_WIDTH``), clipped into range.
    weights : np.ndarray [shape=(P, H, J)], float64
        The window's spectral magnitude at those bins; 0 for partials above 0.95 of the
        Nyquist frequency and for bins out of range.
    """
    n_bins = n_fft // 2 + 1
    import librosa

    f0 = librosa.midi_to_hz(np.asarray(pitches, np.float64))
    h = np.arange(1, n_harmonics + 1, dtype=np.float64)
    freqs = f0[:, None] * h[None, :] * np.sqrt(1.0 + inharmonicity * h[None, :] ** 2)
    centre = freqs * n_fft / sr  # fractional bin, (P, H)
    offsets = np.arange(-LOBE_HALF_WIDTH + 1, LOBE_HALF_WIDTH + 1)
    bins = np.floor(centre)[..., None].astype(np.int64) + offsets  # (P, H, J)
    table = _lobe_table(window, n_fft)
    dist = np.abs(bins - centre[..., None])
    weights = table[np.minimum(np.rint(dist * _OVERSAMPLE).astype(np.int64), table.size - 1)]
    valid = (bins >= 0) & (bins < n_bins) & (freqs[..., None] < 0.95 * sr / 2)
    return np.clip(bins, 0, n_bins - 1), np.where(valid, weights, 0.0)


def _interpolation(pitches: np.ndarray, anchor_step: float) -> np.ndarray:
    """``(P, R)`` linear interpolation from anchors every ``anchor_step`` semitones."""
    lo, hi = float(pitches[0]), float(pitches[-1])
    n = max(int(np.ceil((hi - lo) / anchor_step)) + 1, 1)
    if n == 1:
        return np.ones((pitches.size, 1))
    pos = np.clip((pitches - lo) / anchor_step, 0, n - 1)
    left = np.minimum(np.floor(pos).astype(np.int64), n - 2)
    frac = pos - left
    S = np.zeros((pitches.size, n))
    S[np.arange(pitches.size), left] = 1 - frac
    S[np.arange(pitches.size), left + 1] += frac
    return S


def _build(B: np.ndarray, S: np.ndarray, bins: np.ndarray, weights: np.ndarray,
           n_bins: int) -> np.ndarray:
    """Harmonic atoms ``(P, T * n_bins)`` from anchor amplitudes ``B`` ``(R, H, T)``."""
    P = bins.shape[0]
    A = np.einsum("pr,rht->pth", S, B)  # (P, T, H)
    flat = (np.arange(P)[:, None, None] * n_bins + bins).ravel()
    out = [np.bincount(flat, (A[:, t, :, None] * weights).ravel(),
                       minlength=P * n_bins).reshape(P, n_bins) for t in range(B.shape[2])]
    return np.stack(out, axis=1).reshape(P, -1).astype(B.dtype, copy=False)


def _gather(R: np.ndarray, bins: np.ndarray, weights: np.ndarray, T: int,
            n_bins: int) -> np.ndarray:
    """``sum_j weights[p,h,j] R[p, t, bins[p,h,j]]`` as ``(P, H, T)``."""
    P = bins.shape[0]
    R3 = R.reshape(P, T, n_bins)
    rows = np.arange(P)[:, None, None]
    return np.stack([(R3[:, t][rows, bins] * weights).sum(axis=2) for t in range(T)], axis=2)


def _bands(n_bands: int, sr: int, n_fft: int) -> np.ndarray:
    """``(n_bands, n_bins)`` overlapping triangles on the mel scale: smooth spectra only."""
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_bands, norm=None, htk=True)


def _extrapolate(B: np.ndarray, support: np.ndarray, floor: float = 0.01) -> np.ndarray:
    """Give anchors the training clips barely reach the amplitudes of the nearest one they do.

    ``support`` ``(R,)`` is how much activation each anchor's pitches carried; anchors
    under ``floor`` times the largest copy ``B`` of the nearest anchor above it, so notes
    above or below the clips' register keep the timbre of the nearest notes played.
    """
    if not support.max() > 0:
        return B
    ok = np.flatnonzero(support >= floor * support.max())
    nearest = ok[np.argmin(np.abs(ok[None, :] - np.arange(B.shape[0])[:, None]), axis=1)]
    return B[nearest]


def fit_harmonic(
    V: np.ndarray,
    *,
    sr: int,
    n_fft: int,
    window: np.ndarray,
    context_frames: int,
    pitches: np.ndarray,
    power: float = 1.0,
    n_noise: int = DEFAULT_NOISE_ATOMS,
    n_harmonics: int = 40,
    anchor_step: float = 6.0,
    max_iter: int = HARMONIC_ITER,
    max_frames: int = 400,
    random_state: int | None = 0,
) -> HarmonicFit:
    """Fit harmonic atoms and a few smooth noise atoms to a training spectrogram (KL).

    Multiplicative updates of the activations, the anchor amplitudes ``B`` and the noise
    atoms' band weights: each is the NMF update of a model linear in it, so the KL
    divergence does not increase. Noise atoms are sums of :data:`NOISE_BANDS` mel bands,
    smooth across frequency, so they take attacks and breath but cannot pose as a note.

    Parameters
    ----------
    V : np.ndarray [shape=(n_frames, context_frames * n_bins)], non-negative
        Training spectrogram (power ``power``), frames stacked with their neighbours.
    sr, n_fft : int
        Its sample rate and FFT size.
    window : np.ndarray [shape=(win_length,)]
        Its analysis window (the lobe shape of every partial).
    context_frames : int
        Frames per row of ``V``.
    pitches : np.ndarray [shape=(P,)]
        MIDI pitches of the harmonic atoms (:func:`pitch_grid`).
    power : float
        Spectrogram power; a partial's lobe is the window's magnitude to this power.
    n_noise : int
        Noise atoms.
    n_harmonics : int
        Partials per atom.
    anchor_step : float
        Semitones between the pitches whose partial amplitudes are learned.
    max_iter : int
        Iterations.
    max_frames : int
        Rows of ``V`` the fit uses at most, evenly strided: the few amplitudes per
        anchor are learned as well from 400 frames as from all, and the time stays
        bounded for long training clips.
    random_state : int or None
        Seed of the initial activations and noise atoms.

    Returns
    -------
    HarmonicFit
    """
    V = np.asarray(V, dtype=np.float32)  # float32 halves the time; the loss is float64
    T, n_bins = int(context_frames), n_fft // 2 + 1
    if V.ndim != 2 or V.shape[1] != T * n_bins:
        raise ParameterError(f"V must have {T * n_bins} columns, got shape {V.shape}")
    V = V[:: -(-V.shape[0] // max(int(max_frames), 1)) or 1]
    pitches = np.asarray(pitches, np.float64)
    bins, weights = partial_lobes(pitches, sr=sr, n_fft=n_fft, window=window,
                                  n_harmonics=n_harmonics)
    weights = (weights ** power).astype(np.float32)
    S = _interpolation(pitches, anchor_step).astype(np.float32)
    bands = _bands(NOISE_BANDS, sr, n_fft).astype(np.float32)
    rng = np.random.default_rng(random_state)
    P = pitches.size
    B = (np.ones((S.shape[1], n_harmonics, T))
         / np.arange(1, n_harmonics + 1)[None, :, None]).astype(np.float32)
    C = (rng.uniform(0.5, 1.5, (n_noise, T, NOISE_BANDS)) * V.mean()).astype(np.float32)
    W = rng.uniform(0.05, 0.15, (V.shape[0], P + n_noise)).astype(np.float32)
    colsum = W.sum(axis=0)  # max_iter=0: the start
    for _ in range(max_iter):
        H = np.vstack([_build(B, S, bins, weights, n_bins), _noise(C, bands)])
        W *= ((V / (W @ H + _EPS)) @ H.T) / (H.sum(axis=1) + _EPS)
        R = W.T @ (V / (W @ H + _EPS))  # (K, T * n_bins)
        colsum = W.sum(axis=0)
        B *= _amplitude_step(R[:P], colsum[:P], S, bins, weights, T, n_bins)
        C *= ((R[P:].reshape(n_noise, T, n_bins) @ bands.T + _EPS)
              / (colsum[P:, None, None] * bands.sum(axis=1) + _EPS))
    B = _extrapolate(B, S.T @ (colsum[:P] * weights.sum(axis=(1, 2))))
    atoms = np.vstack([_build(B, S, bins, weights, n_bins), _noise(C, bands)])
    return HarmonicFit(atoms=atoms, pitches=pitches,
                       loss=beta_divergence(V, W, atoms, "kullback-leibler") / V.size,
                       energy=W.sum(axis=0) * atoms.sum(axis=1))


def _noise(C: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """Noise atoms ``(n_noise, T * n_bins)`` from band weights ``C`` ``(n_noise, T, n_bands)``."""
    return (C @ bands).reshape(C.shape[0], C.shape[1] * bands.shape[1])


def _amplitude_step(R: np.ndarray, colsum: np.ndarray, S: np.ndarray, bins: np.ndarray,
                    weights: np.ndarray, T: int, n_bins: int) -> np.ndarray:
    """Multiplicative factor ``(R, H, T)`` of the anchor amplitudes under KL."""
    num = np.einsum("pr,pht->rht", S, _gather(R, bins, weights, T, n_bins))
    den = np.einsum("pr,p,ph->rh", S, colsum, weights.sum(axis=2))[..., None]
    return (num + _EPS) / (den + _EPS)


def played_pitches(
    clips: list[np.ndarray], sr: int, *, frame_length: int
) -> tuple[float, float, float]:
    """Find the pitch range the clips mostly play, and how clearly they are pitched.

    librosa's probabilistic YIN (:func:`librosa.pyin`) on every clip (channels
    averaged), from C1 to C8 (or the part of it below 0.45 ``sr`` with two periods
    in a frame) in half semitones (a finer grid costs 25 times the time for
    a range that is widened by a margin anyway), frames of ``frame_length`` every half
    frame. Clips shorter than a frame, and every clip when ``sr`` is too low for pyin
    at this frame length (:func:`_pyin_range`), are not tracked. Its voiced
    probability, not its voiced flag, decides: the flag calls most frames of white
    noise voiced, the probability stays near 0 there. For a polyphonic instrument it
    follows one voice, most often the lowest.

    Parameters
    ----------
    clips : list of np.ndarray [shape=(n_channels, n_samples)]
        Audio at ``sr``.
    sr : int
        Sample rate in Hz.
    frame_length : int
        Analysis frame in samples (the dictionary's FFT size).

    Returns
    -------
    low, high : float
        5th and 95th percentiles of the MIDI pitch of the frames voiced with
        probability > 0.5 (NaN when there is none).
    pitched : float
        Mean voiced probability over all frames (0..1); at least :data:`PITCHED` for
        a pitched source. ``(nan, nan, 0.0)`` when no clip could be tracked.
    """
    import librosa

    limits = _pyin_range(sr, frame_length)
    f0s, probs = [], []
    for y in clips:
        if y.shape[1] < frame_length or limits is None:
            continue
        f0, _, prob = librosa.pyin(y.mean(axis=0), fmin=limits[0], fmax=limits[1], sr=sr,
                                   frame_length=frame_length, hop_length=frame_length // 2,
                                   resolution=_PYIN_RESOLUTION,
                                   max_transition_rate=_PYIN_MAX_TRANSITION_RATE)
        f0s.append(f0[(prob > 0.5) & np.isfinite(f0)])  # the Viterbi path may say unvoiced
        probs.append(prob)
    if not probs:
        return float("nan"), float("nan"), 0.0
    pitched = float(np.mean(np.concatenate(probs)))
    f0 = np.concatenate(f0s)
    if f0.size == 0:
        return float("nan"), float("nan"), pitched
    low, high = np.percentile(librosa.hz_to_midi(f0), [5, 95])
    return float(low), float(high), pitched


def _pyin_range(sr: int, frame_length: int) -> tuple[float, float] | None:
    """Return the (fmin, fmax) in Hz :func:`played_pitches` tracks, or None if pyin cannot.

    fmax stays under Nyquist and two periods of fmin fit in a frame (pyin trusts
    nothing less). pyin (librosa 0.11, ``librosa.core.pitch.pyin`` and
    ``librosa.sequence.transition_local``) also needs its pitch grid, ``floor(12 *
    2 * log2(fmax / fmin)) + 1`` bins, to hold more than one bin and at least the
    ``2 * round(35.92 * 12 * hop / sr) + 1`` bins a pitch may move by in one hop
    (``hop = frame_length // 2``): at a low rate a hop lasts long and the grid is
    short (fmax < 0.45 sr), so that with the learning STFT (512 samples up to
    4000 Hz) nothing under about 1800 Hz can be tracked.
    """
    import librosa

    fmin = max(float(librosa.midi_to_hz(PITCH_LIMITS[0])), 2.02 * sr / frame_length)
    fmax = min(float(librosa.midi_to_hz(PITCH_LIMITS[1])), 0.45 * sr)
    if fmin >= fmax:
        return None
    per_semitone = int(np.ceil(1 / _PYIN_RESOLUTION))
    n_bins = int(np.floor(12 * per_semitone * np.log2(fmax / fmin))) + 1
    hop = frame_length // 2
    width = round(_PYIN_MAX_TRANSITION_RATE * 12 * hop / sr) * per_semitone + 1
    if n_bins < 2 or width > n_bins:
        return None
    return fmin, fmax


def parse_pitch_range(text: str) -> tuple[float, float]:
    """Parse a pitch range written ``LOW-HIGH`` with note names or MIDI numbers.

    Parameters
    ----------
    text : str
        E.g. ``"C4-C7"``, ``"Bb1-G3"``, ``"60-96"``; a sharp is ``#``, a flat ``b``.

    Returns
    -------
    (low, high) : (float, float)
        MIDI pitches, checked to lie within :data:`PITCH_LIMITS` with ``low <= high``.

    Raises
    ------
    ParameterError
        If the text is not two notes or numbers joined by ``-``, or out of range.

    Examples
    --------
    >>> parse_pitch_range("C4-C7")
    (60.0, 96.0)
    """
    import librosa

    def midi(part: str) -> float:
        try:
            return float(part)
        except ValueError:
            return float(librosa.note_to_midi(part.strip()))

    parts = str(text).strip().split("-")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        low, high = midi(parts[0]), midi(parts[1])
    except (ValueError, librosa.ParameterError):
        raise ParameterError(
            f"{text!r} is not a pitch range; write LOW-HIGH with note names or MIDI "
            "numbers, e.g. C4-C7 or 60-96") from None
    if not PITCH_LIMITS[0] <= low <= high <= PITCH_LIMITS[1]:
        raise ParameterError(
            f"pitch range {text!r} must lie within C1-C8 (MIDI 24-108) with the lower "
            "note first")
    return low, high
