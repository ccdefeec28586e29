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

import functools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from nmfsep._checks import check_audio, check_int, check_real
from nmfsep._checks import check_sr as _check_sr
from nmfsep._checks import is_int as _is_int
from nmfsep._checks import is_real as _is_real
from nmfsep.exceptions import ParameterError

#: Longest STFT window (samples): 2**18, about 6 s at 44.1 kHz. A file (dictionary,
#: model) that declares more is refused before anything of that size is allocated.
MAX_N_FFT = 2**18

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

__all__ = [
    "STFTConfig",
    "stft",
    "istft",
    "OverlapAdd",
    "model_spectrogram",
    "max_magnitude",
    "fft_frequencies",
    "frame_times",
    "FrameGrid",
    "block_frames",
    "warp_frequencies",
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
        check_int(self.n_fft, "n_fft", 16, MAX_N_FFT)
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

        try:
            win_values = _get_window(self.window, win)
        except (ValueError, TypeError) as exc:
            raise ParameterError(
                f"window must be a name accepted by scipy.signal.get_window without "
                f"parameters (e.g. 'hann'), got {self.window!r}"
            ) from exc
        if not _nola(win_values, self.hop_length):
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


# ---------------------------------------------------------------------- windows

#: Cosine-sum windows computed here exactly as :func:`scipy.signal.get_window` computes
#: them, so that the usual settings never import :mod:`scipy.signal` (about a second).
_COSINE_WINDOWS: dict[str, tuple[float, ...]] = {
    "hann": (0.5, 1.0 - 0.5),
    "hamming": (0.54, 1.0 - 0.54),
    "blackman": (0.42, 0.50, 0.08),
}

#: Bytes of one block of frames: blocks that fit the CPU caches are the fastest.
_BLOCK_BYTES = 1 << 22


def block_frames(bytes_per_frame: int) -> int:
    """Return the number of frames in a block of about 4 MiB (at least one).

    Parameters
    ----------
    bytes_per_frame : int
        Bytes one frame takes in the block's largest array.

    Returns
    -------
    int
    """
    return max(1, _BLOCK_BYTES // max(1, int(bytes_per_frame)))


@dataclass(frozen=True)
class FrameGrid:
    """The whole-signal STFT's frames: frame ``t`` covers ``[start(t), start(t) + n_fft)``.

    Attributes
    ----------
    n_fft, hop : int
        Frame length and hop in samples.
    offset : int
        ``n_fft // 2`` with centred frames, else 0.
    """

    n_fft: int
    hop: int
    offset: int

    @classmethod
    def of(cls, config: STFTConfig) -> FrameGrid:
        """Return the frame grid of :func:`stft` with ``config``."""
        return cls(config.n_fft, config.hop_length, config.n_fft // 2 if config.center else 0)

    def start(self, t: int) -> int:
        """Return the first sample of frame ``t`` (negative in the centring pad)."""
        return t * self.hop - self.offset

    def n_frames(self, n_samples: int) -> int:
        """Return the number of frames :func:`stft` gives for ``n_samples`` samples."""
        # stft zero-pads a clip shorter than n_fft to n_fft samples
        length = max(n_samples, self.n_fft)
        return 1 + (length + 2 * self.offset - self.n_fft) // self.hop


def _get_window(name: str, length: int) -> np.ndarray:
    """Periodic window, equal to ``scipy.signal.get_window(name, length, fftbins=True)``.

    Parameters
    ----------
    name : str
        Window name, e.g. ``"hann"``. Hann, Hamming, Blackman and boxcar are computed
        here (with scipy's formulas, so the values are identical); other names are
        passed to scipy.
    length : int
        Number of samples, >= 1.

    Returns
    -------
    w : np.ndarray [shape=(length,)], float64

    Raises
    ------
    ValueError
        For a name scipy does not know, or one that needs parameters.
    """
    if not _is_int(length) or length < 1:
        raise ValueError(f"window length must be an int >= 1, got {length!r}")
    if name in _COSINE_WINDOWS:
        if length == 1:
            return np.ones(1)
        # scipy.signal.windows.general_cosine(length + 1, a, sym=True)[:-1]
        fac = np.linspace(-np.pi, np.pi, length + 1, dtype=np.float64)
        w = np.zeros(length + 1, dtype=np.float64)
        for k, a in enumerate(_COSINE_WINDOWS[name]):
            w += a * np.cos(k * fac)
        return w[:-1]
    if name == "boxcar":
        return np.ones(length)
    import scipy.signal

    return np.asarray(scipy.signal.get_window(name, length, fftbins=True), dtype=np.float64)


def _nola(window: np.ndarray, hop_length: int, tol: float = 1e-10) -> bool:
    """Check the NOLA condition, as ``scipy.signal.check_NOLA(window, n, n - hop_length)``."""
    n, hop = window.shape[0], hop_length
    binsums = np.zeros(hop)
    for i in range(n // hop):
        binsums += window[i * hop : (i + 1) * hop] ** 2
    if n % hop:
        binsums[: n % hop] += window[-(n % hop) :] ** 2
    return bool(np.min(binsums) > tol)


@functools.lru_cache(maxsize=16)
def _fft_window(config: STFTConfig) -> np.ndarray:
    """Analysis and synthesis window, zero-padded (centred) to ``n_fft``, float64, read-only."""
    win = _get_window(config.window, config.effective_win_length)
    lpad = (config.n_fft - win.shape[0]) // 2
    out = np.pad(win, (lpad, config.n_fft - win.shape[0] - lpad))
    out.flags.writeable = False
    return out


# ---------------------------------------------------------------------- stft / istft


def stft(y: np.ndarray, config: STFTConfig) -> np.ndarray:
    """Short-time Fourier transform of every channel.

    The same transform as :func:`librosa.stft` with ``pad_mode="constant"``: frame
    ``t`` holds samples ``[t hop - pad, t hop - pad + n_fft)`` (``pad = n_fft // 2``
    with ``center=True``, else 0; zeros outside the clip), multiplied by the window
    and Fourier transformed.

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
        ``n_bins = n_fft // 2 + 1``. Frame-major in memory:
        ``X.transpose(0, 2, 1)`` (one row per frame) is C-contiguous, so that the
        ``(n_frames, n_bins)`` spectrogram and the synthesis read it in order.

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

    The transform runs in the precision of ``y`` (librosa computes float32 audio in
    float64 and rounds the result to complex64; the two differ by float32 rounding,
    about ``1e-7`` of the frame's largest coefficient).

    Examples
    --------
    >>> y = np.zeros((2, 22050), dtype=np.float32)
    >>> stft(y, STFTConfig()).shape
    (2, 1025, 44)
    """
    _check_config(config)
    y = check_audio(y)
    n_fft, hop = config.n_fft, config.hop_length
    pad = n_fft // 2 if config.center else 0
    n_channels, n_samples = y.shape
    # the zero-padded signal: `pad` zeros, y (zero-padded at the end to at least n_fft
    # samples), `pad` zeros
    n_frames = 1 + (max(n_samples, n_fft) + 2 * pad - n_fft) // hop
    window = _fft_window(config).astype(y.dtype)
    X = np.empty((n_channels, n_frames, config.n_bins), dtype=np.result_type(y.dtype, np.complex64))
    step = block_frames(n_channels * n_fft * y.itemsize)
    for t0 in range(0, n_frames, step):
        t1 = min(t0 + step, n_frames)
        # frame t holds samples [t hop - pad, t hop - pad + n_fft) of y, zeros outside
        seg = _segment(y, t0 * hop - pad, (t1 - 1) * hop - pad + n_fft)
        frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft, axis=-1)[:, ::hop]
        X[:, t0:t1] = np.fft.rfft(frames * window, axis=-1)
    return X.transpose(0, 2, 1)


def _segment(y: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Return samples ``start:stop`` of every channel, zeros outside the clip.

    A view where the range lies inside the clip; a block-sized copy only at its edges
    (so the whole signal is never copied to pad it).
    """
    n_samples = y.shape[1]
    if start >= 0 and stop <= n_samples:
        return y[:, start:stop]
    seg = np.zeros((y.shape[0], stop - start), dtype=y.dtype)
    lo, hi = max(start, 0), min(stop, n_samples)
    if hi > lo:
        seg[:, lo - start : hi - start] = y[:, lo:hi]
    return seg


class OverlapAdd:
    """Inverse STFT fed one block of frames at a time.

    Every block is inverse Fourier transformed, windowed and overlap-added; samples
    are returned as soon as every frame that covers them has been added, divided by
    the summed squared window (where it is not ~0): the computation of
    :func:`librosa.istft`, equal to it to float rounding (tests/test_spectral.py). Memory
    is a few blocks, whatever the length; :func:`istft` is this class fed with the
    whole STFT.

    Parameters
    ----------
    config : STFTConfig
        The settings the frames were computed with.
    n_frames : int
        Number of frames of the STFT, >= 1.
    length : int
        Number of output samples, >= 1 (the length of the analysed audio); frames that
        start after it are not needed (:attr:`n_frames` says how many are).
    shape : tuple of int
        Leading shape of the frames, e.g. ``(n_channels,)`` or ``(n_groups,
        n_channels)``.
    dtype : numpy dtype
        Real dtype of the computation and of the output (float32 for complex64 frames,
        float64 for complex128).

    Attributes
    ----------
    n_frames : int
        Frames to :meth:`push` before :meth:`finish`; more are ignored.

    Examples
    --------
    >>> cfg = STFTConfig(n_fft=256, hop_length=64)
    >>> y = np.random.default_rng(0).standard_normal((1, 1000)).astype(np.float32)
    >>> X = stft(y, cfg)  # (1, n_bins, n_frames)
    >>> ola = OverlapAdd(cfg, X.shape[2], 1000, shape=(1,))
    >>> parts = [ola.push(X[:, :, t : t + 5].transpose(0, 2, 1))
    ...          for t in range(0, ola.n_frames, 5)]
    >>> parts.append(ola.finish())
    >>> y_hat = np.concatenate([p for _, p in parts], axis=-1)
    >>> bool(np.abs(y_hat - y).max() < 1e-5)
    True
    """

    def __init__(
        self,
        config: STFTConfig,
        n_frames: int,
        length: int,
        *,
        shape: tuple[int, ...] = (),
        dtype: DTypeLike = np.float32,
    ) -> None:
        _check_config(config)
        check_int(n_frames, "n_frames", 1)
        check_int(length, "length", 1)
        self.config = config
        self.length = int(length)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ParameterError(f"dtype must be float32 or float64, got {self.dtype}")
        n_fft, hop = config.n_fft, config.hop_length
        self._offset = n_fft // 2 if config.center else 0
        # frames that start after the last output sample add nothing to it
        self.n_frames = min(int(n_frames), -(-(self._offset + self.length) // hop))
        self._n_chunks = -(-n_fft // hop)  # hop-sized chunks per frame
        window = _fft_window(config)
        self._window = window.astype(self.dtype)
        squared = np.zeros(self._n_chunks * hop)
        squared[:n_fft] = window**2
        self._window_sq = squared.reshape(self._n_chunks, hop)  # float64
        self._steady = self._window_sq.sum(axis=0)  # rows that every chunk reaches
        self._tiny = np.finfo(self.dtype).tiny
        # rows of hop samples that later frames still add to
        self._carry = np.zeros((*self.shape, self._n_chunks - 1, hop), dtype=self.dtype)
        self._frame = 0  # frames added so far
        self._done = 0  # samples returned so far

    def push(self, S: np.ndarray) -> tuple[int, np.ndarray]:
        """Add a block of frames; return the samples it completes.

        The same as ``add(windowed(S))``.

        Parameters
        ----------
        S : np.ndarray [shape=(*shape, n, n_bins)], complex
            The next ``n`` frames, frame-major (e.g. ``X[:, :, t:t + n].transpose(0, 2, 1)``
            for an STFT ``X (n_channels, n_bins, n_frames)``).

        Returns
        -------
        start : int
            Index of the first sample returned.
        y : np.ndarray [shape=(*shape, m)], ``dtype``
            Samples ``start .. start + m - 1`` (``m`` may be 0), final.

        Raises
        ------
        ParameterError
            If ``S`` does not have the leading shape and the bins of this synthesis.
        """
        return self.add(self.windowed(S))

    def windowed(self, S: np.ndarray) -> np.ndarray:
        """Inverse FFT and window of frames, without adding them (no state: thread-safe).

        Parameters
        ----------
        S : np.ndarray [shape=(*shape, n, n_bins)], complex
            Frames, frame-major.

        Returns
        -------
        frames : np.ndarray [shape=(*shape, n, n_fft)], ``dtype``
            To give to :meth:`add` in order.

        Raises
        ------
        ParameterError
            If ``S`` does not have the leading shape and the bins of this synthesis.
        """
        if (
            not isinstance(S, np.ndarray)
            or S.ndim != len(self.shape) + 2
            or S.shape[:-2] != self.shape
            or S.shape[-1] != self.config.n_bins
        ):
            raise ParameterError(
                f"frames must have shape (*{self.shape}, n, {self.config.n_bins}), got "
                f"{getattr(S, 'shape', type(S))}"
            )
        frames = np.fft.irfft(S, n=self.config.n_fft, axis=-1)  # (*shape, n, n_fft)
        if frames.dtype != self.dtype:
            frames = frames.astype(self.dtype)
        frames *= self._window
        return frames

    def add(self, frames: np.ndarray) -> tuple[int, np.ndarray]:
        """Overlap-add the next windowed frames; return the samples they complete.

        Parameters
        ----------
        frames : np.ndarray [shape=(*shape, n, n_fft)]
            From :meth:`windowed`; frames beyond :attr:`n_frames` are ignored.

        Returns
        -------
        start : int
            Index of the first sample returned.
        y : np.ndarray [shape=(*shape, m)], ``dtype``
            Samples ``start .. start + m - 1`` (``m`` may be 0), final.
        """
        n_fft, hop, nc = self.config.n_fft, self.config.hop_length, self._n_chunks
        if frames.shape[:-2] != self.shape or frames.shape[-1] != n_fft:
            raise ParameterError(
                f"frames must have shape (*{self.shape}, n, {n_fft}), got {frames.shape}"
            )
        n = min(frames.shape[-2], self.n_frames - self._frame)
        if n <= 0:
            return self._done, np.zeros((*self.shape, 0), dtype=self.dtype)
        acc = np.empty((*self.shape, n + nc - 1, hop), dtype=self.dtype)
        acc[..., : nc - 1, :] = self._carry
        acc[..., nc - 1 :, :] = 0
        for i in range(nc):  # chunk i of frame j lands in row j + i
            lo, hi = i * hop, min((i + 1) * hop, n_fft)
            acc[..., i : i + n, : hi - lo] += frames[..., :n, lo:hi]
        self._carry = acc[..., n:, :].copy()
        first = self._frame
        self._frame += n
        return self._emit(acc[..., :n, :], first)

    def finish(self) -> tuple[int, np.ndarray]:
        """Return the last samples, up to ``length`` (zeros where no frame reaches).

        Returns
        -------
        start : int
            Index of the first sample returned.
        y : np.ndarray [shape=(*shape, length - start)], ``dtype``

        Raises
        ------
        ParameterError
            If frames are missing (fewer than :attr:`n_frames` were pushed).
        """
        if self._frame < self.n_frames:
            raise ParameterError(
                f"{self.n_frames - self._frame} of {self.n_frames} frames were not pushed"
            )
        start, y = self._emit(self._carry, self._frame)
        rest = self.length - self._done
        if rest > 0:
            y = np.concatenate([y, np.zeros((*self.shape, rest), dtype=self.dtype)], axis=-1)
            self._done = self.length
        return start, y

    def _emit(self, rows: np.ndarray, first: int) -> tuple[int, np.ndarray]:
        """Normalise and return the part of ``rows`` (rows ``first ..`` of hop samples) in range."""
        hop = self.config.hop_length
        n_rows = rows.shape[-2]
        p0 = first * hop  # position of rows[..., 0, 0] in the padded signal
        lo = max(p0, self._offset + self._done)
        hi = min(p0 + n_rows * hop, self._offset + self.length)
        start = self._done
        if hi <= lo:
            return start, np.zeros((*self.shape, 0), dtype=self.dtype)
        y = rows.reshape(*self.shape, n_rows * hop)[..., lo - p0 : hi - p0]
        env = self._envelope(first, first + n_rows)[lo - p0 : hi - p0]
        y = y / np.where(env > self._tiny, env, 1.0).astype(self.dtype)
        self._done = hi - self._offset
        return start, y

    def _envelope(self, r0: int, r1: int) -> np.ndarray:
        """Return the summed squared window of rows ``r0 .. r1 - 1``, ``((r1 - r0) * hop,)``."""
        frame = np.arange(r0, r1)[:, None] - np.arange(self._n_chunks)[None, :]
        covers = (frame >= 0) & (frame < self.n_frames)  # row r holds chunk i of frame r - i
        env = np.empty((r1 - r0, self.config.hop_length))
        full = covers.all(axis=1)
        env[full] = self._steady
        for r in np.flatnonzero(~full):  # the first and last rows only
            env[r] = self._window_sq[covers[r]].sum(axis=0)
        return env.ravel()


def istft(X: np.ndarray, config: STFTConfig, length: int) -> np.ndarray:
    """Inverse STFT of every channel, trimmed or zero-padded to an exact length.

    Computes what :func:`librosa.istft` computes (windowed inverse FFT, overlap-add,
    division by the summed squared window), a block of frames at a time
    (:class:`OverlapAdd`).

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
        Computed in float32 for complex64 ``X``, in float64 for complex128.

    Raises
    ------
    ParameterError
        If ``X`` is not a finite 3-D complex array whose bins match ``config``, or
        ``length`` is not a positive int.

    See Also
    --------
    stft : the forward transform.
    OverlapAdd : the same, fed block by block.
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
    check_int(length, "length", 1)
    real = np.float32 if X.dtype == np.complex64 else np.float64
    n_channels = X.shape[0]
    ola = OverlapAdd(config, X.shape[2], int(length), shape=(n_channels,), dtype=real)
    y = np.empty((n_channels, int(length)), dtype=np.float32)
    step = block_frames(n_channels * config.n_fft * np.dtype(real).itemsize)
    for t0 in range(0, ola.n_frames, step):
        block = X[:, :, t0 : t0 + step].transpose(0, 2, 1)
        if block.dtype not in (np.complex64, np.complex128):
            block = block.astype(np.complex128)
        start, part = ola.push(block)
        y[:, start : start + part.shape[-1]] = part
    start, part = ola.finish()
    y[:, start:] = part
    return y


# ---------------------------------------------------------------------- spectrogram


def model_spectrogram(X: np.ndarray, power: float = 1.0, *, scale: float = 1.0,
                      out: np.ndarray | None = None) -> np.ndarray:
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
    out : np.ndarray [shape=(n_frames, n_bins)], float32, optional
        Where to write V (e.g. one channel's row of a stack of spectrograms).

    Returns
    -------
    V : np.ndarray [shape=(n_frames, n_bins)], float32, non-negative, C-contiguous
        (``out`` when given)

    Raises
    ------
    ParameterError
        If ``X`` is not a finite 3-D array or ``power`` is not finite and > 0.

    See Also
    --------
    stft : computes ``X``.

    Notes
    -----
    Every frame is computed on its own (a block of frames at a time, in float64), so
    the spectrogram of some frames of ``X`` equals those rows of the whole one.
    """
    if not isinstance(X, np.ndarray) or X.ndim != 3:
        raise ParameterError(
            "X must be an array of shape (n_channels, n_bins, n_frames), got "
            f"{getattr(X, 'shape', type(X))}"
        )
    check_real(power, "power", strict=True)
    if not _is_real(scale) or not 0 < float(scale) < np.inf:
        raise ParameterError(f"scale must be a finite number > 0, got {scale!r}")
    n_channels, n_bins, n_frames = X.shape
    frames = X.transpose(0, 2, 1)  # (n_channels, n_frames, n_bins); contiguous from stft
    if out is not None and (out.shape != (n_frames, n_bins) or out.dtype != np.float32):
        raise ParameterError(
            f"out must be a float32 array of shape {(n_frames, n_bins)}, got "
            f"{out.dtype} {out.shape}"
        )
    V = np.empty((n_frames, n_bins), dtype=np.float32) if out is None else out
    p = float(power)
    step = block_frames(n_bins * 8)
    # Accumulate in float64, one channel at a time: |X / scale|**2 of very quiet or
    # very loud audio neither underflows nor overflows, and a float32 mean would lose
    # digits.
    for t0 in range(0, n_frames, step):
        block = frames[:, t0 : t0 + step]
        if n_channels == 1 and p == 1.0:
            # |X| / scale in float32: np.abs neither underflows nor overflows, and the
            # result is within a float32 rounding of the float64 route's (5x faster;
            # the common case: every channel of the stereo model)
            dest = V[t0 : t0 + step]
            np.abs(block[0], out=dest)
            if scale != 1.0:
                dest /= float(scale)
            if not np.isfinite(dest).all():
                raise ParameterError("X contains NaN or Inf values")
            continue
        if not np.isfinite(block).all():
            raise ParameterError("X contains NaN or Inf values")
        energy = np.zeros(block.shape[1:], dtype=np.float64)  # (n, n_bins)
        for channel in block:
            mag2 = np.abs(channel).astype(np.float64)
            if scale != 1.0:
                mag2 /= float(scale)
            mag2 *= mag2
            energy += mag2
        energy /= n_channels
        if p == 2.0:
            V[t0 : t0 + step] = energy
        elif p == 1.0:
            V[t0 : t0 + step] = np.sqrt(energy)
        else:
            V[t0 : t0 + step] = energy ** (p / 2.0)
    return V


def max_magnitude(X: np.ndarray) -> float:
    """Largest ``|X|`` of an STFT, computed a block of frames at a time.

    Parameters
    ----------
    X : np.ndarray [shape=(n_channels, n_bins, n_frames)], complex

    Returns
    -------
    float
        ``float(np.abs(X).max())`` (NaN if ``X`` holds NaN), without a full-size
        temporary.
    """
    frames = X.transpose(0, 2, 1)
    step = block_frames(X.shape[0] * X.shape[1] * 4)
    peak = 0.0
    for t0 in range(0, frames.shape[1], step):
        m = float(np.abs(frames[:, t0 : t0 + step]).max())
        if not m <= peak:  # also NaN
            peak = m
            if math.isnan(m):
                break
    return peak


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
        ``H``) is bin ``freqs[j]`` (as :func:`librosa.fft_frequencies`).
    """
    _check_sr(sr)
    _check_config(config)
    return np.fft.rfftfreq(n=config.n_fft, d=1.0 / float(sr))


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
        As :func:`librosa.frames_to_time` (whole samples divided by ``sr``).
    """
    check_int(n_frames, "n_frames", 0)
    _check_sr(sr)
    _check_config(config)
    offset = 0 if config.center else config.n_fft // 2
    samples = (np.arange(int(n_frames)) * config.hop_length + offset).astype(int)
    return samples / float(sr)


def warp_frequencies(S: np.ndarray, semitones: float) -> np.ndarray:
    """Shift a spectrogram in pitch by scaling its frequency axis.

    Output bin ``f`` takes the input's mass over the bins it comes from,
    ``[(f - ½) / r, (f + ½) / r]`` with ``r = 2 ** (semitones / 12)`` (the input read as
    a piecewise-constant density): a partial keeps its magnitude when it moves, also
    when the axis is compressed (a downward shift) and it would otherwise fall between
    samples. Like
    resampling the audio, it moves the partials and the spectral envelope together;
    content shifted above the top bin is dropped, bins with no source are 0.

    Parameters
    ----------
    S : np.ndarray [shape=(..., n_bins)], non-negative
        Magnitude or power spectra, one per row (``V``'s orientation). Never modified.
    semitones : float
        Shift in semitones, finite, from -24 to 24 (0 returns a copy).

    Returns
    -------
    np.ndarray [shape=(..., n_bins)], ``S``'s dtype

    Examples
    --------
    >>> S = np.zeros((1, 64), np.float32); S[0, 10] = 1
    >>> warp_frequencies(S, 12)[0, 19:22].tolist()
    [0.25, 0.5, 0.25]
    """
    check_real(semitones, "semitones", -24, 24)
    n_bins = S.shape[-1]
    ratio = 2.0 ** (float(semitones) / 12.0)
    # cumulative mass at the bin edges -1/2, 1/2, ..., n_bins - 1/2
    C = np.zeros(S.shape[:-1] + (n_bins + 1,), dtype=np.float64)
    np.cumsum(S, axis=-1, dtype=np.float64, out=C[..., 1:])
    edges = (np.arange(n_bins + 1) - 0.5) / ratio + 0.5  # output edges, in units of C's index
    edges = np.clip(edges, 0.0, float(n_bins))
    i = np.minimum(edges.astype(np.intp), n_bins - 1)
    frac = edges - i
    mass = C[..., i] * (1.0 - frac) + C[..., i + 1] * frac
    # differences of a rising cumulative sum can round below 0 by ~1e-16 of a frame's
    # total (power spectra of pure tones span more than that): keep them non-negative
    return np.maximum(np.diff(mass, axis=-1), 0.0).astype(S.dtype, copy=False)
