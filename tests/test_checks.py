"""Tests of nmfsep._checks: the small argument checks shared by the modules."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from nmfsep._checks import check_audio, check_int, check_rate, check_real, check_sr, is_int, is_real
from nmfsep.exceptions import ParameterError


@pytest.mark.parametrize("value", [0, -3, np.int16(7), np.uint64(2**63)])
def test_is_int_accepts_integers(value: object) -> None:
    assert is_int(value)


@pytest.mark.parametrize("value", [True, np.bool_(False), 1.0, np.float32(2), "3", None])
def test_is_int_refuses_others(value: object) -> None:
    assert not is_int(value)


@pytest.mark.parametrize("value", [0, -2.5, np.float32(1e-3), np.int8(4), Fraction(1, 3)])
def test_is_real_accepts_finite_numbers(value: object) -> None:
    assert is_real(value)


@pytest.mark.parametrize(
    "value", [True, np.bool_(True), float("nan"), float("inf"), -np.inf, 1j, "1", None]
)
def test_is_real_refuses_others(value: object) -> None:
    assert not is_real(value)


def test_check_int_and_check_real() -> None:
    assert check_int(np.int64(3), "k", 1) == 3 and type(check_int(np.int64(3), "k", 1)) is int
    with pytest.raises(ParameterError, match=r"^k must be an int >= 1, got 0$"):
        check_int(0, "k", 1)
    with pytest.raises(ParameterError, match=r"^k must be an int >= 1, got True$"):
        check_int(True, "k", 1)
    assert check_real(np.float32(0.5), "tol") == 0.5
    with pytest.raises(ParameterError, match=r"^tol must be a finite number >= 0, got nan$"):
        check_real(float("nan"), "tol")
    with pytest.raises(ParameterError, match=r"^tol must be a finite number >= 0, got -1$"):
        check_real(-1, "tol")


def test_check_rate_and_check_sr() -> None:
    assert check_rate(44100.0, "sr") == 44100
    for bad in (0, 8000.5, float("inf"), True, "8000"):
        with pytest.raises(ParameterError, match="sr must be a positive whole number of Hz"):
            check_rate(bad, "sr")
    assert check_sr(43.07) == 43.07
    for bad in (0, -1.0, float("nan"), False):
        with pytest.raises(ParameterError, match="sr must be a positive sample rate in Hz"):
            check_sr(bad)


def test_check_audio() -> None:
    y = np.zeros((2, 8), np.float64)
    assert check_audio(y) is y
    assert check_audio(y.astype(np.float16)).dtype == np.float32
    y[0, 0] = np.nan
    assert check_audio(y, finite=False) is y
    with pytest.raises(ParameterError, match="NaN or Inf"):
        check_audio(y)
    with pytest.raises(ParameterError, match="real floating"):
        check_audio(np.zeros((1, 8), np.int16))


def test_one_message_template_for_every_check() -> None:
    from nmfsep._checks import check_callable, check_choice

    cases = [
        (lambda: check_int(70, "context_frames", 1, 64), "an int from 1 to 64", 70),
        (lambda: check_int("a", "n_threads", 1, none_ok=True), "None or an int >= 1", "a"),
        (lambda: check_real(0, "mask_power", strict=True), "a finite number > 0", 0),
        (lambda: check_real(2, "l1_ratio", 0, 1), "a number in [0, 1]", 2),
        (lambda: check_choice("x", "mask", ("soft", "binary")), "one of ('soft', 'binary')", "x"),
        (lambda: check_callable(3, "callback", "callable(done, total)"),
         "None or callable(done, total)", 3),
    ]
    for call, what, value in cases:
        with pytest.raises(ParameterError) as info:
            call()
        name = str(info.value).split(" must be ")[0]
        assert str(info.value) == f"{name} must be {what}, got {value!r}"
    assert check_int(None, "n", 1, none_ok=True) is None
    assert check_real(1.0, "p", 0, strict=True) == 1.0 and check_choice("soft", "m", ("soft",))
