"""Tests of nmfsep.spectral: STFT settings, stft/istft, the NMF spectrogram."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _audio import CFG, SR

from nmfsep import spectral
from nmfsep.exceptions import ParameterError
from nmfsep.spectral import (
    OverlapAdd,
    STFTConfig,
    fft_frequencies,
    frame_times,
    istft,
    max_magnitude,
    model_spectrogram,
    stft,
)

SMALL = CFG


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("sr", "n_fft"),
    [(8000, 512), (11025, 1024), (16000, 1024), (22050, 2048), (44100, 4096), (48000, 4096),
     (96000, 8192), (1000, 256)],
)  # fmt: skip
def test_for_sample_rate(sr: int, n_fft: int) -> None:
    cfg = STFTConfig.for_sample_rate(sr)
    assert cfg.n_fft == n_fft
    assert cfg.hop_length == n_fft // 4
    assert cfg.window == "hann" and cfg.center is True


def test_defaults_and_properties() -> None:
    cfg = STFTConfig()
    assert (cfg.n_fft, cfg.hop_length, cfg.win_length) == (2048, 512, None)
    assert cfg.effective_win_length == 2048
    assert cfg.n_bins == 1025
    with pytest.raises(AttributeError):
        cfg.n_fft = 1024  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_fft": 8}, "n_fft must be an int from 16 to 262144"),
        ({"n_fft": 2048.0}, "n_fft must be an int"),
        ({"n_fft": True}, "n_fft must be an int"),
        ({"hop_length": 0}, "hop_length must be an int in"),
        ({"hop_length": 4096}, "hop_length must be an int in"),
        ({"hop_length": 600, "win_length": 512}, "hop_length must be an int in"),
        ({"win_length": 4096}, "win_length must be None or an int"),
        ({"win_length": 0}, "win_length must be None or an int"),
        ({"window": "nope"}, "window must be a name accepted by scipy"),
        ({"window": "kaiser"}, "window must be a name accepted by scipy"),
        ({"window": 3}, "window must be a window name"),
        ({"center": "yes"}, "center must be True or False"),
        ({"hop_length": 2048}, "NOLA"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        STFTConfig(**kwargs)


def test_config_accepts_numpy_ints() -> None:
    cfg = STFTConfig(n_fft=np.int64(512), hop_length=np.int32(128))
    assert type(cfg.n_fft) is int and type(cfg.hop_length) is int
    assert cfg == STFTConfig(n_fft=512, hop_length=128)


@pytest.mark.parametrize(
    "cfg",
    [STFTConfig(), SMALL, STFTConfig(1024, 128, 512, "hamming", False)],
)
def test_dict_round_trip(cfg: STFTConfig) -> None:
    d = json.loads(json.dumps(cfg.to_dict()))
    assert STFTConfig.from_dict(d) == cfg


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"extra": 1}, "unknown STFT setting"),
        ({"n_fft": "2048"}, "n_fft must be an int"),
        ({"hop_length": 512.0}, "hop_length must be an int"),
        ({"win_length": "x"}, "win_length must be an int or null"),
        ({"window": None}, "window must be a string"),
        ({"center": 1}, "center must be a bool"),
        ({"n_fft": 4}, "n_fft must be an int from 16 to 262144"),
    ],
)
def test_from_dict_rejects(change: dict, match: str) -> None:
    d = {**STFTConfig().to_dict(), **change}
    with pytest.raises(ParameterError, match=match):
        STFTConfig.from_dict(d)


def test_from_dict_missing_key() -> None:
    d = STFTConfig().to_dict()
    del d["window"]
    with pytest.raises(ParameterError, match=r"missing STFT setting.*window"):
        STFTConfig.from_dict(d)
    with pytest.raises(ParameterError, match="must be a mapping"):
        STFTConfig.from_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize("sr", [0, -1, float("nan"), "44100", True])
def test_for_sample_rate_rejects(sr: object) -> None:
    with pytest.raises(ParameterError, match="sr must be a positive sample rate"):
        STFTConfig.for_sample_rate(sr)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- stft / istft


@pytest.mark.parametrize("n_channels", [1, 2, 5])
def test_stft_shapes(n_channels: int, rng: np.random.Generator) -> None:
    y = rng.standard_normal((n_channels, 3000)).astype(np.float32)
    X = stft(y, SMALL)
    assert X.shape == (n_channels, SMALL.n_bins, 1 + 3000 // SMALL.hop_length)
    assert X.dtype == np.complex64


def test_stft_float64_gives_complex128(rng: np.random.Generator) -> None:
    y = rng.standard_normal((2, 1000))
    X = stft(y, SMALL)
    assert X.dtype == np.complex128
    assert istft(X, SMALL, 1000).dtype == np.float32


@pytest.mark.parametrize(
    "cfg",
    [SMALL, STFTConfig(n_fft=512, hop_length=128, win_length=256, window="hamming")],
)
def test_round_trip_stereo(cfg: STFTConfig, rng: np.random.Generator) -> None:
    # int16-scale amplitudes: tolerance relative to the signal level
    y = (rng.standard_normal((2, 5001)) * 3000).astype(np.float32)
    y_copy = y.copy()
    X = stft(y, cfg)
    X_copy = X.copy()
    y_hat = istft(X, cfg, y.shape[1])
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(X, X_copy)
    assert y_hat.shape == y.shape and y_hat.dtype == np.float32
    np.testing.assert_allclose(y_hat / 3000, y / 3000, atol=1e-5)


def test_round_trip_unit_scale(rng: np.random.Generator) -> None:
    y = rng.uniform(-1, 1, (2, 4000)).astype(np.float32)
    np.testing.assert_allclose(istft(stft(y, SMALL), SMALL, 4000), y, atol=1e-5)


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("n_samples", [1, 100, 255])
def test_short_clips(center: bool, n_samples: int, rng: np.random.Generator) -> None:
    cfg = STFTConfig(n_fft=256, hop_length=64, center=center)
    y = rng.standard_normal((2, n_samples)).astype(np.float32)
    X = stft(y, cfg)  # no warning (pytest turns RuntimeWarning into errors; check all)
    assert X.shape[:2] == (2, cfg.n_bins) and X.shape[2] >= 1
    y_hat = istft(X, cfg, n_samples)
    assert y_hat.shape == (2, n_samples)
    assert np.isfinite(y_hat).all()
    if center:
        np.testing.assert_allclose(y_hat, y, atol=1e-5)


@pytest.mark.parametrize("center", [True, False])
def test_short_clips_are_padded_to_one_window(center: bool) -> None:
    cfg = STFTConfig(n_fft=256, hop_length=64, center=center)
    for n in (1, 100, 255, 256):
        X = stft(np.ones((1, n), np.float32), cfg)
        assert X.shape[2] == (1 + 256 // 64 if center else 1), n


@pytest.mark.parametrize("center", [True, False])
def test_stft_in_many_blocks_matches_librosa(center: bool, monkeypatch,
                                             rng: np.random.Generator) -> None:
    # blocks of 3 frames: the edges of the clip fall inside, between and across blocks
    import librosa

    import nmfsep.spectral as spectral

    cfg = STFTConfig(n_fft=256, hop_length=64, center=center)
    monkeypatch.setattr(spectral, "_BLOCK_BYTES", 3 * 2 * 256 * 4)
    for n in (256, 300, 1000, 1001):
        y = rng.standard_normal((2, n)).astype(np.float32)
        X = stft(y, cfg)
        ref = librosa.stft(y, n_fft=256, hop_length=64, center=center, pad_mode="constant")
        assert X.shape == ref.shape
        assert np.abs(X - ref).max() <= 1e-6 * np.abs(ref).max()


def test_short_clip_no_warning(recwarn: pytest.WarningsRecorder) -> None:
    y = np.ones((1, 100), dtype=np.float32)
    stft(y, STFTConfig())
    assert len(recwarn) == 0


def test_istft_exact_length_pads_and_trims(rng: np.random.Generator) -> None:
    y = rng.standard_normal((1, 2000)).astype(np.float32)
    X = stft(y, SMALL)
    assert istft(X, SMALL, 1500).shape == (1, 1500)
    longer = istft(X, SMALL, 2600)
    assert longer.shape == (1, 2600)
    np.testing.assert_allclose(longer[:, :2000], y, atol=1e-5)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.zeros(100, np.float32), r"shape \(n_channels, n_samples\)"),
        (np.zeros((1, 2, 100), np.float32), r"shape \(n_channels, n_samples\)"),
        (np.zeros((2, 0), np.float32), "at least one channel and one sample"),
        (np.zeros((1, 100), np.int16), "real floating"),
        (np.full((1, 100), np.nan, np.float32), "NaN or Inf"),
        ([[0.0, 1.0]], "numpy array"),
    ],
)
def test_stft_rejects(y: object, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        stft(y, SMALL)  # type: ignore[arg-type]


def test_stft_rejects_bad_config() -> None:
    with pytest.raises(ParameterError, match="config must be an STFTConfig"):
        stft(np.zeros((1, 100), np.float32), {"n_fft": 256})  # type: ignore[arg-type]


def test_istft_rejects() -> None:
    X = stft(np.zeros((1, 1000), np.float32), SMALL)
    with pytest.raises(ParameterError, match="frequency bins"):
        istft(X, STFTConfig(n_fft=512, hop_length=128), 1000)
    with pytest.raises(ParameterError, match="length must be an int >= 1"):
        istft(X, SMALL, 0)
    with pytest.raises(ParameterError, match=r"shape \(n_channels, n_bins, n_frames\)"):
        istft(X[0], SMALL, 1000)
    with pytest.raises(ParameterError, match="must be complex"):
        istft(np.abs(X), SMALL, 1000)


# --------------------------------------------------------------------------- as librosa

CONFIGS = [
    SMALL,
    STFTConfig(n_fft=256, hop_length=64, center=False),
    STFTConfig(n_fft=256, hop_length=96, win_length=192),  # hop does not divide n_fft
    STFTConfig(n_fft=255, hop_length=64, window="hamming"),  # odd n_fft
    STFTConfig(n_fft=512, hop_length=128, win_length=256, window="blackman"),
    STFTConfig(n_fft=300, hop_length=100, window="boxcar", center=False),
    STFTConfig(n_fft=128, hop_length=40, window="triang"),  # a window from scipy
    STFTConfig(n_fft=4096, hop_length=1024),  # the 44.1 kHz default
]


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman", "boxcar", "triang", "bohman"])
@pytest.mark.parametrize("length", [1, 2, 3, 16, 255, 256, 2049, 4096])
def test_windows_are_scipys(name: str, length: int) -> None:
    import scipy.signal

    w = spectral._get_window(name, length)
    np.testing.assert_array_equal(w, scipy.signal.get_window(name, length, fftbins=True))
    for hop in {1, max(1, length // 4), max(1, length // 3), max(1, length // 2), length}:
        if length > 1:
            assert spectral._nola(w, hop) == scipy.signal.check_NOLA(w, length, length - hop)


def test_default_settings_import_neither_scipy_signal_nor_librosa() -> None:
    """stft, istft and the spectrogram with the usual windows stay fast to import."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from nmfsep.spectral import STFTConfig, stft, istft, model_spectrogram\n"
        "for w in ('hann', 'hamming', 'blackman', 'boxcar'):\n"
        "    cfg = STFTConfig(n_fft=256, hop_length=64, window=w)\n"
        "    X = stft(np.ones((2, 1000), np.float32), cfg)\n"
        "    istft(X, cfg, 1000), model_spectrogram(X)\n"
        "bad = [m for m in ('scipy.signal', 'librosa') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stft_matches_librosa(cfg: STFTConfig, dtype: type, rng: np.random.Generator) -> None:
    import librosa

    for n in (cfg.n_fft, cfg.n_fft + 999, 3 * cfg.n_fft + 17):  # short clips are padded
        y = rng.standard_normal((2, n)).astype(dtype)
        X = stft(y, cfg)
        ref = librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                           win_length=cfg.win_length, window=cfg.window, center=cfg.center,
                           pad_mode="constant")
        assert X.shape == ref.shape and X.dtype == ref.dtype
        # float32 audio is transformed in float32 (librosa: float64, then rounded)
        tol = 1e-6 if dtype == np.float32 else 1e-12
        assert np.abs(X - ref).max() <= tol * np.abs(ref).max()
        assert X.transpose(0, 2, 1).flags.c_contiguous  # frame-major in memory


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("n", [1, 100, 1000, 5001])
def test_istft_matches_librosa(cfg: STFTConfig, n: int, rng: np.random.Generator) -> None:
    import librosa

    y = rng.standard_normal((2, n)).astype(np.float32)
    X = stft(y, cfg)
    M = rng.uniform(0, 1, X.shape[1:]).astype(np.float32)  # a masked STFT, not a round trip
    for S in (X, M * X):
        for length in (n, max(1, n - 7), n + 300):
            y_hat = istft(S, cfg, length)
            ref = librosa.istft(np.ascontiguousarray(S), hop_length=cfg.hop_length,
                                win_length=cfg.win_length, n_fft=cfg.n_fft,
                                window=cfg.window, center=cfg.center, length=length)
            assert y_hat.shape == ref.shape and y_hat.dtype == np.float32
            assert np.abs(y_hat - ref).max() <= 1e-5 * max(np.abs(ref).max(), 1e-30)


def test_istft_of_complex128(rng: np.random.Generator) -> None:
    y = rng.standard_normal((1, 3000))
    X = stft(y, SMALL)
    y_hat = istft(X, SMALL, 3000)
    assert y_hat.dtype == np.float32
    np.testing.assert_allclose(y_hat, y, atol=1e-6)


@pytest.mark.parametrize("cfg", CONFIGS[:4])
def test_overlap_add_in_blocks_equals_istft(cfg: STFTConfig, rng: np.random.Generator) -> None:
    y = rng.standard_normal((3, 2345)).astype(np.float32)
    X = stft(y, cfg)
    ref = istft(X, cfg, 2400)
    ola = OverlapAdd(cfg, X.shape[2], 2400, shape=(3,))
    out = np.full((3, 2400), np.nan, np.float32)
    t = 0
    for size in rng.integers(1, 9, size=10 * X.shape[2]):
        if t >= ola.n_frames:
            break
        block = X[:, :, t : t + size].transpose(0, 2, 1)
        if size % 2:
            start, part = ola.push(block)
        else:
            start, part = ola.add(ola.windowed(block))
        out[:, start : start + part.shape[-1]] = part
        t += size
    start, part = ola.finish()
    assert start + part.shape[-1] == 2400
    out[:, start:] = part
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)  # the same, but the order of sums


def test_overlap_add_checks() -> None:
    X = stft(np.zeros((1, 1000), np.float32), SMALL)
    ola = OverlapAdd(SMALL, X.shape[2], 1000, shape=(1,))
    assert ola.n_frames == X.shape[2]
    with pytest.raises(ParameterError, match="frames must have shape"):
        ola.push(X.transpose(0, 2, 1)[0])
    with pytest.raises(ParameterError, match="frames must have shape"):
        ola.add(np.zeros((1, 3, 100), np.float32))
    ola.push(X[:, :, :3].transpose(0, 2, 1))
    with pytest.raises(ParameterError, match="were not pushed"):
        ola.finish()
    with pytest.raises(ParameterError, match="n_frames must be an int >= 1"):
        OverlapAdd(SMALL, 0, 1000)
    with pytest.raises(ParameterError, match="length must be an int >= 1"):
        OverlapAdd(SMALL, 3, 0)
    with pytest.raises(ParameterError, match="float32 or float64"):
        OverlapAdd(SMALL, 3, 10, dtype=np.int16)
    # frames after the end of the audio are not needed
    short = OverlapAdd(SMALL, 50, 100)
    assert short.n_frames == -(-(128 + 100) // 64)


def test_max_magnitude(rng: np.random.Generator) -> None:
    X = stft(rng.standard_normal((2, 5000)).astype(np.float32), SMALL)
    assert max_magnitude(X) == float(np.abs(X).max())
    X[1, 3, 40] = np.nan
    assert np.isnan(max_magnitude(X))


# --------------------------------------------------------------------------- model_spectrogram


def test_model_spectrogram_orientation_sine() -> None:
    t = np.arange(SR) / SR
    y = np.stack([np.sin(2 * np.pi * 1000 * t), 0.5 * np.sin(2 * np.pi * 1000 * t)])
    y = y.astype(np.float32)
    X = stft(y, SMALL)
    V = model_spectrogram(X)
    n_frames = X.shape[2]
    assert V.shape == (n_frames, SMALL.n_bins)
    assert V.dtype == np.float32 and V.flags.c_contiguous
    assert (V >= 0).all()
    freqs = fft_frequencies(SR, SMALL)
    peak_bins = V[2:-2].argmax(axis=1)  # interior frames
    assert np.all(freqs[peak_bins] == 1000.0)


def test_model_spectrogram_values(rng: np.random.Generator) -> None:
    X = (rng.standard_normal((3, 9, 7)) + 1j * rng.standard_normal((3, 9, 7))).astype(np.complex64)
    X_copy = X.copy()
    energy = (np.abs(X.astype(np.complex128)) ** 2).mean(axis=0).T
    np.testing.assert_allclose(model_spectrogram(X, 1.0), np.sqrt(energy), rtol=1e-6)
    np.testing.assert_allclose(model_spectrogram(X, power=2.0), energy, rtol=1e-6)
    np.testing.assert_allclose(model_spectrogram(X, power=0.5), energy**0.25, rtol=1e-6)
    np.testing.assert_array_equal(X, X_copy)
    # mono, power 1: exactly |X|
    np.testing.assert_allclose(model_spectrogram(X[:1]), np.abs(X[0]).T, rtol=1e-6)
    # out: the same values, written where asked (a channel of a stack)
    stack = np.full((2, 7, 9), -1.0, dtype=np.float32)
    row = stack[1]
    assert model_spectrogram(X[1:2], 2.0, scale=2.0, out=row) is row
    np.testing.assert_array_equal(stack[1], model_spectrogram(X[1:2], 2.0, scale=2.0))
    assert (stack[0] == -1).all()
    for bad in (np.empty((7, 8), np.float32), np.empty((7, 9), np.float64)):
        with pytest.raises(ParameterError, match="out must be a float32 array"):
            model_spectrogram(X, out=bad)


def test_model_spectrogram_blocks_change_nothing(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    X = stft(rng.standard_normal((2, 20000)).astype(np.float32), SMALL)
    whole = model_spectrogram(X, 1.0, scale=3.0)
    monkeypatch.setattr(spectral, "_BLOCK_BYTES", 1)  # one frame at a time
    np.testing.assert_array_equal(model_spectrogram(X, 1.0, scale=3.0), whole)
    bin_major = np.ascontiguousarray(X)  # another memory layout, same values
    np.testing.assert_array_equal(model_spectrogram(bin_major, 1.0, scale=3.0), whole)


def test_model_spectrogram_rejects_nan_anywhere() -> None:
    X = np.zeros((2, 5, 4000), np.complex64)
    X[1, 2, 3999] = np.inf
    with pytest.raises(ParameterError, match="NaN or Inf"):
        model_spectrogram(X)


def test_model_spectrogram_silence_and_loud() -> None:
    X = np.zeros((2, 5, 4), np.complex64)
    assert not model_spectrogram(X).any()
    X_loud = np.full((2, 5, 4), 3e7 + 3e7j, np.complex64)  # int16-scale audio, n_fft 2048
    V = model_spectrogram(X_loud, power=2.0)
    assert np.isfinite(V).all()


@pytest.mark.parametrize("power", [0, -1, float("inf"), float("nan"), "1"])
def test_model_spectrogram_rejects_power(power: object) -> None:
    with pytest.raises(ParameterError, match="power must be a finite number > 0"):
        model_spectrogram(np.zeros((1, 5, 4), np.complex64), power)  # type: ignore[arg-type]


def test_model_spectrogram_rejects_shape() -> None:
    with pytest.raises(ParameterError, match="n_channels, n_bins, n_frames"):
        model_spectrogram(np.zeros((5, 4), np.complex64))


# --------------------------------------------------------------------------- axes


def test_fft_frequencies_and_frame_times() -> None:
    f = fft_frequencies(SR, SMALL)
    assert f.shape == (SMALL.n_bins,)
    assert f[0] == 0 and f[-1] == SR / 2
    t = frame_times(5, SR, SMALL)
    np.testing.assert_allclose(t, np.arange(5) * SMALL.hop_length / SR)
    t_nc = frame_times(3, SR, STFTConfig(n_fft=256, hop_length=64, center=False))
    np.testing.assert_allclose(t_nc, (np.arange(3) * 64 + 128) / SR)
    assert frame_times(0, SR, SMALL).shape == (0,)
    with pytest.raises(ParameterError, match="n_frames must be an int >= 0"):
        frame_times(-1, SR, SMALL)


def test_warp_frequencies_moves_partials_and_keeps_their_mass() -> None:
    from nmfsep.spectral import warp_frequencies

    rng = np.random.default_rng(0)
    S = np.zeros((3, 257), np.float32)
    S[0, 40] = 3.0
    S[1, [20, 40, 60]] = 1.0
    S[2] = rng.random(257).astype(np.float32)
    before = S.copy()
    for semitones in (-12, -2, -1, 1, 2, 7):
        out = warp_frequencies(S, semitones)
        assert out.shape == S.shape and out.dtype == S.dtype and (out >= 0).all()
        r = 2 ** (semitones / 12)
        centre = (out[0] * np.arange(257)).sum() / out[0].sum()
        assert abs(centre - 40 * r) < 0.51  # the partial moved by the ratio
        np.testing.assert_allclose(out[:2].sum(axis=1), S[:2].sum(axis=1), rtol=1e-5)
        if semitones < 0:  # nothing falls off the top: all of the noise's mass stays
            assert out[2].sum() == pytest.approx(S[2].sum(), rel=1e-5)
    assert np.array_equal(S, before)
    assert np.array_equal(warp_frequencies(S, 0), S)
    with pytest.raises(ParameterError, match="semitones must be a number in"):
        warp_frequencies(S, 30)


def test_warp_frequencies_of_a_pure_tone_power_spectrum_is_non_negative() -> None:
    """A loud partial next to bins 1e-20 of it: the cumulative sums' differences rounded
    below zero (-8e-13), and ``learn --beta is`` on a pure tone failed in nmf."""
    from nmfsep.spectral import model_spectrogram, warp_frequencies

    t = np.arange(SR) / SR
    y = (0.2 * np.sin(2 * np.pi * 261.6 * t) + 0.2 * np.sin(2 * np.pi * 392.0 * t))[None]
    X = stft(y.astype(np.float32), CFG)
    S = model_spectrogram(X / np.abs(X).max(), 2.0)  # scaled as the training spectrogram is
    for semitones in (-2, -1, 1, 2):
        assert (warp_frequencies(S, semitones) >= 0).all()

