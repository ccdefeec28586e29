"""Small argument checks shared by the modules of nmfsep.

Bools are never numbers here: ``True`` is not accepted where an int or a real
number is expected, although Python counts it as one.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import TypeGuard

import numpy as np

from nmfsep.exceptions import ParameterError

__all__ = [
    "is_int",
    "is_real",
    "check_int",
    "check_real",
    "check_rate",
    "check_sr",
    "check_audio",
]


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


def check_int(value: object, name: str, low: int) -> int:
    """Return ``value`` as an int, or raise if it is not an int ``>= low``.

    Parameters
    ----------
    value : object
        The argument to check.
    name : str
        The argument's name, for the message
        ``"{name} must be an int >= {low}, got {value!r}"``.
    low : int
        Smallest accepted value.

    Returns
    -------
    int
        ``int(value)``.

    Raises
    ------
    ParameterError
        If ``value`` is a bool, not an integer, or below ``low``.
    """
    if not is_int(value) or value < low:
        raise ParameterError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def check_real(value: object, name: str, low: float = 0.0) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number ``>= low``.

    Parameters
    ----------
    value : object
        The argument to check; NaN and infinities are refused.
    name : str
        The argument's name, for the messages.
    low : float
        Smallest accepted value (default 0).

    Returns
    -------
    float
        ``float(value)``.

    Raises
    ------
    ParameterError
        If ``value`` is a bool, not a finite real number, or below ``low``.
    """
    if not is_real(value):
        raise ParameterError(f"{name} must be a finite number >= {low}, got {value!r}")
    if value < low:
        raise ParameterError(f"{name} must be >= {low}, got {value!r}")
    return float(value)


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
