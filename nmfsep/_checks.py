"""Small argument checks shared by the modules of nmfsep.

Bools are never numbers here: ``True`` is not accepted where an int or a real
number is expected, although Python counts it as one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, TypeGuard, TypeVar

import numpy as np

from nmfsep.exceptions import ParameterError

__all__ = [
    "is_int",
    "is_real",
    "is_choice",
    "fail",
    "check_int",
    "check_real",
    "check_choice",
    "check_callable",
    "check_rate",
    "check_sr",
    "check_audio",
    "MAX_SAMPLE_RATE",
    "MAX_CHANNELS",
    "MAX_SAMPLE",
    "peak_problem",
]


#: Highest sample rate a file may declare (Hz): 768 kHz, the highest rate of common
#: audio hardware. A mixture is resampled to a dictionary's rate, so this bounds memory.
MAX_SAMPLE_RATE = 768_000
#: Most channels a mixture may have (more is almost surely a transposed array).
MAX_CHANNELS = 64
#: Largest sample magnitude accepted (240 dB over full scale): audio lies within about
#: ±1, and samples near float32's maximum (a corrupt or misread float file) overflow the
#: STFT, so their stems would be NaN.
MAX_SAMPLE = 1e12

_T = TypeVar("_T")


def is_int(value: object) -> TypeGuard[int]:
    """Tell whether ``value`` is a Python or numpy integer, and not a bool.

    For type checkers, a True answer makes ``value`` an ``int``.
    """
    return isinstance(value, Integral) and not isinstance(value, bool | np.bool_)


def is_real(value: object) -> TypeGuard[float]:
    """Tell whether ``value`` is a finite real number (Python or numpy), and not a bool.

    NaN and infinities are not. For type checkers, a True answer makes ``value`` a
    ``float``.
    """
    return (
        isinstance(value, Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(float(value))
    )


def fail(name: str, what: str, value: object) -> ParameterError:
    """Return the one error every argument check raises.

    Parameters
    ----------
    name : str
        The Python parameter, e.g. ``"n_components"``.
    what : str
        What it must be, e.g. ``"an int >= 1"``.
    value : object
        What was given.

    Returns
    -------
    ParameterError
        ``"{name} must be {what}, got {value!r}"``, for the caller to raise.
    """
    return ParameterError(f"{name} must be {what}, got {value!r}")


def check_int(
    value: object, name: str, low: int, high: int | None = None, *, none_ok: bool = False
) -> int:
    """Return ``value`` as an int, or raise if it is not an int in ``[low, high]``.

    Parameters
    ----------
    value : object
        The argument to check.
    name : str
        The argument's name, for the message
        ``"{name} must be an int >= {low}, got {value!r}"`` (or ``"an int from
        {low} to {high}"``).
    low : int
        Smallest accepted value.
    high : int or None
        Largest accepted value (None: no bound).
    none_ok : bool
        Accept None (returned as it is).

    Returns
    -------
    int
        ``int(value)``.

    Raises
    ------
    ParameterError
        If ``value`` is a bool, not an integer, or out of range.
    """
    if value is None and none_ok:
        return value  # type: ignore[return-value]
    if not is_int(value) or value < low or (high is not None and value > high):
        what = f"an int >= {low}" if high is None else f"an int from {low} to {high}"
        raise fail(name, ("None or " if none_ok else "") + what, value)
    return int(value)


def check_real(
    value: object, name: str, low: float = 0.0, high: float | None = None, *,
    strict: bool = False, none_ok: bool = False,
) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number in range.

    Parameters
    ----------
    value : object
        The argument to check; NaN and infinities are refused.
    name : str
        The argument's name, for the message
        ``"{name} must be a finite number >= {low}, got {value!r}"``.
    low : float
        Smallest accepted value (default 0); excluded with ``strict``.
    high : float or None
        Largest accepted value (None: no bound).
    strict : bool
        Require ``value > low``.
    none_ok : bool
        Accept None (returned as it is).

    Returns
    -------
    float
        ``float(value)``.

    Raises
    ------
    ParameterError
        If ``value`` is a bool, not a finite real number, or out of range.
    """
    if value is None and none_ok:
        return value  # type: ignore[return-value]
    below = not is_real(value) or (value <= low if strict else value < low)
    if below or (high is not None and value > high):  # type: ignore[operator]
        if high is not None:
            what = f"a number in {'(' if strict else '['}{low:g}, {high:g}]"
        else:
            what = f"a finite number {'>' if strict else '>='} {low:g}"
        raise fail(name, ("None or " if none_ok else "") + what, value)
    return float(value)  # type: ignore[arg-type]


def is_choice(value: object, options: Sequence[_T]) -> TypeGuard[_T]:
    """Tell whether ``value`` (a string, number or None) is one of ``options``.

    For type checkers, a True answer gives ``value`` the type of the options (a
    ``Literal`` of the accepted strings when ``options`` is typed so).
    """
    return isinstance(value, str | int | float | None) and value in options


def check_choice(value: object, name: str, options: Sequence[_T]) -> _T:
    """Return ``value`` if it is one of ``options``, else raise.

    Parameters
    ----------
    value : object
        The argument to check.
    name : str
        The argument's name.
    options : sequence
        The accepted values, listed in the message.

    Returns
    -------
    object
        ``value``, typed as the options are.

    Raises
    ------
    ParameterError
        ``"{name} must be one of (...), got {value!r}"``.
    """
    if is_choice(value, options):
        return value
    raise fail(name, f"one of {tuple(options)}", value)


def check_callable(value: object, name: str, signature: str) -> Any:
    """Return ``value`` if it is None or callable, else raise.

    Parameters
    ----------
    value : object
        The argument to check.
    name : str
        The argument's name.
    signature : str
        How it is called, e.g. ``"callable(done, total)"``, for the message.

    Returns
    -------
    callable or None

    Raises
    ------
    ParameterError
        If ``value`` is neither None nor callable.
    """
    if value is not None and not callable(value):
        raise fail(name, f"None or {signature}", value)
    return value


def check_rate(sr: object, name: str) -> int:
    """Return a sample rate as an int, or raise if it is not a positive whole number.

    Parameters
    ----------
    sr : object
        Sample rate in Hz; ``44100`` and ``44100.0`` are accepted.
    name : str
        The argument's name, for the message
        ``"{name} must be a positive whole number of Hz, got {sr!r}"``.

    Returns
    -------
    int
        The rate in Hz.

    Raises
    ------
    ParameterError
        If ``sr`` is a bool, not a finite number, not > 0 or not whole.
    """
    value = float(sr) if is_real(sr) else math.nan
    if not value > 0 or not value.is_integer():
        raise ParameterError(f"{name} must be a positive whole number of Hz, got {sr!r}")
    return int(value)


def check_sr(sr: object) -> float:
    """Return a sample rate as a float, or raise if it is not a finite number > 0.

    Unlike :func:`check_rate`, the rate need not be a whole number.

    Parameters
    ----------
    sr : object
        Sample rate in Hz.

    Returns
    -------
    float

    Raises
    ------
    ParameterError
        ``"sr must be a positive sample rate in Hz, got {sr!r}"``.
    """
    if not is_real(sr) or sr <= 0:
        raise ParameterError(f"sr must be a positive sample rate in Hz, got {sr!r}")
    return float(sr)


def check_audio(y: object, *, finite: bool = True) -> np.ndarray:
    """Check audio ``(n_channels, n_samples)`` and return it as float32 or float64.

    Parameters
    ----------
    y : object
        The audio, channels first.
    finite : bool
        Also reject NaN and Inf samples (with a ParameterError). Pass False to check
        them yourself, with another error.

    Returns
    -------
    np.ndarray [shape=(n_channels, n_samples)]
        ``y`` itself when float32 or float64, otherwise (float16, float128) a float32 copy.

    Raises
    ------
    ParameterError
        If ``y`` is not a numpy array of that shape with at least one channel and one
        sample, is not floating, or (with ``finite``) holds NaN or Inf.
    """
    if not isinstance(y, np.ndarray):
        raise ParameterError(
            f"y must be a numpy array (n_channels, n_samples), got {type(y).__name__}"
        )
    if y.ndim != 2:
        raise ParameterError(
            f"y must have shape (n_channels, n_samples), got shape {y.shape}; "
            "for mono audio pass y[np.newaxis]"
        )
    if y.shape[0] < 1 or y.shape[1] < 1:
        raise ParameterError(f"y must hold at least one channel and one sample, got {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(
            f"y must be a real floating array (float32 or float64), got dtype {y.dtype}; "
            "convert with y.astype(np.float32) (and scale integers to [-1, 1])"
        )
    if finite and not np.isfinite(y).all():
        raise ParameterError("y contains NaN or Inf samples; replace them before analysis")
    if y.dtype not in (np.float32, np.float64):
        y = y.astype(np.float32)
    return y


def peak_problem(y: np.ndarray) -> str | None:
    """Say why the finite float audio ``y`` is too loud to analyse, or return None.

    Parameters
    ----------
    y : np.ndarray
        Float audio without NaN or Inf, any shape.

    Returns
    -------
    str or None
        ``"has samples as large as ..."`` when a sample exceeds :data:`MAX_SAMPLE` in
        magnitude, else None.
    """
    peak = max(float(np.max(y, initial=0.0)), -float(np.min(y, initial=0.0)))  # no copy
    if peak <= MAX_SAMPLE:
        return None
    return (f"has samples as large as {peak:.3g} (audio lies within about ±1, at most "
            f"{MAX_SAMPLE:.0e} is accepted): it is corrupt or not float audio")
