"""STFT settings, analysis, synthesis and the spectrogram that NMF models.

This is the spectral boundary of nmfsep, the one place where axes change:

* audio ``y`` is ``(n_channels, n_samples)`` (channels first, float32);
* the STFT ``X`` is ``(n_channels, n_bins, n_frames)`` complex, as librosa returns it;
* the NMF input ``V`` is ``(n_frames, n_bins)``: one row per frame (an observation),
  one column per frequency bin (a feature), so that ``V ≈ W @ H`` with ``W`` the
  activations ``(n_frames, k)`` and ``H`` the spectral atoms ``(k, n_bins)``.
  :func:`model_spectrogram` transposes librosa's ``(n_bins, n_frames)`` exactly once.

Every function is pure: arguments are never modified in place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from nmfsep._checks import check_audio
from nmfsep._checks import check_sr as _check_sr
from nmfsep._checks import is_int as _is_int
from nmfsep._checks import is_real as _is_real
from nmfsep.exceptions import ParameterError

__all__ = [
    "STFTConfig",
    "stft",
    "istft",
    "model_spectrogram",
    "fft_frequencies",
    "frame_times",
]


@dataclass(frozen=True)
class STFTConfig:
    """Settings of the short-time Fourier transform, validated on creation.

    Parameters
    ----------
    n_fft : int
        FFT size in samples (>= 16). The number of frequency bins is ``n_fft // 2 + 1``.
    hop_length : int
        Samples between successive frames, ``0 < hop_length <= win_length``.
    win_length : int or None
        Window length in samples, ``hop_length <= win_length <= n_fft``; ``None``
        means ``n_fft``. A shorter window is zero-padded (centred) to ``n_fft``.
    window : str
        A window name accepted by :func:`scipy.signal.get_window` without
        parameters (``"hann"``, ``"hamming"``, ``"blackman"``, ``"boxcar"``...).
    center : bool
        If True, frame ``t`` is centred on sample ``t * hop_length`` (the signal is
        zero-padded by ``n_fft // 2`` on both sides).

    Raises
    ------
    ParameterError
        If a field has the wrong type or value, or if the window and hop length do
        not overlap enough to be inverted (the NOLA condition fails).

    See Also
    --------
    STFTConfig.for_sample_rate : defaults suited to a sample rate.

    Notes
    -----
    Two configs compare equal only if their fields are equal as written:
    ``win_length=None`` and ``win_length=n_fft`` describe the same analysis but
    are different configs; compare :attr:`effective_win_length` when that matters.

    Examples
    --------
    >>> STFTConfig(n_fft=1024, hop_length=256).n_bins
    513
    """

    n_fft: int = 2048
    hop_length: int = 512
    win_length: int | None = None
    window: str = "hann"
    center: bool = True

    def __post_init__(self) -> None:
        if not _is_int(self.n_fft) or self.n_fft < 16:
            raise ParameterError(f"n_fft must be an int >= 16, got {self.n_fft!r}")
        object.__setattr__(self, "n_fft", int(self.n_fft))
        if self.win_length is not None:
            if not _is_int(self.win_length) or not 0 < self.win_length <= self.n_fft:
                raise ParameterError(
                    f"win_length must be None or an int in [hop_length, n_fft={self.n_fft}], "
                    f"got {self.win_length!r}"
                )
            object.__setattr__(self, "win_length", int(self.win_length))
        win = self.effective_win_length
        if not _is_int(self.hop_length) or not 0 < self.hop_length <= win:
            raise ParameterError(
                f"hop_length must be an int in [1, win_length={win}], got {self.hop_length!r}"
            )
        object.__setattr__(self, "hop_length", int(self.hop_length))
        if not isinstance(self.window, str):
            raise ParameterError(
                f"window must be a window name such as 'hann', got {self.window!r}"
            )
        if not isinstance(self.center, bool | np.bool_):
            raise ParameterError(f"center must be True or False, got {self.center!r}")
        object.__setattr__(self, "center", bool(self.center))

        import scipy.signal

        try:
            win_values = scipy.signal.get_window(self.window, win, fftbins=True)
        except (ValueError, TypeError) as exc:
            raise ParameterError(
                f"window must be a name accepted by scipy.signal.get_window without "
                f"parameters (e.g. 'hann'), got {self.window!r}"
            ) from exc
        if not scipy.signal.check_NOLA(win_values, win, win - self.hop_length):
            raise ParameterError(
                f"window={self.window!r} with win_length={win} and hop_length="
                f"{self.hop_length} cannot be inverted (NOLA fails); use a smaller hop_length"
            )

    @property
    def effective_win_length(self) -> int:
        """Window length in samples, with ``None`` resolved to ``n_fft``."""
        return self.n_fft if self.win_length is None else self.win_length

    @property
    def n_bins(self) -> int:
        """Number of frequency bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-friendly dict.

        Returns
        -------
        dict
            Keys ``n_fft``, ``hop_length``, ``win_length`` (int or None), ``window``
            and ``center``; :meth:`from_dict` rebuilds an equal config.
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> STFTConfig:
        """Rebuild a config from the output of :meth:`to_dict`.

        Parameters
        ----------
        d : Mapping[str, Any]
            Exactly the keys ``n_fft``, ``hop_length``, ``win_length``, ``window``,
            ``center``.

        Returns
        -------
        STFTConfig

        Raises
        ------
        ParameterError
            If ``d`` is not a mapping, has unknown or missing keys, or a value of the
            wrong type or value.
        """
        if not isinstance(d, Mapping):
            raise ParameterError(f"STFT settings must be a mapping, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(names), key=str)
        if unknown:
            raise ParameterError(f"unknown STFT setting(s) {unknown}; expected exactly {names}")
        missing = [n for n in names if n not in d]
        if missing:
            raise ParameterError(f"missing STFT setting(s) {missing}; expected exactly {names}")
        for name in ("n_fft", "hop_length"):
            if not _is_int(d[name]):
                raise ParameterError(f"STFT setting {name} must be an int, got {d[name]!r}")
        if d["win_length"] is not None and not _is_int(d["win_length"]):
            raise ParameterError(
                f"STFT setting win_length must be an int or null, got {d['win_length']!r}"
            )
        if not isinstance(d["window"], str):
            raise ParameterError(f"STFT setting window must be a string, got {d['window']!r}")
        if not isinstance(d["center"], bool | np.bool_):
            raise ParameterError(f"STFT setting center must be a bool, got {d['center']!r}")
        return cls(**{n: d[n] for n in names})

    @classmethod
    def for_sample_rate(cls, sr: float) -> STFTConfig:
        """Return defaults suited to a sample rate: a window of about 93 ms.

        ``n_fft`` is the power of two nearest to ``0.093 * sr`` (at least 256) and
        ``hop_length = n_fft // 4``: 512 at 8 kHz, 1024 at 11.025 and 16 kHz, 2048 at
        22.05 kHz, 4096 at 44.1 and 48 kHz.

        Parameters
        ----------
        sr : float
            Sample rate in Hz, > 0.

        Returns
        -------
        STFTConfig

        Raises
        ------
        ParameterError
            If ``sr`` is not a finite positive number.

        Examples
        --------
        >>> STFTConfig.for_sample_rate(44100).n_fft
        4096
        """
        _check_sr(sr)
        target = 0.093 * float(sr)
        lower = 2 ** max(int(math.floor(math.log2(target))), 0) if target >= 1 else 1
        upper = 2 * lower
        n_fft = lower if target - lower <= upper - target else upper
        n_fft = max(n_fft, 256)
        return cls(n_fft=n_fft, hop_length=n_fft // 4)


def _check_config(config: object) -> None:
    if not isinstance(config, STFTConfig):
        raise ParameterError(
            f"config must be an STFTConfig, got {type(config).__name__}; "
            "build one with STFTConfig(...) or STFTConfig.for_sample_rate(sr)"
        )


def stft(y: np.ndarray, config: STFTConfig) -> np.ndarray:
    """Short-time Fourier transform of every channel.

    Parameters
    ----------
    y : np.ndarray [shape=(n_channels, n_samples)], real floating, finite
        Audio, channels first. A 1-D array is refused: pass ``y[np.newaxis]``.
    config : STFTConfig
        STFT settings.

    Returns
    -------
    X : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex
        complex64 for float32 input, complex128 for float64 input;
        ``n_bins = n_fft // 2 + 1``.

    Raises
    ------
    ParameterError
        If ``y`` is not a 2-D finite real floating array with at least one channel and
        one sample, or ``config`` is not an :class:`STFTConfig`.

    See Also
    --------
    istft : the inverse.
    model_spectrogram : the ``(n_frames, n_bins)`` spectrogram that NMF factorizes.

    Notes
    -----
    A clip shorter than ``n_fft`` is zero-padded at the end to ``n_fft`` samples
    (librosa would warn for ``center=True`` and fail for ``center=False``), so it
    gets ``1 + n_fft // hop_length`` frames (``center=True``) or one frame
    (``center=False``). :func:`istft` with the original ``length`` removes the padding.
    With ``center=True`` a clip of ``n_samples >= n_fft`` has
    ``1 + n_samples // hop_length`` frames.

    Examples
    --------
    >>> y = np.zeros((2, 22050), dtype=np.float32)
    >>> stft(y, STFTConfig()).shape
    (2, 1025, 44)
    """
    _check_config(config)
    y = check_audio(y)
    import librosa

    n_samples = y.shape[-1]
    if n_samples < config.n_fft:
        y = np.pad(y, ((0, 0), (0, config.n_fft - n_samples)))
    return librosa.stft(
        y,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window=config.window,
        center=config.center,
        pad_mode="constant",
    )


def istft(X: np.ndarray, config: STFTConfig, length: int) -> np.ndarray:
    """Inverse STFT of every channel, trimmed or zero-padded to an exact length.

    Parameters
    ----------
    X : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex
        STFT as returned by :func:`stft` (or masked), ``n_bins = n_fft // 2 + 1``.
    config : STFTConfig
        The settings ``X`` was computed with.
    length : int
        Number of samples of the output, >= 1 (the length of the analysed audio).

    Returns
    -------
    y : np.ndarray [shape=(n_channels, length)], float32

    Raises
    ------
    ParameterError
        If ``X`` is not a finite 3-D complex array whose bins match ``config``, or
        ``length`` is not a positive int.

    See Also
    --------
    stft : the forward transform.
    """
    _check_config(config)
    if not isinstance(X, np.ndarray) or X.ndim != 3:
        raise ParameterError(
            "X must be an array of shape (n_channels, n_bins, n_frames), got "
            f"{getattr(X, 'shape', type(X))}"
        )
    if X.shape[1] != config.n_bins:
        raise ParameterError(
            f"X has {X.shape[1]} frequency bins but n_fft={config.n_fft} gives "
            f"{config.n_bins}; use the STFTConfig X was computed with"
        )
    if X.shape[0] < 1 or X.shape[2] < 1:
        raise ParameterError(f"X must hold at least one channel and one frame, got {X.shape}")
    if not np.iscomplexobj(X):
        raise ParameterError(f"X must be complex (an STFT), got dtype {X.dtype}")
    if not np.isfinite(X).all():
        raise ParameterError("X contains NaN or Inf values")
    if not _is_int(length) or length < 1:
        raise ParameterError(f"length must be an int >= 1 (samples), got {length!r}")
    import librosa

    y = librosa.istft(
        X,
        hop_length=config.hop_length,
        win_length=config.win_length,
        n_fft=config.n_fft,
        window=config.window,
        center=config.center,
        length=int(length),
    )
    return np.ascontiguousarray(y, dtype=np.float32)


def model_spectrogram(X: np.ndarray, power: float = 1.0, *, scale: float = 1.0) -> np.ndarray:
    """Compute the non-negative spectrogram ``V`` that NMF models, all channels combined.

    ``V = (mean over channels of |X|**2) ** (power / 2)``, transposed to one row per
    frame. ``power=1`` gives a magnitude spectrogram (suits KL, β=1), ``power=2`` a
    power spectrogram (suits Itakura-Saito, β=0). For mono audio ``power=1`` is
    exactly ``|X|``.

    Parameters
    ----------
    X : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex
        STFT from :func:`stft`.
    power : float
        Exponent applied to the magnitude, finite and > 0.
    scale : float, default=1.0
        The spectrogram of ``X / scale`` is returned (computed in float64, so a
        scaled copy of X is never made and quiet audio does not underflow).

    Returns
    -------
    V : np.ndarray [shape=(n_frames, n_bins)], float32, non-negative, C-contiguous

    Raises
    ------
    ParameterError
        If ``X`` is not a finite 3-D array or ``power`` is not finite and > 0.

    See Also
    --------
    stft : computes ``X``.
    """
    if not isinstance(X, np.ndarray) or X.ndim != 3:
        raise ParameterError(
            "X must be an array of shape (n_channels, n_bins, n_frames), got "
            f"{getattr(X, 'shape', type(X))}"
        )
    if not _is_real(power) or float(power) <= 0:
        raise ParameterError(f"power must be a finite number > 0 (1 or 2), got {power!r}")
    if not np.isfinite(X).all():
        raise ParameterError("X contains NaN or Inf values")
    if not _is_real(scale) or not 0 < float(scale) < np.inf:
        raise ParameterError(f"scale must be a finite number > 0, got {scale!r}")
    # Accumulate in float64, one channel at a time (memory: two float64 channel-sized
    # arrays, not several copies of X): |X / scale|**2 of very quiet or very loud audio
    # neither underflows nor overflows, and a float32 mean would lose digits.
    energy = np.zeros(X.shape[1:], dtype=np.float64)  # (n_bins, n_frames)
    for channel in X:
        mag2 = np.abs(channel).astype(np.float64)
        if scale != 1.0:
            mag2 /= float(scale)
        mag2 *= mag2
        energy += mag2
    energy /= X.shape[0]
    p = float(power)
    V = energy if p == 2.0 else (np.sqrt(energy) if p == 1.0 else energy ** (p / 2.0))
    return np.ascontiguousarray(V.T, dtype=np.float32)


def fft_frequencies(sr: float, config: STFTConfig) -> np.ndarray:
    """Centre frequency of every STFT bin.

    Parameters
    ----------
    sr : float
        Sample rate in Hz, > 0.
    config : STFTConfig
        STFT settings.

    Returns
    -------
    freqs : np.ndarray [shape=(n_bins,)], float64
        ``0, sr / n_fft, ..., sr / 2`` in Hz; column ``j`` of ``V`` (and of the atoms
        ``H``) is bin ``freqs[j]``.
    """
    _check_sr(sr)
    _check_config(config)
    import librosa

    return librosa.fft_frequencies(sr=float(sr), n_fft=config.n_fft)


def frame_times(n_frames: int, sr: float, config: STFTConfig) -> np.ndarray:
    """Time in seconds of every STFT frame.

    Parameters
    ----------
    n_frames : int
        Number of frames, >= 0 (rows of ``V`` and of the activations ``W``).
    sr : float
        Sample rate in Hz, > 0.
    config : STFTConfig
        STFT settings. With ``center=False`` the times are those of the window
        centres (an offset of ``n_fft // 2`` samples).

    Returns
    -------
    times : np.ndarray [shape=(n_frames,)], float64
    """
    if not _is_int(n_frames) or n_frames < 0:
        raise ParameterError(f"n_frames must be an int >= 0, got {n_frames!r}")
    _check_sr(sr)
    _check_config(config)
    import librosa

    return np.asarray(
        librosa.frames_to_time(
            np.arange(int(n_frames)),
            sr=float(sr),
            hop_length=config.hop_length,
            n_fft=None if config.center else config.n_fft,
        ),
        dtype=np.float64,
    )
