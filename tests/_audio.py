"""Synthetic test audio and constants shared by several test modules (imported as ``_audio``)."""

import numpy as np

from nmfsep.dictionary import DEFAULT_CONTEXT_FRAMES, Dictionary, learn_dictionary
from nmfsep.spectral import STFTConfig

SR = 8000
CFG = STFTConfig(n_fft=256, hop_length=64)


def notes(f0s, seconds: float, sr: int = SR, decay: float = 1.0, seed: int = 0) -> np.ndarray:
    """A sequence of harmonic notes with onsets and decays, (n_samples,) float64."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n)
    seg = n // len(f0s)
    t = np.arange(seg) / sr
    for i, f0 in enumerate(f0s):
        note = sum(
            np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) * h**-decay
            for h in range(1, 8)
            if f0 * h < sr / 2
        )
        y[i * seg : (i + 1) * seg] = note * np.exp(-3 * t)
    return y


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Plain SDR in dB (no projection, computed in float64), enough for synthetic checks."""
    ref = ref.astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - est) ** 2), 1e-30)))


def low_high_training(sr: int = SR, chords: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Two 2 s training sources, a low one (200-310 Hz) and a high one (1050-1450 Hz).

    Parameters
    ----------
    sr : int
        Sample rate in Hz.
    chords : bool
        False: decaying harmonic notes one after the other (0.3 and 0.2 peak gain).
        True: steady chords of three fundamentals each, scaled by 0.1.

    Returns
    -------
    low, high : np.ndarray
        (n_samples,) float32 each.
    """
    if chords:
        t = np.arange(2 * sr) / sr
        low = sum(np.sin(2 * np.pi * f * h * t) / h**2
                  for f in (210, 260, 290) for h in range(1, 5))
        high = sum(np.sin(2 * np.pi * f * h * t) / h for f in (1050, 1250, 1350) for h in (1, 2))
        return (0.1 * low).astype(np.float32), (0.1 * high).astype(np.float32)
    low = 0.3 * notes([210, 260, 290, 240, 200, 310], 2.0, decay=2.0, seed=5, sr=sr)
    high = 0.2 * notes([1250, 1050, 1450, 1150, 1350], 2.0, decay=0.5, seed=6, sr=sr)
    return low.astype(np.float32), high.astype(np.float32)


def low_high_dicts(
    n_components: int,
    max_iter: int,
    *,
    chords: bool = False,
    stft: STFTConfig = CFG,
    sr: int = SR,
    context_frames: int = DEFAULT_CONTEXT_FRAMES,
) -> list[Dictionary]:
    """The dictionaries ``"low"`` and ``"high"`` learned on :func:`low_high_training`.

    Plain atoms only (``harmonic="off"``): these dictionaries serve the tests of the
    separation's mechanics; harmonic atoms are tested in ``test_harmonic.py``.
    """
    low, high = low_high_training(sr, chords)
    return [
        learn_dictionary([(y[None], sr)], name, n_components, stft=stft, max_iter=max_iter,
                         context_frames=context_frames, harmonic="off")
        for name, y in (("low", low), ("high", high))
    ]
