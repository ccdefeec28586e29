"""Synthetic test audio shared by several test modules (imported as ``_audio``)."""

import numpy as np


def notes(f0s, seconds: float, sr: int = 8000, decay: float = 1.0, seed: int = 0) -> np.ndarray:
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
