"""The spatial Wiener filter (nmfsep.spatial_wiener): against a slow per-bin oracle, exact
demixing of sources at distinct positions, masks summing to one, and its use in separate()."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from nmfsep import spatial_wiener
from nmfsep._wiener_kernels import em_stereo, masks_stereo
from nmfsep.cli import _MAX_WIENER_ITER, _WIENER_ITER, app
from nmfsep.exceptions import ParameterError
from nmfsep.plan import MAX_WIENER_ITER
from nmfsep.separate import separate
from nmfsep.spatial_wiener import (
    START_WIDTH,
    WIENER_ITER,
    SpatialWiener,
    rank_one_covariances,
    real_masks,
    wiener_block,
)


def _random_covariances(rng, n_sources, n_bins, n_channels):
    B = rng.standard_normal((n_sources, n_bins, n_channels, n_channels)) + 1j * rng.standard_normal(
        (n_sources, n_bins, n_channels, n_channels))
    return B @ np.conj(np.swapaxes(B, -1, -2))


def _slow_wiener(X, v, R):
    """v_j R_j (Σ_k v_k R_k + load)^-1 x, one time-frequency point at a time.

    The loading is the implementation's: 1e-6 of the mean diagonal, + 1e-30 so that a
    point where every power is zero gives y = 0 (then x / n_sources each, shared).
    """
    n_sources = v.shape[0]
    n_channels, n_frames, n_bins = X.shape
    Y = np.zeros((n_sources, n_channels, n_frames, n_bins), dtype=complex)
    for t in range(n_frames):
        for f in range(n_bins):
            C = sum(v[j, t, f] * R[j, f] for j in range(n_sources))
            C = C + (1e-6 * np.trace(C).real / n_channels + 1e-30) * np.eye(n_channels)
            z = np.linalg.solve(C, X[:, t, f])
            for j in range(n_sources):
                Y[j, :, t, f] = v[j, t, f] * R[j, f] @ z
    Y += (X - Y.sum(axis=0)) / n_sources
    return Y


@pytest.mark.parametrize("n_channels", [2, 3])
@pytest.mark.parametrize("n_sources", [2, 3])
def test_wiener_block_matches_a_per_bin_oracle_and_adds_up(n_channels, n_sources):
    rng = np.random.default_rng(n_channels * 10 + n_sources)
    X = rng.standard_normal((n_channels, 5, 7)) + 1j * rng.standard_normal((n_channels, 5, 7))
    v = rng.random((n_sources, 5, 7)) + 0.1
    R = _random_covariances(rng, n_sources, 7, n_channels)
    X0, v0, R0 = X.copy(), v.copy(), R.copy()
    Y = wiener_block(X, v, R)
    # two channels: single precision after the determinant (float64)
    tol = 1e-5 if n_channels == 2 else 1e-9
    np.testing.assert_allclose(Y, _slow_wiener(X, v, R), rtol=tol, atol=tol)
    np.testing.assert_allclose(Y.sum(axis=0), X, atol=tol)
    for a, b in ((X, X0), (v, v0), (R, R0)):  # inputs untouched
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n_sources", [2, 3])
def test_compiled_kernels_match_the_per_bin_oracle_in_double_precision(n_sources):
    rng = np.random.default_rng(n_sources)
    n_frames, n_bins = 6, 9
    X = (rng.standard_normal((2, n_frames, n_bins))
         + 1j * rng.standard_normal((2, n_frames, n_bins))).astype(np.complex64)
    X[:, 2, 3] = 0  # a silent point: masks 1 / n_sources
    X[1, 4, 5] = 0  # silent in one channel only
    v = (rng.random((n_sources, n_frames, n_bins)) + 0.1).astype(np.float32)
    v[:, 1, 1] = 0  # no source: the loading keeps it finite
    R = _random_covariances(rng, n_sources, n_bins, 2)
    r = [np.ascontiguousarray(a) for a in (R[..., 0, 0].real, R[..., 1, 1].real,
                                           R[..., 0, 1].real, R[..., 0, 1].imag)]
    Y = _slow_wiener(X.astype(complex), v.astype(float), R)
    M = np.zeros((n_sources, 2, n_frames - 1, n_bins), dtype=np.complex64)
    for f0, f1 in ((0, 4), (4, n_bins)):  # ranges of bins fill their own part
        masks_stereo(X[0], X[1], v, *r, 1e-6, 1, n_frames, f0, f1, M)
    expected = np.divide(Y, X[None], out=np.full(Y.shape, 1 / n_sources, dtype=complex),
                         where=(X != 0)[None])[:, :, 1:]
    np.testing.assert_allclose(M, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(M.sum(axis=0), 1.0, atol=1e-5)
    # an EM pass: new powers, and Σ_t y yᴴ / (v + floor) per source and bin
    floor = np.array([1e-3] * n_sources)
    v_new, num = v.copy(), np.full((n_sources, 4, n_bins), np.nan)
    for f0, f1 in ((0, 5), (5, n_bins)):
        em_stereo(X[0], X[1], v_new, *r, 1e-6, floor, num, f0, f1)
    power = np.mean(np.abs(Y) ** 2, axis=1)
    np.testing.assert_allclose(v_new, power, rtol=1e-5, atol=1e-7)
    w = Y / np.sqrt(power + floor[:, None, None])[:, None]
    outer = np.einsum("jctf,jdtf->jfcd", w, np.conj(w))
    np.testing.assert_allclose(num[:, 0], outer[..., 0, 0].real, rtol=1e-5)
    np.testing.assert_allclose(num[:, 1], outer[..., 1, 1].real, rtol=1e-5)
    np.testing.assert_allclose(num[:, 2] + 1j * num[:, 3], outer[..., 0, 1], rtol=1e-5,
                               atol=1e-5 * np.abs(outer).max())


def test_sources_at_distinct_positions_are_recovered_whatever_their_powers():
    # two sources in two channels, instantaneous mixing: the filter inverts it from the
    # positions alone, even with powers that say nothing (all equal)
    rng = np.random.default_rng(0)
    S = rng.standard_normal((2, 40, 9)) + 1j * rng.standard_normal((2, 40, 9))
    A = np.array([[0.95, 0.2], [0.05, 0.8]])
    images = A.T[:, :, None, None] * S[:, None]  # (source, channel, t, f)
    X = images.sum(axis=0)
    Y = wiener_block(X, np.ones((2, 40, 9)), rank_one_covariances(A, 9))
    err = np.sum(np.abs(Y - images) ** 2) / np.sum(np.abs(images) ** 2)
    assert err < 1e-6


def test_rank_one_covariances_have_trace_n_channels_and_the_gains_direction():
    R = rank_one_covariances(np.array([[3.0, 0.0], [4.0, 0.0]]), 5)
    assert R.shape == (2, 5, 2, 2)
    np.testing.assert_allclose(np.trace(R[0, 0]).real, 2.0, rtol=1e-5)
    np.testing.assert_allclose(R[0, 0].real[0, 1] / R[0, 0].real[0, 0], 4 / 3, rtol=1e-5)
    assert np.isfinite(R[1]).all()  # a source with no gains: no direction, no NaN


def _masks_of(M):
    return lambda t0, t1: M[:, :, t0:t1]


@pytest.mark.parametrize("fused", [False, True])
def test_spatial_wiener_masks_sum_to_one_and_match_an_obvious_em(fused, monkeypatch):
    # fused: the compiled kernels (taken from a size on), forced here on a small mixture
    monkeypatch.setattr(spatial_wiener, "FUSED_MIN_POINTS", 0 if fused else 1 << 62)
    rng = np.random.default_rng(3)
    n_frames, n_bins = 300, 6  # more frames than one block
    X = (rng.standard_normal((2, n_bins, n_frames))
         + 1j * rng.standard_normal((2, n_bins, n_frames))).astype(np.complex64)
    X[:, :, 10] = 0  # a silent frame
    M0 = rng.random((2, 2, n_frames, n_bins)).astype(np.float32)
    M0 /= M0.sum(axis=0)
    A = np.array([[0.9, 0.3], [0.1, 0.7]])
    X_before = X.copy()
    sw = SpatialWiener(X, _masks_of(M0), A, 2)
    assert sw.fused == fused
    M = np.concatenate([sw(0, 100), sw(100, n_frames)], axis=2)
    np.testing.assert_array_equal(X, X_before)
    assert M.dtype == np.complex64 and M.shape == (2, 2, n_frames, n_bins)
    np.testing.assert_allclose(M.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(M[:, :, 10], 0.5)
    # the same EM written out on whole arrays
    Xf = X.transpose(0, 2, 1).astype(np.complex128)
    Y = M0 * Xf[None]
    R = rank_one_covariances(A, n_bins, START_WIDTH)
    for it in range(3):
        v = np.mean(np.abs(Y) ** 2, axis=1)
        Y = wiener_block(Xf, v, R)
        if it == 2:
            break
        vn = np.mean(np.abs(Y) ** 2, axis=1)
        w = Y / np.sqrt(vn + 1e-6 * v.max(axis=(1, 2), keepdims=True))[:, None]
        num = np.einsum("jctf,jdtf->jfcd", w, np.conj(w))
        R = num * (2 / np.einsum("jfcc->jf", num).real)[..., None, None]
    expected = np.divide(Y, Xf[None], out=np.full(Y.shape, 0.5, dtype=complex),
                         where=(np.abs(Xf) > 0)[None])
    np.testing.assert_allclose(M, expected, rtol=1e-3, atol=1e-4)


def test_real_masks_are_shares_summing_to_one():
    M = np.array([[1 + 1j, 0], [-0.5j, 0]], dtype=np.complex64)[:, :, None]
    out = real_masks(M)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=0), 1.0)
    assert (out >= 0).all() and (out <= 1).all()
    real = np.full((2, 3), 0.5, dtype=np.float32)
    assert real_masks(real) is real


def test_shape_mismatch_is_one_clear_error():
    X = np.zeros((2, 3, 4), dtype=np.complex64)
    with pytest.raises(ParameterError, match="n_channels, n_sources"):
        SpatialWiener(X, lambda a, b: np.zeros((2, 2, b - a, 3)), np.ones((3, 2)), 1)


# ------------------------------------------------------------------ in separate()


def _panned_duo(sr=8000, seconds=3.0):
    rng = np.random.default_rng(1)
    t = np.arange(int(sr * seconds)) / sr
    low = sum(np.sin(2 * np.pi * 220 * h * t) / h for h in range(1, 6)) * (
        0.5 + 0.5 * (np.sin(2 * np.pi * 1.3 * t) > 0))
    high = 0.3 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 0.7 * t) > 0)
    g = [np.array([0.95, 0.31]), np.array([0.31, 0.95])]
    images = np.stack([g[0][:, None] * low, g[1][:, None] * high]).astype(np.float32)
    return images, images.sum(axis=0)


def _snr(est, ref):
    return 10 * np.log10(np.sum(ref**2) / np.sum((est - ref) ** 2))


def test_separate_with_the_filter_adds_up_and_beats_per_channel_masks():
    images, mix = _panned_duo()
    mix_before = mix.copy()
    out = {}
    for it in (0, 2):
        res = separate(mix, 8000, n_sources=2, spatial="gains", wiener_iter=it, max_iter=60)
        np.testing.assert_array_equal(mix, mix_before)
        stems = list(res.stems.values())
        np.testing.assert_allclose(sum(stems), mix, atol=1e-4)
        assert res.settings["wiener_iter"] == it
        assert res.masks.dtype == np.float32 and res.masks.ndim == 4
        np.testing.assert_allclose(res.masks.sum(axis=0), 1.0, atol=1e-4)
        out[it] = max(np.mean([_snr(s, r) for s, r in zip(o, images, strict=True)])
                      for o in (stems, stems[::-1]))
    assert out[2] > out[0] + 3, out


def test_mono_and_shared_runs_record_no_filter_and_are_unchanged():
    images, mix = _panned_duo(seconds=1.5)
    a = separate(mix[0], 8000, n_components=4, max_iter=20, wiener_iter=5)
    b = separate(mix[0], 8000, n_components=4, max_iter=20, wiener_iter=0)
    assert a.settings["wiener_iter"] is None
    for name in a.stems:
        np.testing.assert_array_equal(a.stems[name], b.stems[name])
    s = separate(mix, 8000, n_components=4, max_iter=20, spatial="shared", wiener_iter=5)
    assert s.settings["wiener_iter"] is None


@pytest.mark.parametrize("bad", [-1, MAX_WIENER_ITER + 1, 1.5, "two"])
def test_bad_wiener_iter_is_refused(bad):
    with pytest.raises(ParameterError, match="wiener_iter"):
        separate(np.zeros((2, 8000), np.float32), 8000, n_components=2, wiener_iter=bad)


def test_cli_defaults_agree_and_bad_values_are_refused(tmp_path):
    from nmfsep import io

    assert _WIENER_ITER == WIENER_ITER and _MAX_WIENER_ITER == MAX_WIENER_ITER
    src = tmp_path / "x.wav"  # a real file: the refusals are the option's, not a missing file's
    io.save(src, _panned_duo(seconds=1.0)[1], 8000)
    for bad in ("-1", str(MAX_WIENER_ITER + 1)):
        r = CliRunner().invoke(app, ["separate", str(src), "--wiener-iter", bad, "-k", "2",
                                     "-o", str(tmp_path / "out")])
        assert r.exit_code == 2 and "wiener-iter" in r.output
    assert not (tmp_path / "out").exists()


def test_component_stems_beyond_the_limit_keep_their_masks():
    from nmfsep.spatial_wiener import MAX_WIENER_SOURCES

    _, mix = _panned_duo(seconds=1.5)
    k = MAX_WIENER_SOURCES + 1
    res = separate(mix, 8000, n_components=k, spatial="gains", max_iter=20)
    assert res.settings["wiener_iter"] == 0 and len(res.stems) == k
    np.testing.assert_allclose(sum(res.stems.values()), mix, atol=1e-4)


def test_cli_summary_says_the_stems_come_from_both_channels(tmp_path):
    from nmfsep import io

    _, mix = _panned_duo(seconds=1.5)
    src = tmp_path / "mix.wav"
    io.save(src, mix, 8000)
    r = CliRunner().invoke(app, ["separate", str(src), "--sources", "2", "--max-iter", "20",
                                 "-o", str(tmp_path / "out"), "--wiener-iter", "2"])
    assert r.exit_code == 0, r.output
    assert "spatial Wiener filter, 2 EM iterations" in r.output.replace("\n", " ")
    r = CliRunner().invoke(app, ["separate", str(src), "--sources", "2", "--max-iter", "20",
                                 "-o", str(tmp_path / "out0"), "--wiener-iter", "0"])
    assert r.exit_code == 0 and "spatial Wiener" not in r.output


def test_three_channels_take_the_general_path():
    rng = np.random.default_rng(4)
    X = (rng.standard_normal((3, 5, 40)) + 1j * rng.standard_normal((3, 5, 40))).astype(
        np.complex64)
    M0 = rng.random((2, 3, 40, 5)).astype(np.float32)
    M0 /= M0.sum(axis=0)
    M = SpatialWiener(X, _masks_of(M0), rng.random((3, 2)), 2)(0, 40)
    np.testing.assert_allclose(M.sum(axis=0), 1.0, atol=1e-5)
    assert np.isfinite(M).all()
